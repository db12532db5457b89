"""The error-bound model: how far a correct result may be from the float64 reference.

A result element is a sum of ``L`` terms (products for a convolution, window elements for
an average, scattered gradient shares for a backward pass). Any summation order in a
floating-point format with unit roundoff ``u`` keeps the error below

    gamma(L) * sum(|terms|),   gamma(L) = L * u / (1 - L * u)        (Higham, Thm 4.4/3.5)

where ``L`` counts the roundings on the longest path (``L - 1`` additions plus one product
per term). ``sum(|terms|)`` is not known element by element from the result, so the
reference computes it: the same operation run on ``|x|``, ``|w|``, ``|dy|`` (the
*magnitude*). The result is then rounded once more to its own dtype: one ulp of the output
dtype (``2 * u_out * |ref|``) plus the smallest subnormal for values that underflow.

Half-precision inputs are rounded before the operation sees them, so the reference is
computed in float64 on the *rounded* inputs; the bound covers only the arithmetic.

The bound is worst-case, independent of summation order and blocking, so a correct
implementation never exceeds it (float16 accumulated in float16 included), while a wrong
one misses by orders of magnitude: a float32 result computed in float16 precision breaks a
float32 bound of ``L * 2**-24`` by ``2**13 / L``.

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


def compute_precision(dtype: str, reduced_precision: Mapping[str, str] | None = None) -> str:
    """Precision the arithmetic of ``dtype`` runs in: the dtype's own unless declared lower."""
    declared = (reduced_precision or {}).get(dtype, dtype)
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
    terms = np.zeros_like(mag) if exact else gamma(np.asarray(reduction_length) + 1, u) * mag
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
    "UNIT_ROUNDOFF",
    "SIGNIFICAND_BITS",
    "Ratio",
    "compute_precision",
    "error_bound",
    "error_ratio",
    "exact_applies",
    "gamma",
]
