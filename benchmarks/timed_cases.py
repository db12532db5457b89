"""What one benchmark runs: inputs, the operation call, its float64 reference, and the check.

Inputs are multiples of 1/64 in [-1, 1]: exactly representable in float64, float32,
float16 and bfloat16, so one float64 reference serves every dtype.

Is a timed output right? The bound is :func:`conformance.judging.tolerance.error_bound`
(one model for the whole project): ``gamma(n + 1) * magnitude`` at the unit roundoff of
the precision the arithmetic runs in
(the dtype's, or the lower one named in ``impl.reduced_precision``), plus the roundings
after the sum and one ulp of the output dtype. ``magnitude`` is the same operation on
absolute inputs, so cancellation cannot hide an error. Benchmark inputs lie on a 1/64
grid, exact in every dtype, so the float64 reference is the reference on rounded inputs,
as the bound assumes. A correct implementation never exceeds it; a wrong index, a missing
term or a transposed kernel misses by orders of magnitude.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from conformance.judging import tolerance
from implementations import Implementation, registry
from implementations.dtypes import numpy_dtype
from implementations.geometry import ConvParams

from .layouts import NCHW, converter
from .workloads import Layer, Workload

#: Below this much work (FLOPs or window elements) the naive loops are the reference;
#: above it im2col in float64 is (the foundation tests tie it to naive to 1e-14).
NAIVE_REFERENCE_LIMIT = 1e6
#: Above this much work the float64 reference would take too long (GPU batch sizes); the
#: check then runs the implementation once more at the largest batch under the limit.
REFERENCE_MAX_FLOPS = 8e9


@dataclass(frozen=True)
class TimedCase:
    """One benchmark: implementation x device x dtype x layout x workload x pass."""

    impl: str
    device: str
    dtype: str
    workload: Workload
    pass_: str
    layout: str = NCHW
    #: 0: the timed inputs; another value: different inputs of the same shapes (the check
    #: that a changed input changes the output)
    salt: int = 0

    @property
    def id(self) -> str:
        return f"{self.impl}-{self.device}-{self.dtype}-{self.layout}-{self.workload.name}-{self.pass_}"

    @property
    def operation(self) -> str:
        return self.workload.op + ("_backward" if self.pass_ == "backward" else "")


@lru_cache(maxsize=4)
def inputs(workload: Workload, salt: int = 0) -> dict[str, np.ndarray]:
    """Float64 inputs of a workload (x, dy, and w, b for conv), seeded by its name and ``salt``."""
    rng = np.random.default_rng((zlib.crc32(workload.name.encode()), salt))
    p = workload.params

    def grid(shape: tuple[int, ...]) -> np.ndarray:
        return rng.integers(-64, 65, size=shape).astype(np.float64) / 64

    arrays = {"x": grid(p.x_shape), "dy": grid(p.y_shape)}
    if isinstance(p, ConvParams):
        arrays["w"] = grid(p.w_shape)
        arrays["b"] = grid(p.w_shape[:1])
    return arrays


def arguments(workload: Workload, pass_: str, arrays: dict[str, Any]) -> tuple[Any, ...]:
    """Positional arguments of the operation, in contract order."""
    if workload.op == "conv2d":
        third = arrays["b"] if pass_ == "forward" else arrays["dy"]
        return (arrays["x"], arrays["w"], third, workload.params)
    if pass_ == "forward":
        return (arrays["x"], workload.params)
    return (arrays["x"], arrays["dy"], workload.params)


def bound_call(impl: Implementation, case: TimedCase, device_arrays: dict[str, Any]) -> Callable[[], Any]:
    """A no-argument callable running the case's operation on already-placed tensors."""
    method = getattr(impl, case.operation)
    args = arguments(case.workload, case.pass_, device_arrays)
    return lambda: method(*args)


def place(impl: Implementation, case: TimedCase) -> dict[str, Any]:
    """The case's inputs cast to its dtype, moved to its device and laid out in its layout
    (before any timing)."""
    dtype = numpy_dtype(case.dtype)
    lay = converter(case.layout)
    arrays = inputs(case.workload, case.salt)
    placed = {k: lay(impl.to_device(v.astype(dtype), case.device)) for k, v in arrays.items()}
    impl.synchronize(case.device)
    return placed


