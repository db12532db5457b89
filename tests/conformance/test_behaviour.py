"""Behavioural contract: bad geometry stops before the implementation, inputs stay untouched,
dtype and shape are checked, and NaN/Inf behaviour is recorded as a finding."""

import numpy as np
import pytest

from conformance.catalogue.cases import Problem
from conformance.catalogue.selection import find_case
from conformance.execution.probes import findings
from conformance.judging.judge import run_case
from implementations.im2col import Im2col

BAD_CONV = [
    (dict(x_shape=(1, 3, 5, 5), w_shape=(2, 2, 3, 3)), "w_shape"),        # channels mismatch
    (dict(x_shape=(1, 4, 5, 5), w_shape=(3, 2, 3, 3), groups=2), "groups"),  # groups does not divide K
    (dict(x_shape=(1, 2, 5, 5), w_shape=(2, 2, 3, 3), stride=0), "stride"),
    (dict(x_shape=(1, 2, 5, 5), w_shape=(2, 2, 3, 3), dilation=-1), "dilation"),
    (dict(x_shape=(1, 2, 5, 5), w_shape=(2, 2, 3, 3), padding=-1), "padding"),
    (dict(x_shape=(1, 2, 2, 2), w_shape=(2, 2, 3, 3)), "empty"),
    (dict(x_shape=(2, 5, 5), w_shape=(2, 2, 3, 3)), "x_shape"),
    (dict(x_shape=(1, 2, 5, 5), w_shape=(2, 2, 3, 3), padding="circular"), "padding"),
]


class Spy(Im2col):
    name = "spy"
    calls = 0

    def conv2d(self, x, w, b, params):
        Spy.calls += 1
        return super().conv2d(x, w, b, params)


@pytest.mark.parametrize("kwargs,word", BAD_CONV, ids=[w for _, w in BAD_CONV])
def test_bad_geometry_raises_value_error_before_the_implementation_is_called(kwargs, word):
    spy = Spy()
    Spy.calls = 0
    kwargs = dict(kwargs)
    problem = Problem("conv2d", kwargs.pop("x_shape"), w_shape=kwargs.pop("w_shape"), **kwargs)
    with pytest.raises(ValueError, match=word):
        run_case(spy, problem.cases()[0], "cpu", "float32")
    assert Spy.calls == 0


def test_bad_pool_geometry_names_the_padding_rule():
    problem = Problem("max_pool2d", (1, 1, 5, 5), kernel=2, padding=2)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        _ = problem.params


class WritesIntoDy(Im2col):
    name = "writes-dy"

    def max_pool2d_backward(self, x, dy, params):
        dx = super().max_pool2d_backward(x, dy, params)
        dy[...] = 0
        return dx


class WrongShape(Im2col):
    name = "wrong-shape"

    def avg_pool2d(self, x, params):
        return super().avg_pool2d(x, params)[:, :, :-1]


def test_an_implementation_that_writes_into_an_input_fails_naming_it():
    r = run_case(WritesIntoDy(), find_case("max_pool2d_backward-n2c2h6w6-k2-pad_valid"), "cpu", "float64")
    assert r.status == "fail"
    assert [c.output for c in r.checks if not c.passed] == ["dy unmodified"]


def test_a_wrong_output_shape_fails_naming_both_shapes():
    r = run_case(WrongShape(), find_case("avg_pool2d-n2c2h6w6-k2-pad_valid"), "cpu", "float32")
    bad = [c for c in r.checks if not c.passed]
    assert r.status == "fail" and "(2, 2, 2, 3)" in bad[0].message and "(2, 2, 3, 3)" in bad[0].message


class DropsNaN(Im2col):
    """Max pooling that ignores NaN, as TensorFlow does."""

    name = "drops-nan"

    def max_pool2d(self, x, params):
        return np.nan_to_num(super().max_pool2d(np.where(np.isnan(x), -np.inf, x), params), nan=0.0)


def test_nan_handling_is_a_finding_per_implementation_not_a_crash():
    ours = findings(Im2col(), "cpu", np.dtype("float32"))
    assert ours["max_pool2d NaN"] == "propagates NaN"
    assert ours["conv2d NaN"] == "propagates NaN" and ours["conv2d Inf"] == "propagates Inf"
    assert ours["max_pool2d_backward NaN"] == "gradient goes to the NaN"
    theirs = findings(DropsNaN(), "cpu", np.dtype("float32"))
    assert theirs["max_pool2d NaN"].startswith("ignores it")


def test_findings_respect_claims():
    class ConvOnly(Im2col):
        name = "conv-only"
        features = frozenset({"conv2d"})

    assert findings(ConvOnly(), "cpu", np.dtype("float64"))["max_pool2d NaN"] == "not claimed"
