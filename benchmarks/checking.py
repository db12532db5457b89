"""Is a timed output right? The conformance suite's error bound, applied once per case.

The bound is :func:`conformance.judging.tolerance.error_bound` (one model for the whole project):
``gamma(n + 1) * magnitude`` at the unit roundoff of the precision the arithmetic runs in
(the dtype's, or the lower one named in ``impl.reduced_precision``), plus the roundings
after the sum and one ulp of the output dtype. ``magnitude`` is the same operation on
absolute inputs, so cancellation cannot hide an error. Benchmark inputs lie on a 1/64
grid, exact in every dtype, so the float64 reference is the reference on rounded inputs,
as the bound assumes. A correct implementation never exceeds it; a wrong index, a missing
term or a transposed kernel misses by orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from conformance.judging import tolerance

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
