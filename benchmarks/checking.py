"""Is a timed output right? One error bound, one comparison.

The bound is the classical worst-case bound for a sum of ``n`` rounded products
(Higham, "Accuracy and Stability of Numerical Algorithms", eq. 3.5): for each output
element,

    |found - exact| <= (n + 2) * u * magnitude

where ``u`` is the unit roundoff of the precision the arithmetic runs in (the dtype's, or
the lower one named in ``impl.reduced_precision``), ``n`` the number of terms summed into
one output element, and ``magnitude`` the same operation applied to the absolute values
of the inputs (so cancellation cannot hide an error). The ``+ 2`` covers rounding the
inputs' products and the final cast. It never fails a correct implementation; a wrong
index, a missing term or a transposed kernel gives errors of the order of the magnitude
itself and is caught. (The conformance suite's tolerance model is the authoritative one;
this function is the single place to swap it in.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Unit roundoff (half the machine epsilon) per precision name.
UNIT_ROUNDOFF = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "tf32": 2.0**-11,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}


def error_bound(magnitude: np.ndarray, terms: int, precision: str) -> np.ndarray:
    """Per-element bound on ``|found - exact|`` (see the module docstring)."""
    if precision not in UNIT_ROUNDOFF:
        raise ValueError(f"precision={precision!r}: must be one of {sorted(UNIT_ROUNDOFF)}")
    if terms < 1:
        raise ValueError(f"terms={terms}: must be >= 1")
    # A float64 reference is itself rounded; its own error (~n * 2^-53) joins the bound.
    u = UNIT_ROUNDOFF[precision] + UNIT_ROUNDOFF["float64"]
    return (terms + 2) * u * np.abs(magnitude) + np.finfo(np.float64).tiny


@dataclass(frozen=True)
class Check:
    """Verdict of one output against its float64 reference."""

    ok: bool
    max_error: float
    worst_ratio: float  # max |error| / bound; > 1 means wrong
    detail: str

    def as_dict(self) -> dict:
        return {"ok": self.ok, "max_error": self.max_error, "worst_ratio": self.worst_ratio, "detail": self.detail}


def compare(name: str, found: np.ndarray, expected: np.ndarray, magnitude: np.ndarray,
            terms: int, precision: str) -> Check:
    """Compare one output array; the detail names the worst index, found, expected, bound."""
    found64 = np.asarray(found).astype(np.float64)
    if found64.shape != expected.shape:
        return Check(False, float("inf"), float("inf"),
                     f"{name}: shape {found64.shape}, expected {expected.shape}")
    bound = error_bound(magnitude, terms, precision)
    error = np.abs(found64 - expected)
    error = np.where(np.isnan(found64) & np.isnan(expected), 0.0, error)
    error = np.where(np.isnan(error), np.inf, error)
    ratio = error / bound
    if ratio.size == 0:
        return Check(True, 0.0, 0.0, f"{name}: empty")
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    r = float(ratio[worst])
    detail = (f"{name}{list(worst)}: found {found64[worst]!r}, expected {expected[worst]!r}, "
              f"|error| {error[worst]:.3g} vs bound {bound[worst]:.3g} ({precision}, {terms} terms)")
    return Check(r <= 1.0, float(error.max()), r, detail)


def compare_all(names, found, expected, magnitude, terms, precision: str) -> Check:
    """The worst :func:`compare` verdict over several outputs (dx, dw, db)."""
    checks = [compare(n, f, e, m, t, precision) for n, f, e, m, t in zip(names, found, expected, magnitude, terms)]
    return max(checks, key=lambda c: c.worst_ratio)
