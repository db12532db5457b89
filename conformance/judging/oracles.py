"""External oracles: ONNX's node test cases and SciPy's 2-D correlation and convolution.

ONNX ships its operator test cases as code (``onnx.backend.test.case.node
.collect_testcases(op_type)``): inputs, attributes and expected outputs. Every Conv,
MaxPool and AveragePool case is mapped onto our geometry (``auto_pad``/``pads``/
``strides``/``dilations``/``group``/``ceil_mode``/``count_include_pad`` ->
``ConvParams``/``PoolParams``) and run through an implementation. A case our contract
cannot express (1-D or 3-D) is listed as skipped with its reason,
never dropped silently.

SciPy: ``correlate2d(x, w, mode)`` is our single-channel conv with ``padding=mode`` for
"full", "same" and "valid", and ``convolve2d`` is correlation with the kernel rotated 180
degrees (for "same", SciPy centres the flipped kernel, so an even kernel's odd pixel
moves to the other side: our "same_lower").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from implementations import ConvParams, Implementation, PoolParams

from .compare import Check, compare
from .tolerance import error_bound

ONNX_OPS = {"Conv": "conv2d", "MaxPool": "max_pool2d", "AveragePool": "avg_pool2d"}
_AUTO_PAD = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower", "VALID": "valid"}


@dataclass
class OracleCase:
    """One external case: our geometry and inputs, or why it cannot be expressed."""

    name: str
    family: str
    params: ConvParams | PoolParams | None = None
    inputs: dict[str, np.ndarray | None] = field(default_factory=dict)  # b is None without bias
    expected: np.ndarray | None = None
    skip: str = ""
    note: str = ""
    rtol: float = 0.0  # ONNX's own tolerance for this case (some expected outputs are typed in to 4 digits)
    atol: float = 0.0


def _attributes(node) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _padding(attrs: dict[str, Any]) -> Any:
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in _AUTO_PAD:
        return _AUTO_PAD[auto]
    t, l, b, r = attrs.get("pads", [0, 0, 0, 0])
    return ((t, b), (l, r))


def _map(name: str, node, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> OracleCase:
    family = ONNX_OPS[node.op_type]
    attrs = _attributes(node)
    case = OracleCase(name, family)
    x = inputs[0]
    if x.ndim != 4:
        case.skip = f"{x.ndim - 2}-D {node.op_type}: the contract is 2-D only"
        return case
    notes = []
    if not np.issubdtype(x.dtype, np.floating):
        notes.append(f"{x.dtype} input run as float64 (integer values are exact)")
    case.inputs = {"x": x.astype(np.float64)}
    case.expected = outputs[0].astype(np.float64)
    stride = tuple(attrs.get("strides", [1, 1]))
    if family == "conv2d":
        w = inputs[1].astype(np.float64)
        case.inputs.update(w=w, b=inputs[2].astype(np.float64) if len(inputs) > 2 else None)
        case.params = ConvParams.create(x.shape, w.shape, stride=stride, padding=_padding(attrs),
                                        dilation=tuple(attrs.get("dilations", [1, 1])),
                                        groups=attrs.get("group", 1))
    else:
        if len(outputs) > 1:
            notes.append("second output (Indices, storage_order) is outside the contract: only Y is compared")
        kernel = tuple(attrs["kernel_shape"])
        case.params = PoolParams.create(x.shape, kernel, stride=stride, padding=_padding(attrs),
                                        dilation=tuple(attrs.get("dilations", [1, 1])),
                                        ceil_mode=bool(attrs.get("ceil_mode", 0)),
                                        count_include_pad=bool(attrs.get("count_include_pad", 0)))
    case.note = "; ".join(notes)
    return case


def onnx_cases() -> list[OracleCase]:
    """Every ONNX node test case of Conv, MaxPool and AveragePool, mapped or marked skipped.

    ``collect_testcases(op_type)`` caches its first answer in onnx 1.23 (asking for MaxPool
    after Conv returns the Conv cases again), so all cases are collected once and filtered.
    """
    from onnx.backend.test.case.node import collect_testcases

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        every = collect_testcases()
    for tc in every:
        if tc.model is None or tc.data_sets is None:
            continue  # a case published as a download (a whole model), not a node test
        ops = [n.op_type for n in tc.model.graph.node]
        if not set(ops) & set(ONNX_OPS):
            continue
        if len(ops) != 1:
            skip = f"a graph of {len(ops)} nodes ({', '.join(ops)}), not one operator"
            out.append(OracleCase(tc.name, "", skip=skip))
            continue
        node = tc.model.graph.node[0]
        for i, (inputs, outputs) in enumerate(tc.data_sets):
            name = tc.name if len(tc.data_sets) == 1 else f"{tc.name}[{i}]"
            case = _map(name, node, list(inputs), list(outputs))
            case.rtol, case.atol = float(tc.rtol), float(tc.atol)
            out.append(case)
    return out


def _forward(impl: Implementation, family: str, a: dict[str, np.ndarray | None], p,
             dtype=np.float64) -> np.ndarray:
    dev = lambda v: None if v is None else impl.to_device(np.asarray(v, dtype=dtype), "cpu")  # noqa: E731
    if family == "conv2d":
        y = impl.conv2d(dev(a["x"]), dev(a["w"]), dev(a.get("b")), p)
    else:
        y = getattr(impl, family)(dev(a["x"]), p)
    return impl.to_numpy(y).astype(np.float64)


def _magnitude(family: str, a: dict[str, np.ndarray | None], p) -> tuple[np.ndarray, int]:
    from implementations import im2col

    absa = {k: np.abs(v) for k, v in a.items() if v is not None}
    if family == "conv2d":
        return im2col.conv2d(absa["x"], absa["w"], absa.get("b"), p), int(np.prod(p.w_shape[1:])) + 1
    return getattr(im2col, family)(absa["x"], p), int(np.prod(p.kernel))


def check_onnx_case(impl: Implementation, case: OracleCase) -> Check:
    """Our implementation on ONNX's inputs against ONNX's expected output.

    ONNX's outputs are float32, so the bound is our float32 one, or ONNX's own
    ``atol + rtol * |expected|`` where that is larger: a few expected outputs are typed in
    to four digits (``test_averagepool_2d_ceil_last_window_starts_on_pad``), which only
    ONNX's tolerance covers.
    """
    if case.skip or case.expected is None:
        raise ValueError(f"case={case.name!r}: not mapped onto the contract ({case.skip}); nothing to check")
    found = _forward(impl, case.family, case.inputs, case.params)
    mag, length = _magnitude(case.family, case.inputs, case.params)
    ours = error_bound("float32", length, mag, case.expected, extra_roundings=2)
    bound = np.maximum(ours, case.atol + case.rtol * np.abs(case.expected))
    return compare(f"onnx:{case.name} on {impl.name}", "y", found, case.expected, bound)


def scipy_cases(seed: int = 7) -> list[tuple[str, dict[str, np.ndarray], Any, np.ndarray]]:
    """(name, inputs, params, expected) for single-channel correlate2d / convolve2d identities."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    out = []
    for shape in ((3, 3), (2, 4), (4, 3)):
        x = rng.standard_normal((7, 6))
        w = rng.standard_normal(shape)
        for mode in ("full", "same", "valid"):
            p = ConvParams.create((1, 1, *x.shape), (1, 1, *w.shape), padding=mode)
            out.append((f"correlate2d-{mode}-k{shape[0]}x{shape[1]}",
                        {"x": x[None, None], "w": w[None, None]},
                        p, signal.correlate2d(x, w, mode=mode)[None, None]))
            flipped = np.ascontiguousarray(w[::-1, ::-1])
            ours = {"same": "same_lower" if any(k % 2 == 0 for k in shape) else "same"}.get(mode, mode)
            q = ConvParams.create((1, 1, *x.shape), (1, 1, *w.shape), padding=ours)
            out.append((f"convolve2d-{mode}-k{shape[0]}x{shape[1]}",
                        {"x": x[None, None], "w": flipped[None, None]},
                        q, signal.convolve2d(x, w, mode=mode)[None, None]))
    return out


def check_scipy_case(impl: Implementation, name: str, inputs, params, expected) -> Check:
    found = _forward(impl, "conv2d", inputs, params)
    mag, length = _magnitude("conv2d", inputs, params)
    bound = error_bound("float64", length, mag, expected, extra_roundings=2)
    return compare(f"scipy:{name} on {impl.name}", "y", found, expected, bound)
