"""The error-bound model: correct low-precision results pass, wrong high-precision ones fail."""

import numpy as np
import pytest

from conformance.tolerance import UNIT_ROUNDOFF, error_bound, error_ratio, exact_applies, gamma


def test_unit_roundoffs_are_the_documented_powers_of_two():
    assert UNIT_ROUNDOFF == {"float64": 2.0**-53, "float32": 2.0**-24, "tf32": 2.0**-11,
                             "float16": 2.0**-11, "bfloat16": 2.0**-8}


def test_gamma_is_infinite_when_the_reduction_is_too_long_for_the_precision():
    assert gamma(10, 2.0**-11) == pytest.approx(10 * 2.0**-11 / (1 - 10 * 2.0**-11))
    assert np.isinf(gamma(2**11, 2.0**-11))


def _dot(x, w, dtype):
    """A length-L dot product accumulated sequentially in ``dtype``."""
    acc = dtype(0)
    for a, b in zip(x.astype(dtype), w.astype(dtype), strict=True):
        acc = dtype(acc + dtype(a * b))
    return float(acc)


@pytest.mark.parametrize("length", [9, 100, 400])
def test_float16_accumulated_in_float16_stays_within_its_bound(length):
    rng = np.random.default_rng(length)
    x, w = rng.standard_normal(length).astype(np.float16), rng.standard_normal(length).astype(np.float16)
    ref = float(np.dot(x.astype(np.float64), w.astype(np.float64)))
    mag = float(np.dot(np.abs(x.astype(np.float64)), np.abs(w.astype(np.float64))))
    bound = error_bound("float16", length, np.array(mag), np.array(ref))
    assert abs(_dot(x, w, np.float16) - ref) <= bound


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
