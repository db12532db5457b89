"""Benchmark checks go through conformance's judging model: its bounds and its compare."""

import numpy as np
import pytest

from benchmarks import timed_cases
from benchmarks.workloads import LAYERS, Workload
from conformance.judging import judge, references
from implementations import im2col


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_right_float_results_pass_and_a_flipped_kernel_fails(dtype):
    wl = Workload(LAYERS["lenet5.c3"], 1)
    a = timed_cases.inputs(wl)
    x, w, b = (a[k].astype(dtype) for k in ("x", "w", "b"))
    good = im2col.conv2d(x, w, b, wl.params)
    bad = im2col.conv2d(x, w[:, :, ::-1, ::-1].copy(), b, wl.params)
    assert timed_cases.check_outputs("c3", wl, "forward", dtype, (good,))["ok"]
    verdict = timed_cases.check_outputs("c3", wl, "forward", dtype, (bad,))
    assert not verdict["ok"] and verdict["detail"].startswith("y[") and "bound" in verdict["detail"]
    assert verdict["worst_ratio"] > 1 and verdict["max_error"] > 0


def test_the_bound_is_the_certificates_bound():
    """The same problem judged by conformance gets the same bound as the benchmark's check."""
    wl = Workload(LAYERS["lenet5.s4"], 1)
    problem = timed_cases.problem_of(wl)
    arrays = dict(timed_cases.inputs(wl))
    outputs = {"y": timed_cases.reference(wl, "forward").expected["y"]}
    theirs = judge.expectations(problem, "float32", outputs, references.magnitudes(problem, arrays), {})
    ours = timed_cases.expectations(wl, "forward", "float32")
    assert np.array_equal(ours["y"].bound, theirs["y"].bound) and ours["y"].kind == theirs["y"].kind


def test_wrong_shape_or_count_is_reported_not_raised():
    wl = Workload(LAYERS["lenet5.s4"], 1)
    shape = timed_cases.check_outputs("s4", wl, "backward", "float32", (np.zeros((2, 2)),))
    assert not shape["ok"] and "shape" in shape["detail"] and shape["max_error"] == float("inf")
    count = timed_cases.check_outputs("s4", wl, "backward", "float32", ())
    assert not count["ok"] and "0 outputs" in count["detail"]


def test_declared_tf32_loosens_the_float32_bound():
    wl = Workload(LAYERS["lenet5.c3"], 1)
    tight = timed_cases.expectations(wl, "forward", "float32")["y"].bound
    loose = timed_cases.expectations(wl, "forward", "float32", (("float32", "tf32"),))["y"].bound
    assert np.all(loose > 100 * tight)
