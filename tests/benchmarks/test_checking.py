import numpy as np
import pytest

from benchmarks import timed_cases
from benchmarks.workloads import LAYERS, Workload
from implementations import im2col


def test_bound_grows_with_terms_and_precision():
    mag = np.ones(3)
    assert np.all(timed_cases.error_bound(mag, 10, "float32") < timed_cases.error_bound(mag, 100, "float32"))
    assert np.all(timed_cases.error_bound(mag, 10, "float32") < timed_cases.error_bound(mag, 10, "float16"))


def test_unknown_dtype_is_rejected():
    with pytest.raises(ValueError, match="dtype='int8'"):
        timed_cases.error_bound(np.ones(1), 1, "int8")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_right_float_results_pass_and_a_flipped_kernel_fails(dtype):
    wl = Workload(LAYERS["lenet5.c3"], 1)
    ref = timed_cases.reference(wl, "forward")
    a = timed_cases.inputs(wl)
    x, w, b = (a[k].astype(dtype) for k in ("x", "w", "b"))
    good = im2col.conv2d(x, w, b, wl.params)
    bad = im2col.conv2d(x, w[:, :, ::-1, ::-1].copy(), b, wl.params)
    args = (ref.names, ref.expected, ref.magnitude, ref.terms, dtype)
    assert timed_cases.compare_all(args[0], (good,), *args[1:]).ok
    verdict = timed_cases.compare_all(args[0], (bad,), *args[1:])
    assert not verdict.ok and verdict.detail.startswith("y[") and "bound" in verdict.detail


def test_wrong_shape_is_reported_not_raised():
    c = timed_cases.compare("dx", np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((2, 3)), 1, "float32")
    assert not c.ok and "shape" in c.detail


def test_declared_tf32_loosens_the_float32_bound():
    mag = np.ones(3)
    assert np.all(timed_cases.error_bound(mag, 10, "float32", reduced_precision={"float32": "tf32"})
                  > 100 * timed_cases.error_bound(mag, 10, "float32"))
