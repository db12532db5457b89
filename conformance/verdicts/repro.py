"""Failing cases as self-contained scripts: ``certify SPEC --export-repro DIR``.

Each failing case becomes ``DIR/<case>-<dtype>-<device>.py`` and an ``.npz`` of its inputs
(already rounded to the dtype, stored as float64, which holds every value exactly). The
script imports NumPy, the ``implementations`` contract (for the geometry) and the plug-in's
module, never ``conformance``: it computes its own float64 reference with a short direct loop
(in :data:`REFERENCE`, checkable against the textbook formulas in a minute), calls the
plug-in through ``to_device``, the operation and ``to_numpy``, and prints the worst error
of each output. Send the two files to the plug-in's author: they need nothing else.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from conformance.catalogue.cases import Case
from conformance.catalogue.selection import find_case
from conformance.judging.judge import case_inputs, prepare
from conformance.judging.result import FAIL
from implementations import registry

from .certificate import Certificate

#: The float64 reference the script embeds: direct loops over output pixels and taps.
REFERENCE = '''
def window(params, oh, ow, kh, kw):
    """(i, j, row, col) of every tap of output (oh, ow), in row-major tap order; the row and
    column may lie in the padding."""
    (top, _), (left, _) = params.padding
    (sh, sw), (dh, dw) = params.stride, params.dilation
    return [(i, j, oh * sh - top + i * dh, ow * sw - left + j * dw) for i in range(kh) for j in range(kw)]


def conv2d(x, w, b, params, dy=None):
    """y (dy None) or (dx, dw, db): cross-correlation, groups split the channels."""
    n, c, h, wid = x.shape
    k, cg, r, s = w.shape
    kg = k // params.groups
    y = np.zeros((n, k, *params.out_hw))
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for oh in range(params.out_hw[0]):
        for ow in range(params.out_hw[1]):
            for i, j, row, col in window(params, oh, ow, r, s):
                if not (0 <= row < h and 0 <= col < wid):
                    continue  # zero padding
                for g in range(params.groups):
                    ci, ko = slice(g * cg, (g + 1) * cg), slice(g * kg, (g + 1) * kg)
                    y[:, ko, oh, ow] += x[:, ci, row, col] @ w[ko, :, i, j].T
                    if dy is not None:
                        dx[:, ci, row, col] += dy[:, ko, oh, ow] @ w[ko, :, i, j]
                        dw[ko, :, i, j] += dy[:, ko, oh, ow].T @ x[:, ci, row, col]
    if dy is not None:
        return dx, dw, dy.sum(axis=(0, 2, 3))
    return y if b is None else y + b[None, :, None, None]


def pool(x, params, kind, dy=None):
    """y (dy None) or dx of max or average pooling."""
    n, c, h, wid = x.shape
    (top, bottom), (left, right) = params.padding
    y, dx = np.zeros((n, c, *params.out_hw)), np.zeros_like(x)
    for oh in range(params.out_hw[0]):
        for ow in range(params.out_hw[1]):
            taps = window(params, oh, ow, *params.kernel)
            cells = [(row, col) for _, _, row, col in taps if 0 <= row < h and 0 <= col < wid]
            values = np.stack([x[:, :, row, col] for row, col in cells], axis=-1)
            if kind == "max":
                y[:, :, oh, ow] = values.max(axis=-1)
                first = values.argmax(axis=-1)  # the gradient goes to the first maximum
                shares = [np.where(first == t, 1.0, 0.0) for t in range(len(cells))]
            else:
                count = len(cells)
                if params.count_include_pad:  # taps inside the padded input
                    count = sum(-top <= row < h + bottom and -left <= col < wid + right
                                for _, _, row, col in taps)
                y[:, :, oh, ow] = values.sum(axis=-1) / count
                shares = [1.0 / count] * len(cells)
            if dy is not None:
                for (row, col), share in zip(cells, shares):
                    dx[:, :, row, col] += share * dy[:, :, oh, ow]
    return y if dy is None else dx


def reference(op, inputs, params):
    """Float64 outputs of ``op``, in the order the operation returns them."""
    x, w, b, dy = (inputs.get(k) for k in ("x", "w", "b", "dy"))
    if op == "conv2d":
        return [conv2d(x, w, b, params)]
    if op == "conv2d_backward":
        return list(conv2d(x, w, None, params, dy))
    kind = "max" if op.startswith("max") else "avg"
    return [pool(x, params, kind, dy if op.endswith("_backward") else None)]
'''

_SCRIPT = '''"""Reproduces {label} for {spec_text}, without convcert.

