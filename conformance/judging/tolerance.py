"""The error-bound model: how far a correct result may be from the float64 reference.

A result element is a sum of ``L`` terms (products for a convolution, window elements for
an average, scattered gradient shares for a backward pass), accumulated at unit roundoff
``u``. The bound on its error is ``factor(L + 1, u) * sum(|terms|)`` (``L + 1`` roundings
on the longest path: ``L - 1`` additions, a product, a bias) with :func:`accumulation_factor`
the smallest of three bounds:

- worst case, any summation order: ``gamma(n) = n u / (1 - n u)`` (Higham, Thm 4.4/3.5);
  infinite once ``n u >= 1`` (``n >= 2047`` in float16, ``255`` in bfloat16);
- probabilistic (Higham & Mary 2019, Thm 3.1, rounding errors modelled as independent
  and mean zero): ``exp(lambda sqrt(n) u + n u^2 / (1 - u)) - 1``, which holds with
  probability at least ``1 - 2n exp(-lambda^2 (1 - u)^2 / 2)``. ``lambda = 8`` puts that
  below ``3e-9`` per element at ``n = 10^5``; :data:`SAFETY` multiplies it by 4 more
  because round-to-nearest is not exactly mean-independent. It is tighter than the worst
  case from ``n > (4 * 8)^2 = 1024`` on: that is what lets a float32 bound at
  ``L = 4608`` (ResNet-50's 512x3x3) reject a float16 accumulator, which the worst case
  (``L^2 u`` growth) would let through. The separation holds up to ``L`` of about
  ``(2**13 / (1.6 * 32))**2 = 2.6e4`` terms: past that a float16 accumulator's error
  (growing like ``L u``) fits under the float32 bound (growing like ``L sqrt(L) u``);
- :data:`CAP`: a round-to-nearest sum never drifts further than about its magnitude from
  the true sum (once the terms fall under half an ulp of the partial sum they stagnate),
  so the factor never exceeds 2: finite for any length, and still rejecting garbage.

``sum(|terms|)`` is not known element by element from the result, so the reference
computes it: the same operation run on ``|x|``, ``|w|``, ``|dy|`` (the *magnitude*). The
result is then rounded once more to its own dtype: one ulp of the output dtype
(``2 * u_out * |ref|``) plus the smallest subnormal for values that underflow.

Accumulation precision (contract v2): float64 and float32 accumulate in their own
precision; float16 and bfloat16 products are exact in float32 and are judged at float32
accumulation (as cuDNN, oneDNN, XLA and Eigen do by default) unless the implementation
declares a lower one in ``reduced_precision`` (``{"float16": "float16"}``), which is then
the precision of the bound.

Half-precision inputs are rounded before the operation sees them, so the reference is
computed in float64 on the *rounded* inputs; the bound covers only the arithmetic.

A wrong result misses by orders of magnitude: a float32 result computed in float16
precision breaks a float32 bound of ``L * 2**-24`` by ``2**13 / L``, and a float16 sum
accumulated in float16 breaks the float32-accumulation bound by about ``2**13 / sqrt(L)``
on its sum part.

*Exact mode* (the oneDNN benchdnn idea): with small integer inputs, every product and
partial sum is an integer below ``2**p`` (``p`` = significand bits of the precision the
arithmetic runs in), so every operation is exact and a direct algorithm matches the
reference bit for bit: the sum part of the bound is zero. :func:`exact_applies` decides
per output tensor: the magnitude must stay at or below ``2**p`` and the implementation must
not declare ``reduced_precision`` for the dtype. An implementation whose algorithm is not a
direct sum on some dtype (Winograd or FFT convolution, TF32 tensor cores) declares that
dtype in ``reduced_precision`` (e.g. ``{"float32": "tf32"}``, or ``{"float32":
"float32"}`` for a transform algorithm at full precision); exact cases then fall back to
the float bound at that precision, because such an algorithm rounds even on integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Unit roundoff (half an ulp of 1) of each precision the arithmetic may run in.
UNIT_ROUNDOFF: dict[str, float] = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "tf32": 2.0**-11,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}

#: Significand bits (implicit bit included): integers up to 2**p are exact.
SIGNIFICAND_BITS: dict[str, int] = {"float64": 53, "float32": 24, "tf32": 11, "float16": 11, "bfloat16": 8}

#: Smallest positive subnormal of each storage dtype: the absolute rounding error floor.
SMALLEST_SUBNORMAL: dict[str, float] = {
    "float64": 2.0**-1074,
    "float32": 2.0**-149,
    "float16": 2.0**-24,
    "bfloat16": 2.0**-133,
}


#: Precision each dtype is accumulated in unless the implementation declares otherwise.
ACCUMULATION: dict[str, str] = {"float64": "float64", "float32": "float32", "float16": "float32",
                                "bfloat16": "float32"}
#: lambda of the probabilistic bound, and the safety factor on it (see the module docstring).
LAMBDA = 8.0
SAFETY = 4.0
#: Largest accumulation factor: the error never exceeds CAP * sum(|terms|).
CAP = 2.0


def compute_precision(dtype: str, reduced_precision: Mapping[str, str] | None = None) -> str:
    """Precision the sums of ``dtype`` are accumulated in: :data:`ACCUMULATION` unless declared."""
    declared = (reduced_precision or {}).get(dtype, ACCUMULATION.get(dtype, dtype))
    if declared not in UNIT_ROUNDOFF:
        raise ValueError(
            f"reduced_precision[{dtype!r}]={declared!r}: must be one of {tuple(UNIT_ROUNDOFF)}"
        )
    return declared


def gamma(n: int | np.ndarray, u: float) -> np.ndarray:
    """Higham's ``gamma_n = n u / (1 - n u)``; infinite where ``n u >= 1`` (no guarantee)."""
    nu = np.asarray(n, dtype=np.float64) * u
    with np.errstate(divide="ignore"):
        return np.where(nu < 1, nu / np.maximum(1 - nu, 0), np.inf)


