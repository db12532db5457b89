"""Golden reference data: inputs, outputs and gradients of every catalogue problem.

Computed exactly and rounded to float64 (:mod:`conformance.judging.exact`), cross-checked
at generation time by the float64 loops of ``naive``, by ``im2col`` and (when installed) by
PyTorch float64, and the gradients validated by central finite differences. Stored as one
uncompressed ``.npz`` per family under ``conformance/golden/`` with a ``MANIFEST.json`` of
sha256 checksums. The bytes are deterministic: fixed seeds, a reference that is the same bit
for bit on every platform, a zip writer with fixed timestamps, ``.npy`` format 1.0.

The manifest lists every file with its sha256 and, per file, every case (problem
descriptor) with the sha256 of its arrays. Before a certificate judges anything,
:func:`verify_golden` proves the data complete and consistent: every file listed and no
file unlisted, every digest matching, every catalogue problem present, and every stored
input and output recomputed and equal bit for bit (about a quarter of a second for the 120
problems: every case, so that no edit escapes, whatever the manifest's bytes). Data forged
consistently (digests updated) still fails the recomputation.

``python -m conformance references`` regenerates the files; ``--check`` regenerates in
memory and proves the stored arrays did not change.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from conformance.catalogue.cases import CATALOGUE, FAMILIES, Problem
from implementations import im2col as fast
from implementations import naive
from implementations.files import write_atomic
from implementations.geometry import ConvParams, PoolParams

from . import exact
from .tolerance import error_bound, error_ratio

if TYPE_CHECKING:
    import torch

GOLDEN_DIR = Path(__file__).parent.parent / "golden"
MANIFEST = "MANIFEST.json"
INPUTS = ("x", "w", "b", "dy")
Arrays = dict[str, np.ndarray]
#: A problem's inputs: ``b`` is None for a convolution without bias.
Inputs = dict[str, np.ndarray | None]


# -- the reference ---------------------------------------------------------------------
def _run(module, problem: Problem, a: Inputs) -> Arrays:
    """Forward and backward of ``problem`` by ``module`` (naive or im2col), in float64."""
    p = problem.params
    if problem.family == "conv2d":
        dx, dw, db = module.conv2d_backward(a["x"], a["w"], a["dy"], p)
        return {"y": module.conv2d(a["x"], a["w"], a.get("b"), p), "dx": dx, "dw": dw, "db": db}
    forward = getattr(module, problem.family)
    backward = getattr(module, f"{problem.family}_backward")
    return {"y": forward(a["x"], p), "dx": backward(a["x"], a["dy"], p)}


def compute(problem: Problem, inputs: Inputs) -> Arrays:
    """Outputs and gradients of ``problem`` on ``inputs``: the float64 numbers nearest the exact
    values (:mod:`conformance.judging.exact`), whatever the inputs' mantissas."""
    p = problem.params
    bits = exact.chunk_bits(max(reduction_lengths(problem).values()))
    a = {k: None if v is None else np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    if isinstance(p, ConvParams):
        dx, dw, db = exact.conv2d_backward(a["x"], a["w"], a["dy"], p, bits)  # type: ignore[arg-type]
        return {"y": exact.conv2d(a["x"], a["w"], a.get("b"), p, bits), "dx": dx, "dw": dw, "db": db}  # type: ignore[arg-type]
    assert isinstance(p, PoolParams)
    if problem.family == "max_pool2d":
        return {"y": fast.max_pool2d(a["x"], p), "dx": exact.max_pool2d_backward(a["x"], a["dy"], p, bits)}  # type: ignore[arg-type]
    return {"y": exact.avg_pool2d(a["x"], p, bits), "dx": exact.avg_pool2d_backward(a["x"], a["dy"], p, bits)}  # type: ignore[arg-type]


def magnitudes(problem: Problem, inputs: Inputs) -> Arrays:
    """``sum(|terms|)`` of every output: the operation on absolute values (for the bound).

    Max pooling keeps ``x`` (the argmax decides where gradients go) and takes ``|dy|``.
    Computed by im2col in float64: it only feeds the error bound.
    """
    a = {k: (None if v is None else np.abs(v)) for k, v in inputs.items()}
    if problem.family == "max_pool2d":
        a["x"] = inputs["x"]
    out = _run(fast, problem, a)
    if problem.family == "max_pool2d":
        out["y"] = np.abs(out["y"])
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def reduction_lengths(problem: Problem) -> dict[str, int]:
    """Upper bound on the number of terms summed into one element of each output."""
    p = problem.params
    if isinstance(p, ConvParams):
        n, k, oh, ow = p.y_shape
        _, cg, r, s = p.w_shape
        return {"y": cg * r * s + int(problem.bias), "dx": (k // p.groups) * r * s,
                "dw": n * oh * ow, "db": n * oh * ow}
    # Window taps j of a dilated window hit pixel i where j*d = i - o*s: one j in every
    # s / gcd(s, d) consecutive taps, so at most ceil(k / (s / gcd(s, d))) windows per axis.
    overlap = math.prod(-(-k // (s // math.gcd(s, d)))
                        for k, s, d in zip(p.kernel, p.stride, p.dilation, strict=True))
    return {"y": math.prod(p.kernel), "dx": overlap}


# -- finite differences ----------------------------------------------------------------
def _has_ties(p: PoolParams, x: np.ndarray) -> bool:
    xp = fast.pad_input(x, p.padding, p.padded_extent, -np.inf)
    view = fast.window_view(xp, p.kernel, p.stride, p.dilation, p.out_hw).reshape(*p.y_shape, -1)
    top = view.max(axis=-1, keepdims=True)
    return bool(((view == top).sum(axis=-1) > 1).any())


def finite_difference_errors(problem: Problem, inputs: Inputs, outputs: Arrays,
                             h: float = 2.0**-10) -> dict[str, float]:
    """Relative error of each reference gradient against a central difference.

    Checks the directional derivative of ``L = sum(y * dy)`` along a random direction
    ``v`` of each input: ``(L(a + h v) - L(a - h v)) / 2h`` against ``sum(grad * v)``.
    Convolution and average pooling are linear and max pooling piecewise linear (away
    from ties, which are skipped), so the difference is exact up to float64 rounding.
    """
    rng = np.random.default_rng(problem.seed + 1)
    given = {k: v for k, v in inputs.items() if v is not None}
    wrt = {"x": "dx"}
    if problem.family == "conv2d":
        wrt.update({"w": "dw"})
        if "b" in given:
            wrt["b"] = "db"
    p = problem.params
    if problem.family == "max_pool2d" and isinstance(p, PoolParams) and _has_ties(p, given["x"]):
        wrt = {}

    def loss(a: Inputs) -> float:
        return float(np.sum(_run(naive, problem, a)["y"] * inputs["dy"]))

    errors = {}
    for name, grad in wrt.items():
        v = rng.standard_normal(given[name].shape)
        plus = {**inputs, name: given[name] + h * v}
        minus = {**inputs, name: given[name] - h * v}
        fd = (loss(plus) - loss(minus)) / (2 * h)
        analytic = float(np.sum(outputs[grad] * v))
        scale = float(np.sum(np.abs(outputs[grad] * v))) + 1e-300
        errors[grad] = abs(fd - analytic) / scale
    return errors


# -- independent oracles ---------------------------------------------------------------
def _torch_outputs(problem: Problem, inputs: Inputs) -> Arrays | None:
    """PyTorch float64 forward and autograd gradients, or None where torch cannot express it."""
    try:
        import torch
    except ImportError:
        return None
    p = problem.params
    x = torch.tensor(inputs["x"], requires_grad=True)
    dy = torch.tensor(inputs["dy"])
    if isinstance(p, ConvParams):
        return _torch_conv(p, x, inputs, dy)
    return _torch_pool(problem.family, p, x, dy) if isinstance(p, PoolParams) else None


def _grad(t: torch.Tensor) -> np.ndarray:
    """The gradient autograd left on the leaf ``t``."""
    if t.grad is None:
        raise RuntimeError("autograd left no gradient on a leaf that requires one")
    return t.grad.numpy()


def _torch_conv(p: ConvParams, x: torch.Tensor, inputs: Inputs, dy: torch.Tensor) -> Arrays:
    import torch
    import torch.nn.functional as F

    w = torch.tensor(inputs["w"], requires_grad=True)
    b = None if inputs.get("b") is None else torch.tensor(inputs["b"], requires_grad=True)
    (top, bottom), (left, right) = p.padding
    xp = F.pad(x, (left, right, top, bottom))
    y = F.conv2d(xp, w, b, stride=p.stride, dilation=p.dilation, groups=p.groups)
    y.backward(dy)
    db = dy.sum((0, 2, 3)).numpy() if b is None else _grad(b)
    return {"y": y.detach().numpy(), "dx": _grad(x), "dw": _grad(w), "db": db}


def _torch_pool(family: str, p: PoolParams, x: torch.Tensor, dy: torch.Tensor) -> Arrays | None:
    import torch.nn.functional as F

    (top, _), (left, _) = p.padding
    if not p.is_symmetric or top > p.kernel[0] // 2 or left > p.kernel[1] // 2:
        return None  # torch pooling takes symmetric padding of at most half the window
    if family == "max_pool2d":
        y = F.max_pool2d(x, p.kernel, p.stride, (top, left), p.dilation, ceil_mode=p.ceil_mode)
    elif p.dilation != (1, 1):
        return None  # F.avg_pool2d has no dilation
    else:
        y = F.avg_pool2d(x, p.kernel, p.stride, (top, left), ceil_mode=p.ceil_mode,
                         count_include_pad=p.count_include_pad)
    y.backward(dy)
    return {"y": y.detach().numpy(), "dx": _grad(x)}


def cross_check(problem: Problem, inputs: Inputs, outputs: Arrays) -> dict[str, str]:
    """Compare the reference with naive, im2col and torch float64; {oracle: "agrees" | why not}."""
    mags = magnitudes(problem, inputs)
    lengths = reduction_lengths(problem)
    verdicts = {}
    oracles: dict[str, Callable[[], Arrays | None]] = {
        "naive": lambda: _run(naive, problem, inputs),
        "im2col": lambda: _run(fast, problem, inputs),
        "torch": lambda: _torch_outputs(problem, inputs),
    }
    for oracle, run in oracles.items():
        other = run()
        if other is None:
            verdicts[oracle] = "not applicable (not installed or geometry not expressible)"
            continue
        worst = []
        for name, ref in outputs.items():
            bound = error_bound("float64", lengths[name], mags[name], ref, extra_roundings=2)
            r = error_ratio(other[name], ref, bound)
            if not r.passed:
                worst.append(f"{name}[{r.index}] = {r.found!r}, reference {r.expected!r}")
        verdicts[oracle] = "agrees" if not worst else "DISAGREES: " + "; ".join(worst)
    return verdicts


class GoldenError(RuntimeError):
    """The stored golden data are incomplete, unlisted, or disagree with the manifest or the reference."""


# -- storage ---------------------------------------------------------------------------
def _npz_bytes(arrays: Arrays) -> bytes:
    """Deterministic uncompressed .npz: sorted members, fixed timestamps, .npy 1.0."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]), version=(1, 0),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def generate(problems: Iterable[Problem] = CATALOGUE, *, verify: bool = True,
             log: Callable[[str], None] | None = None) -> dict[str, bytes]:
    """File name -> bytes of every golden file (and the manifest).

    With ``verify``, every problem is cross-checked by im2col and torch and its gradients
    by finite differences; a disagreement raises RuntimeError (never store a wrong reference).
    """
    per_family: dict[str, Arrays] = {f: {} for f in FAMILIES}
    agreed: dict[str, int] = {}
    for problem in problems:
        inputs = problem.inputs()
        outputs = compute(problem, inputs)
        if verify:
            verdicts = cross_check(problem, inputs, outputs)
            bad = {o: v for o, v in verdicts.items() if v.startswith("DISAGREES")}
            fd = {k: e for k, e in finite_difference_errors(problem, inputs, outputs).items() if e > 1e-9}
            if bad or fd:
                raise RuntimeError(f"{problem.family}-{problem.descriptor}: {bad or ''} {fd or ''}")
            for o, v in verdicts.items():
                agreed[o] = agreed.get(o, 0) + (v == "agrees")
        for name, value in {**inputs, **outputs}.items():
            if value is not None:
                per_family[problem.family][f"{problem.descriptor}/{name}"] = value
    files = {f"{family}.npz": _npz_bytes(arrays) for family, arrays in per_family.items()}
    manifest = {
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "cases": {f"{family}.npz": _case_digests(arrays) for family, arrays in per_family.items()},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    if verify and log:
        log(f"cross-checked: {', '.join(f'{o} agrees on {n} problems' for o, n in agreed.items())}; "
            "gradients validated by finite differences")
    return files


def write(directory: Path = GOLDEN_DIR, **kw) -> dict[str, bytes]:
    files = generate(**kw)
    for name, data in files.items():
        write_atomic(directory / name, data)
    return files


def _case_digest(arrays: Arrays) -> str:
    """sha256 of one case's arrays: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _split(store: Arrays) -> dict[str, Arrays]:
    """``{"desc/x": a, ...}`` -> ``{"desc": {"x": a, ...}}``."""
    cases: dict[str, Arrays] = {}
    for key, value in store.items():
        descriptor, _, name = key.rpartition("/")
        cases.setdefault(descriptor, {})[name] = value
    return cases


def _case_digests(store: Arrays) -> dict[str, str]:
    return {d: _case_digest(a) for d, a in sorted(_split(store).items())}


def _read_manifest(directory: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise GoldenError(f"{path} is missing") from None
    except json.JSONDecodeError as exc:
        raise GoldenError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict) \
            or not isinstance(manifest.get("cases"), dict):
        raise GoldenError(f"{path}: must hold 'files' (name -> sha256) and 'cases' (file -> case -> sha256)")
    return manifest["files"], manifest["cases"]


def _file_problems(directory: Path, files: dict[str, str]) -> list[str]:
    present = {p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")} - {MANIFEST}
    problems = [f"{name}: not listed in {MANIFEST}" for name in sorted(present - set(files))]
    for name, digest in sorted(files.items()):
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: listed in {MANIFEST} but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name}: sha256 differs from {MANIFEST}")
    return problems


def _case_problems(file: str, store: Arrays, listed: dict[str, str], needed: Iterable[Problem]) -> list[str]:
    stored = _split(store)
    problems = []
    for problem in needed:
        name = f"{problem.family}-{problem.descriptor}"
        if problem.descriptor not in listed:
            problems.append(f"{file}: case {name} is not listed in {MANIFEST}")
        elif problem.descriptor not in stored:
            problems.append(f"{file}: case {name} is listed in {MANIFEST} but not stored")
    for descriptor, arrays in sorted(stored.items()):
        if descriptor not in listed:
            problems.append(f"{file}: case {descriptor} is stored but not listed in {MANIFEST}")
        elif _case_digest(arrays) != listed[descriptor]:
            problems.append(f"{file}: case {descriptor}: sha256 of its arrays differs from {MANIFEST}")
    return problems


def _recompute_problems(file: str, store: Arrays, problems: Iterable[Problem]) -> list[str]:
    """Where the stored inputs are not the problem's, or the outputs not the reference's."""
    stored = _split(store)
    out = []
    for problem in problems:
        arrays = stored[problem.descriptor]
        name = f"{problem.family}-{problem.descriptor}"
        inputs = problem.inputs()
        for k, v in inputs.items():
            if (v is None) != (k not in arrays) or (v is not None and not np.array_equal(v, arrays[k])):
                out.append(f"{file}: case {name}: stored input {k} is not the problem's")
        fresh = compute(problem, {k: arrays.get(k) for k in inputs})
        for k, ref in fresh.items():
            got = arrays.get(k)
            if got is None or got.dtype != ref.dtype or not np.array_equal(got, ref):
                out.append(f"{file}: case {name}: stored {k} disagrees with the reference recomputed now")
    return out


@lru_cache(maxsize=8)
def _verified(directory: Path, fingerprint: tuple) -> dict[str, Arrays]:
    """The stores of every family, once the data are proved intact (raises GoldenError)."""
    files, cases = _read_manifest(directory)
    problems = _file_problems(directory, files)
    stores: dict[str, Arrays] = {}
    needed: dict[str, list[Problem]] = {}
    for p in CATALOGUE:
        needed.setdefault(f"{p.family}.npz", []).append(p)
    for file, members in needed.items():
        if file not in files:
            problems.append(f"{file}: needed by {len(members)} catalogue cases but not listed in {MANIFEST}")
            continue
        if any(problem.startswith(f"{file}:") for problem in problems):
            continue  # missing or not the bytes the manifest lists: do not read it
        try:
            with np.load(directory / file, allow_pickle=False) as data:
                store = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            problems.append(f"{file}: cannot be read ({type(exc).__name__}: {exc})")
            continue
        stores[file.removesuffix(".npz")] = store
        problems += _case_problems(file, store, cases.get(file, {}), members)
    if not problems:
        for file, members in needed.items():
            problems += _recompute_problems(file, stores[file.removesuffix(".npz")], members)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise GoldenError(f"golden data in {directory}: {problems[0]}{more}; nothing was judged. "
                          "Restore the files, or regenerate them with `python -m conformance references`")
    return stores


def _fingerprint(directory: Path) -> tuple:
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()))
    except FileNotFoundError:
        raise GoldenError(f"golden data folder {directory} is missing") from None


_last_verified: tuple[Path, dict[str, Arrays]] | None = None


def verify_golden(directory: Path | None = None) -> dict[str, Arrays]:
    """Raise :class:`GoldenError` (one line, naming file and case) unless the golden data are intact.

    Returns the stored arrays of every family; lookups (:func:`golden`) read these until the
    next verification.
    """
    global _last_verified
    directory = Path(directory or GOLDEN_DIR)
    stores = _verified(directory, _fingerprint(directory))
    _last_verified = (directory, stores)
    return stores


def verify_manifest(directory: Path | None = None) -> list[str]:
    """Every problem :func:`verify_golden` finds, as lines (empty: intact)."""
    try:
        verify_golden(directory)
    except GoldenError as exc:
        return [str(exc)]
    return []


def check(directory: Path = GOLDEN_DIR, **kw) -> list[str]:
    """Regenerate in memory and list every difference from the stored files (empty: unchanged)."""
    differences = verify_manifest(directory)
    for name, data in generate(**kw).items():
        path = directory / name
        if not path.exists():
            differences.append(f"{name} would be created")
        elif path.read_bytes() != data:
            differences.append(f"{name} differs from a fresh generation")
    return differences


# -- lookup ----------------------------------------------------------------------------
def golden(problem: Problem) -> tuple[Inputs, Arrays] | None:
    """Stored (inputs, outputs) of a catalogue problem (verified first); None for one not stored."""
    directory = Path(GOLDEN_DIR)
    verified = _last_verified if _last_verified and _last_verified[0] == directory else None
    stores = verified[1] if verified else verify_golden(directory)
    store = stores.get(problem.family, {})
    prefix = f"{problem.descriptor}/"
    arrays = {k[len(prefix):]: v for k, v in store.items() if k.startswith(prefix)}
    if not arrays:
        return None
    inputs = {k: arrays.get(k) for k in INPUTS if k in arrays or k == "b"}
    if problem.family != "conv2d":
        inputs.pop("b", None)
    outputs = {k: v for k, v in arrays.items() if k not in INPUTS}
    return inputs, outputs