def outputs_of(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def output_names(workload: Workload, pass_: str) -> tuple[str, ...]:
    if pass_ == "forward":
        return ("y",)
    return ("dx", "dw", "db") if workload.op == "conv2d" else ("dx",)


def reduction_terms(workload: Workload, pass_: str) -> tuple[int, ...]:
    """Terms summed into one element of each output (the ``n`` of the error bound)."""
    p = workload.params
    if isinstance(p, ConvParams):
        k, cg, r, s = p.w_shape
        n, _, oh, ow = p.y_shape
        if pass_ == "forward":
            return (cg * r * s + 1,)
        return (k // p.groups * r * s, n * oh * ow, n * oh * ow)
    return (p.kernel[0] * p.kernel[1] + 1,)


@dataclass(frozen=True)
class Reference:
    expected: tuple[np.ndarray, ...]
    magnitude: tuple[np.ndarray, ...]
    terms: tuple[int, ...]
    names: tuple[str, ...]
    source: str


def check_workload(workload: Workload, pass_: str) -> Workload:
    """The workload whose output is checked: the timed one, or the same layer at a batch
    small enough for a float64 reference (every output image depends only on its own input
    image, so a smaller batch runs the same code on the same per-image problem)."""
    per_image = workload.flops(pass_) / workload.batch
    if workload.flops(pass_) <= REFERENCE_MAX_FLOPS:
        return workload
    return Workload(workload.layer, max(1, int(REFERENCE_MAX_FLOPS // per_image)))


def _single_threaded_blas():
    """BLAS limited to one thread while references are computed, so that no spinning
    OpenBLAS pool competes with the thread pool of the implementation timed next."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


@lru_cache(maxsize=128)  # a whole profile: implementations run one after another
def reference(workload: Workload, pass_: str) -> Reference:
    """Float64 outputs of the case and of the same operation on absolute values."""
    with _single_threaded_blas():
        return _reference(workload, pass_)


def _reference(workload: Workload, pass_: str) -> Reference:
    name = "naive" if workload.flops(pass_) <= NAIVE_REFERENCE_LIMIT else "im2col"
    ref = registry.get(name)
    method = getattr(ref, workload.op + ("_backward" if pass_ == "backward" else ""))
    arrays = inputs(workload)
    expected = outputs_of(method(*arguments(workload, pass_, arrays)))
    absolute = {k: np.abs(v) for k, v in arrays.items()}
    if workload.op == "max_pool2d":
        absolute["x"] = arrays["x"]  # keep the routing of the maximum; only |dy| matters
    magnitude = outputs_of(method(*arguments(workload, pass_, absolute)))
    if workload.op == "max_pool2d" and pass_ == "forward":
        magnitude = tuple(np.abs(m) for m in magnitude)
    return Reference(tuple(np.asarray(e, np.float64) for e in expected),
                     tuple(np.asarray(m, np.float64) for m in magnitude),
                     reduction_terms(workload, pass_), output_names(workload, pass_), f"{name} float64")


def probe_workload(op: str, batch: int = 1) -> Workload:
    """A small problem of the same operation, timed to estimate an implementation's rate."""
    if op == "conv2d":
        return Workload(Layer("probe", "conv", "conv2d", (8, 16, 16), (3, 3), 8, padding=1), batch)
    return Workload(Layer("probe", op, op, (8, 16, 16), (2, 2), stride=2), batch)


#: Roundings after the sum: an average's division and its product (none for sums).
EXTRA_ROUNDINGS = 2


def error_bound(magnitude: np.ndarray, terms: int, dtype: str, reference: np.ndarray | None = None,
                reduced_precision: Mapping[str, str] | None = None) -> np.ndarray:
    """Per-element bound on ``|found - reference|`` for a result of ``dtype``."""
    if dtype not in tolerance.UNIT_ROUNDOFF or dtype == "tf32":
        raise ValueError(f"dtype={dtype!r}: must be one of float64, float32, float16, bfloat16")
    if terms < 1:
        raise ValueError(f"terms={terms}: must be >= 1")
    magnitude = np.abs(np.asarray(magnitude, dtype=np.float64))
    reference = magnitude if reference is None else reference
    return tolerance.error_bound(dtype, terms, magnitude, reference,
                                 reduced_precision=reduced_precision, extra_roundings=EXTRA_ROUNDINGS)


@dataclass(frozen=True)
class AnswerCheck:
    """Verdict of one output against its float64 reference."""

    ok: bool
    max_error: float
    worst_ratio: float  # max |error| / bound; > 1 means wrong
    detail: str

    def as_dict(self) -> dict:
        return {"ok": self.ok, "max_error": self.max_error, "worst_ratio": self.worst_ratio,
                "detail": self.detail}


def compare(name: str, found: np.ndarray, expected: np.ndarray, magnitude: np.ndarray,
            terms: int, dtype: str, reduced_precision: Mapping[str, str] | None = None) -> AnswerCheck:
    """Compare one output array; the detail names the worst index, found, expected, bound."""
    found64 = np.asarray(found).astype(np.float64)
    if found64.shape != expected.shape:
        return AnswerCheck(False, float("inf"), float("inf"),
                     f"{name}: shape {found64.shape}, expected {expected.shape}")
    if found64.size == 0:
        return AnswerCheck(True, 0.0, 0.0, f"{name}: empty")
    bound = error_bound(magnitude, terms, dtype, expected, reduced_precision)
    ratio = tolerance.error_ratio(found64, expected, bound)
    precision = tolerance.compute_precision(dtype, reduced_precision)
    with np.errstate(invalid="ignore"):
        max_error = float(np.nanmax(np.abs(found64 - expected)))
    detail = (f"{name}{list(ratio.index)}: found {ratio.found!r}, expected {ratio.expected!r}, "
              f"|error| {abs(ratio.found - ratio.expected):.3g} vs bound {ratio.bound:.3g} "
              f"({precision} arithmetic, {terms} terms)")
    return AnswerCheck(ratio.passed, max_error, ratio.worst, detail)


def compare_all(names, found, expected, magnitude, terms, dtype: str,
                reduced_precision: Mapping[str, str] | None = None) -> AnswerCheck:
    """The worst :func:`compare` verdict over several outputs (dx, dw, db)."""
    checks = [compare(n, f, e, m, t, dtype, reduced_precision)
              for n, f, e, m, t in zip(names, found, expected, magnitude, terms, strict=True)]
    return max(checks, key=lambda c: c.worst_ratio)
