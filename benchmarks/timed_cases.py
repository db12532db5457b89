"""What one benchmark runs: inputs, the operation call, its float64 reference, and the check.

Inputs are multiples of 1/64 in [-1, 1]: exactly representable in float64, float32,
float16 and bfloat16, so one float64 reference serves every dtype.

Is a timed output right? By conformance's judging model, the one the certificates use:
:func:`conformance.judging.judge.expectations` gives each output's bound
(``conformance.judging.tolerance.error_bound`` on the problem's reduction lengths and
magnitudes, at the precision the arithmetic runs in: the dtype's, or the lower one named in
``impl.reduced_precision``) and :func:`conformance.judging.compare.compare` judges the worst
element. What is the benchmarks' own: which calls are checked (the first and the last timed
one, and a call on changed inputs), on which inputs (the 1/64 grid below, exact in every
dtype, so the float64 reference is the reference on rounded inputs, as the bound assumes),
and which float64 reference computes the expected outputs (naive for small problems,
im2col above :data:`NAIVE_REFERENCE_LIMIT`). A correct implementation never exceeds the
bound; a wrong index, a missing term or a transposed kernel misses by orders of magnitude.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from conformance.catalogue.cases import Problem
from conformance.judging import judge, references
from conformance.judging.compare import Check, compare
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


@dataclass(frozen=True)
class Reference:
    """The float64 outputs of one timed pass, and which reference computed them."""

    expected: dict[str, np.ndarray]
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
    expected = outputs_of(method(*arguments(workload, pass_, inputs(workload))))
    return Reference({n: np.asarray(e, np.float64) for n, e in zip(output_names(workload, pass_), expected,
                                                                   strict=True)}, f"{name} float64")


def problem_of(workload: Workload) -> Problem:
    """The workload as a conformance problem (with bias): the geometry the judging model reads."""
    p = workload.params
    if isinstance(p, ConvParams):
        return Problem("conv2d", p.x_shape, p.w_shape, stride=p.stride, padding=p.padding,
                       dilation=p.dilation, groups=p.groups)
    return Problem(workload.op, p.x_shape, kernel=p.kernel, stride=p.stride, padding=p.padding,
                   dilation=p.dilation, ceil_mode=p.ceil_mode, count_include_pad=p.count_include_pad)


@lru_cache(maxsize=64)
def _magnitudes(workload: Workload) -> dict[str, np.ndarray]:
    with _single_threaded_blas():
        return references.magnitudes(problem_of(workload), dict(inputs(workload)))


@lru_cache(maxsize=256)
def expectations(workload: Workload, pass_: str, dtype: str,
                 reduced: tuple[tuple[str, str], ...] = ()) -> dict[str, judge.Expectation]:
    """Reference and bound of each output of the pass in ``dtype``, by conformance's judging
    model (:func:`conformance.judging.judge.expectations`); the inputs lie on a grid exact in
    every dtype, so the float64 reference is the reference on rounded inputs."""
    ref = reference(workload, pass_)
    return judge.expectations(problem_of(workload), dtype, ref.expected, _magnitudes(workload), dict(reduced))


def check_outputs(case_id: str, workload: Workload, pass_: str, dtype: str, found: Sequence[Any],
                  reduced_precision: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The outputs ``found`` of one call against their references
    (:func:`conformance.judging.compare.compare`): ``ok``, ``max_error``, ``worst_ratio`` (the
    worst output's error / bound) and ``detail``."""
    wanted = expectations(workload, pass_, dtype, tuple(sorted((reduced_precision or {}).items())))
    names = output_names(workload, pass_)
    if len(found) != len(names):
        return {"ok": False, "max_error": math.inf, "worst_ratio": math.inf,
                "detail": f"{len(found)} outputs, expected {len(names)} ({', '.join(names)})"}
    checks, errors = [], []
    for name, out in zip(names, found, strict=True):
        e = wanted[name]
        f = np.asarray(out).astype(np.float64)
        checks.append(compare(case_id, name, f, e.expected, e.bound, kind=e.kind))
        with np.errstate(invalid="ignore"):
            errors.append(float(np.nanmax(np.abs(f - e.expected), initial=0.0))
                          if f.shape == e.expected.shape else math.inf)
    worst = max(checks, key=lambda c: c.ratio)
    return {"ok": all(c.passed for c in checks), "max_error": max(errors), "worst_ratio": worst.ratio,
            "detail": describe(worst)}


def describe(check: Check) -> str:
    """One line on the worst element of a check, passed or not."""
    if check.kind == "behaviour":
        return f"{check.output}: {check.message.split(': ', 1)[-1]}"
    return (f"{check.output}{list(check.index)}: found {check.found!r}, expected {check.expected!r}, "
            f"|error| {abs(check.found - check.expected):.3g} vs bound {check.bound:.3g} "
            f"(ratio {check.ratio:.3g}, {check.kind} mode)")


def probe_workload(op: str, batch: int = 1) -> Workload:
    """A small problem of the same operation, timed to estimate an implementation's rate."""
    if op == "conv2d":
        return Workload(Layer("probe", "conv", "conv2d", (8, 16, 16), (3, 3), 8, padding=1), batch)
    return Workload(Layer("probe", op, op, (8, 16, 16), (2, 2), stride=2), batch)
