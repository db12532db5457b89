"""The error-bound model: correct low-precision results pass, wrong high-precision ones fail."""

import ml_dtypes
import numpy as np
import pytest

from conformance.judging.tolerance import (
    ACCUMULATION,
    CAP,
    UNIT_ROUNDOFF,
    accumulation_factor,
    error_bound,
    error_ratio,
    exact_applies,
    gamma,
)


def test_unit_roundoffs_are_the_documented_powers_of_two():
    assert UNIT_ROUNDOFF == {"float64": 2.0**-53, "float32": 2.0**-24, "tf32": 2.0**-11,
                             "float16": 2.0**-11, "bfloat16": 2.0**-8}


def test_gamma_is_infinite_when_the_reduction_is_too_long_for_the_precision():
    assert gamma(10, 2.0**-11) == pytest.approx(10 * 2.0**-11 / (1 - 10 * 2.0**-11))
    assert np.isinf(gamma(2**11, 2.0**-11))


def _dot(x, w, dtype):
    """A length-L dot product accumulated sequentially in ``dtype``."""
    acc = dtype(0)
    for a, b in zip(x.astype(dtype), w.astype(dtype), strict=False):
        acc = dtype(acc + dtype(a * b))
    return float(acc)


LENGTHS = [10, 100, 1000, 10**4, 10**5]
DTYPES = ["float64", "float32", "float16", "bfloat16"]


def _np(dtype):
    return np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)


def _dots(dtype, length, accumulate_in):
    """Rows of dot products of ``dtype`` inputs, summed sequentially in ``accumulate_in``.

    Returns (found, reference, magnitude); the found sum is rounded to ``dtype`` at the end.
    """
    rows = max(4, 10**5 // length)
    rng = np.random.default_rng(length)
    x = rng.standard_normal((rows, length)).astype(_np(dtype)).astype(np.float64)
    w = rng.standard_normal((rows, length)).astype(_np(dtype)).astype(np.float64)
    products = (x * w).astype(_np(accumulate_in))  # exact for half inputs in float32
    found = np.add.accumulate(products, axis=1)[:, -1].astype(_np(dtype)).astype(np.float64)
    return found, np.sum(x * w, axis=1), np.sum(np.abs(x * w), axis=1)


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bound_stays_finite_and_below_the_cap_at_every_length(dtype, length):
    declared = {dtype: dtype} if dtype in ("float16", "bfloat16") else {}
    for reduced in ({}, declared):
        bound = error_bound(dtype, length, np.array(1.0), np.array(1.0), reduced_precision=reduced)
        assert np.isfinite(bound) and bound <= CAP + 1
    assert accumulation_factor(length, UNIT_ROUNDOFF["float32"]) < 1e-3


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_sum_accumulated_in_the_contract_precision_passes(dtype, length):
    found, ref, mag = _dots(dtype, length, ACCUMULATION[dtype])
    assert error_ratio(found, ref, error_bound(dtype, length, mag, ref)).passed


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_declared_half_precision_accumulator_passes(dtype, length):
    found, ref, mag = _dots(dtype, length, dtype)
    bound = error_bound(dtype, length, mag, ref, reduced_precision={dtype: dtype})
    assert error_ratio(found, ref, bound).passed


#: A half-precision accumulator's error grows like L u_half, the float32 bound like
#: 32 sqrt(L) L u_float32: they cross near L = 2.6e4 (see tolerance's docstring).
SEPARABLE = [n for n in LENGTHS if n <= 10**4]


@pytest.mark.parametrize("length", SEPARABLE)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_an_undeclared_half_precision_accumulator_fails(dtype, length):
    found, ref, mag = _dots(dtype, length, dtype)
    assert not error_ratio(found, ref, error_bound(dtype, length, mag, ref)).passed


@pytest.mark.parametrize("length", SEPARABLE)
def test_float32_accumulated_in_float16_fails(length):
    found, ref, mag = _dots("float32", length, "float16")
    assert not error_ratio(found, ref, error_bound("float32", length, mag, ref)).passed


def test_probabilistic_bound_is_tighter_than_the_worst_case_only_for_long_sums():
    u = UNIT_ROUNDOFF["float32"]
    assert accumulation_factor(100, u) == gamma(100, u)
    assert accumulation_factor(4609, u) < gamma(4609, u) / 2


def test_float32_computed_in_float16_breaks_the_float32_bound():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(64), rng.standard_normal(64)
    ref = float(np.dot(x, w))
    bound = error_bound("float32", 64, np.array(np.dot(abs(x), abs(w))), np.array(ref))
    assert abs(_dot(x, w, np.float16) - ref) > 10 * bound


def test_declared_tf32_is_judged_at_tf32_precision():
    loose = error_bound("float32", 9, np.array(1.0), np.array(1.0), reduced_precision={"float32": "tf32"})
    tight = error_bound("float32", 9, np.array(1.0), np.array(1.0))
    assert loose > 1000 * tight


def test_unknown_reduced_precision_names_the_setting():
    with pytest.raises(ValueError, match="reduced_precision"):
        error_bound("float32", 9, np.array(1.0), np.array(1.0), reduced_precision={"float32": "fp8"})


def test_exact_mode_applies_only_below_the_significand_and_without_reduced_precision():
    assert exact_applies("bfloat16", np.array([256.0]))
    assert not exact_applies("bfloat16", np.array([257.0]))
    assert exact_applies("float16", np.array([2048.0]))
    assert not exact_applies("float32", np.array([3.0]), {"float32": "float32"})


def test_exact_bound_is_zero_and_a_one_ulp_difference_fails():
    bound = error_bound("float32", 27, np.array([30.0]), np.array([7.0]), exact=True)
    assert bound[0] == 0
    r = error_ratio(np.array([np.nextafter(np.float32(7), np.float32(8))]), np.array([7.0]), bound)
    assert not r.passed and np.isinf(r.worst)


def test_error_ratio_reports_the_worst_element_and_treats_nan_as_infinitely_wrong():
    found = np.array([[1.0, 2.0], [np.nan, 4.0]])
    r = error_ratio(found, np.array([[1.0, 2.5], [3.0, 4.0]]), np.full((2, 2), 1.0))
    assert r.index == (1, 0) and np.isinf(r.worst)
    ok = error_ratio(np.array([np.nan]), np.array([np.nan]), np.array([0.0]))
    assert ok.passed