{note}Run it where the plug-in imports (PYTHONPATH), next to {npz}: it prints the worst error of
each output against a float64 reference computed here by direct loops.
"""

import importlib
import importlib.util
import os
import sys

import numpy as np

from implementations import ConvParams, PoolParams

SPEC = {spec!r}
OP = {op!r}
DEVICE = {device!r}
DTYPE = {dtype!r}
ARGUMENTS = {arguments!r}  # the operation's array arguments, in order (None: no bias)
GEOMETRY = {geometry!r}
OUTPUTS = {outputs!r}
BOUND = {bound}  # the certifier's error bound at the worst index, where it reported one
{reference}

def load_plugin(spec):
    """``module:Class`` or ``path/to/file.py:Class`` -> an instance, split as convcert splits
    it: a file spec at its last ``:`` (its folder may hold one), a module at its first."""
    path, sep, attr = spec.rpartition(":")
    if sep and path.endswith(".py"):
        path = os.path.abspath(path)
        sys.path.insert(0, os.path.dirname(path))
        found = importlib.util.spec_from_file_location("repro_plugin", path)
        obj = importlib.util.module_from_spec(found)
        sys.modules["repro_plugin"] = obj
        found.loader.exec_module(obj)
    else:
        module, _, attr = spec.partition(":")
        obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    stored = np.load(os.path.join(here, {npz!r}))
    inputs = {{k: stored[k] for k in stored.files}}  # float64, already rounded to DTYPE
    if DTYPE == "bfloat16":
        import ml_dtypes

        dtype = np.dtype(ml_dtypes.bfloat16)
    else:
        dtype = np.dtype(DTYPE)
    params = (ConvParams if OP.startswith("conv") else PoolParams).create(**GEOMETRY)
    impl = load_plugin(SPEC)
    args = [None if inputs.get(k) is None else impl.to_device(inputs[k].astype(dtype), DEVICE)
            for k in ARGUMENTS]
    out = getattr(impl, OP)(*args, params)
    outs = out if isinstance(out, tuple) else (out,)
    found = [np.asarray(impl.to_numpy(o)).astype(np.float64) for o in outs]
    worst = 0.0
    for name, got, want in zip(OUTPUTS, found, reference(OP, inputs, params)):
        if got.shape != want.shape:
            print(f"{{name}}: shape {{got.shape}}, expected {{want.shape}}")
            worst = float("inf")
            continue
        error = np.nan_to_num(np.abs(got - want), nan=np.inf)  # NaN counts as infinitely wrong
        if not error.size:
            print(f"{{name}}: empty, as expected")
            continue
        at = tuple(int(i) for i in np.unravel_index(int(np.argmax(error)), error.shape))
        worst = max(worst, float(error[at]))
        print(f"{{name}}: worst |error| {{float(error[at]):.6g}} at {{at}}: found {{float(got[at])!r}}, "
              f"expected {{float(want[at])!r}}")
    print(f"worst error: {{worst:.6g}} ({{SPEC}} {{OP}} {{DTYPE}} on {{DEVICE}}; "
          f"certifier's bound: {{BOUND}})")


if __name__ == "__main__":
    main()
'''


def _slug(text: str) -> str:
    """A file name: letters, digits, ``_``, ``.`` and ``-`` only, never hidden or ``..``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip(".") or "case"


def _literal(value: float | None) -> str:
    """A Python literal of ``value`` (``float('inf')`` where ``repr`` gives a bare ``inf``)."""
    return repr(value) if value is None or math.isfinite(value) else f"float({str(value)!r})"


def _prose(text: str) -> str:
    """``text`` safe inside the script's docstring: printable ASCII without quotes or
    backslashes (anything else becomes ``?``). Code never reads it: values are ``repr`` literals."""
    return "".join(c if " " <= c <= "~" and c not in "\\\"'" else "?" for c in text)


def _class_spec(spec: str) -> str:
    """``module:Class`` (or ``file.py:Class``) of a spec, a registered name resolved from the
    registry's table or entry-point metadata (importing the plug-in here would run its code)."""
    if ":" in spec:
        return spec
    resolved = registry.registered_spec(spec)
    if resolved is None:
        raise ValueError(f"spec={spec!r}: not a registered name, 'module:Class' or 'file.py:Class'")
    return resolved


def _geometry(case: Case) -> dict:
    p = case.problem
    if p.family == "conv2d":
        return {"x_shape": p.x_shape, "w_shape": p.w_shape, "stride": 1 if p.stride is None else p.stride,
                "padding": p.padding, "dilation": p.dilation, "groups": p.groups}
    return {"x_shape": p.x_shape, "kernel": p.kernel, "stride": p.stride, "padding": p.padding,
            "dilation": p.dilation, "ceil_mode": p.ceil_mode, "count_include_pad": p.count_include_pad}


def write_script(spec: str, case: Case, device: str, dtype: str, directory: Path,
                 bound: float | None = None) -> Path:
    """Write the script and ``.npz`` reproducing ``case`` on ``spec``; returns the script's path."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = _slug(f"{case.name}-{dtype}-{device}")
    typed, _ = prepare(case.problem, dtype)
    arrays = case_inputs(case, typed)
    stored: dict[str, Any] = {k: np.asarray(v).astype(np.float64) for k, v in arrays.items() if v is not None}
    np.savez(directory / f"{stem}.npz", **stored)
    note = f"Problem: {_prose(case.problem.note)}\n\n" if case.problem.note else ""
    spec = _class_spec(spec)
    text = _SCRIPT.format(label=_prose(f"{case.name} ({dtype}, {device})"), spec=spec, spec_text=_prose(spec),
                          note=note, npz=f"{stem}.npz", op=case.op, device=device, dtype=dtype,
                          arguments=tuple(arrays), geometry=_geometry(case), outputs=case.outputs,
                          bound=_literal(bound), reference=REFERENCE)
    path = directory / f"{stem}.py"
    path.write_text(text)
    return path


def export(cert: Certificate, directory: Path) -> list[Path]:
    """A script for every failing case of ``cert`` whose name reads back as a problem."""
    written = []
    seen = set()
    for r in cert.results:
        key = (r.case, r.device, r.dtype)
        if r.status != FAIL or key in seen:
            continue
        seen.add(key)
        try:
            case = find_case(r.case)
        except ValueError:  # a shapes-file problem that is no descriptor: its REPRO line stays
            continue
        bound = next((c.bound for c in r.checks if not c.passed and c.bound is not None), None)
        written.append(write_script(cert.spec, case, r.device, r.dtype, directory, bound))
    return written