def probabilistic_gamma(n: int | np.ndarray, u: float, lam: float = LAMBDA * SAFETY) -> np.ndarray:
    """Higham & Mary's ``exp(lam sqrt(n) u + n u^2 / (1 - u)) - 1`` (finite for every ``n``)."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(over="ignore"):
        return np.expm1(lam * np.sqrt(n) * u + n * u * u / (1 - u))


def accumulation_factor(n: int | np.ndarray, u: float) -> np.ndarray:
    """Error of a sum of ``n`` roundings at ``u``, per unit of ``sum(|terms|)``: finite for any ``n``.

    The smallest of the worst case :func:`gamma`, :func:`probabilistic_gamma` and :data:`CAP`.
    """
    return np.minimum(np.minimum(gamma(n, u), probabilistic_gamma(n, u)), CAP)


def exact_applies(
    dtype: str, magnitude: np.ndarray, reduced_precision: Mapping[str, str] | None = None
) -> bool:
    """True when every partial sum of an integer-valued problem is exact in ``dtype``.

    Needs integer-valued magnitudes (sums of ``|terms|``) no larger than ``2**p`` and no
    ``reduced_precision`` declared for the dtype (see the module docstring for why).
    """
    if dtype in (reduced_precision or {}):
        return False
    mag = np.asarray(magnitude, dtype=np.float64)
    return bool(np.all(mag == np.round(mag)) and mag.max(initial=0.0) <= 2.0 ** SIGNIFICAND_BITS[dtype])


def error_bound(
    dtype: str,
    reduction_length: int | np.ndarray,
    magnitude: np.ndarray,
    reference: np.ndarray,
    *,
    reduced_precision: Mapping[str, str] | None = None,
    extra_roundings: int = 0,
    exact: bool = False,
) -> np.ndarray:
    """Elementwise bound on ``|found - reference|`` for a result of ``dtype``.

    ``reduction_length``: number of terms summed into an element (scalar or per element);
    ``magnitude``: the operation applied to absolute values (``sum(|terms|)``);
    ``reference``: the float64 result on the (rounded) inputs;
    ``extra_roundings``: roundings after the sum (e.g. 2 for an average: reciprocal or
    division, and the product), each at most ``u * |reference|``;
    ``exact``: the sum is exact (see :func:`exact_applies`), only the extra and output
    roundings remain.

    A benchmark can check one timed output with it: ``np.all(abs(found - ref) <= bound)``.
    """
    u = UNIT_ROUNDOFF[compute_precision(dtype, reduced_precision)]
    u_out = UNIT_ROUNDOFF[dtype]
    ref = np.abs(np.asarray(reference, dtype=np.float64))
    mag = np.asarray(magnitude, dtype=np.float64)
    terms = np.zeros_like(mag) if exact else accumulation_factor(np.asarray(reduction_length) + 1, u) * mag
    after = extra_roundings * u * ref * (1 + 4 * u)
    output = 0.0 if exact and not extra_roundings else 2 * u_out * ref
    floor = SMALLEST_SUBNORMAL[dtype] * (np.asarray(reduction_length) + 2) if not exact else 0.0
    return terms + after + output + floor


@dataclass(frozen=True)
class Ratio:
    """Error as a ratio to its bound, with the worst element."""

    worst: float  # max |found - expected| / bound; <= 1 passes; inf for a mismatch where bound is 0
    index: tuple[int, ...]
    found: float
    expected: float
    bound: float

    @property
    def passed(self) -> bool:
        return self.worst <= 1.0


def error_ratio(found: np.ndarray, expected: np.ndarray, bound: np.ndarray) -> Ratio:
    """Worst ``|found - expected| / bound`` over all elements.

    NaN and Inf count as infinitely wrong unless the expected value is the same non-finite
    value (a NaN where a NaN is expected is right). A zero bound demands equality.
    """
    f = np.asarray(found, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    b = np.broadcast_to(np.asarray(bound, dtype=np.float64), e.shape)
    same = (f == e) | (np.isnan(f) & np.isnan(e))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        err = np.abs(f - e)
        ratio = np.where(same, 0.0, np.where(b > 0, err / np.where(b > 0, b, 1.0), np.inf))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    if ratio.size == 0:
        return Ratio(0.0, (), 0.0, 0.0, 0.0)
    flat = int(np.argmax(ratio))
    idx = tuple(int(i) for i in np.unravel_index(flat, ratio.shape))
    return Ratio(float(ratio[idx]), idx, float(f[idx]), float(e[idx]), float(b[idx]))


__all__ = [
    "ACCUMULATION",
    "UNIT_ROUNDOFF",
    "SIGNIFICAND_BITS",
    "Ratio",
    "accumulation_factor",
    "compute_precision",
    "error_bound",
    "error_ratio",
    "exact_applies",
    "gamma",
    "probabilistic_gamma",
]
