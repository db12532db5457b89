"""External oracles: every 2-D ONNX Conv/MaxPool/AveragePool case agrees; SciPy identities hold."""

import pytest

from conformance.judging import oracles
from implementations import get

CASES = oracles.onnx_cases()
RUN = [c for c in CASES if not c.skip]


@pytest.mark.parametrize("impl", ["naive", "im2col"])
@pytest.mark.parametrize("case", RUN, ids=[c.name for c in RUN])
def test_onnx_case_agrees(impl, case):
    check = oracles.check_onnx_case(get(impl), case)
    assert check.passed, check.message


def test_every_2d_onnx_case_runs_and_every_skip_has_a_reason():
    families = {c.family for c in RUN}
    assert families == {"conv2d", "max_pool2d", "avg_pool2d"}
    assert len(RUN) >= 25
    assert all(c.skip for c in CASES if c not in RUN)
    two_d_skipped = [c for c in CASES if c.skip and "2d" in c.name]
    assert two_d_skipped == [], [(c.name, c.skip) for c in two_d_skipped]


def test_onnx_dilated_pooling_cases_run():
    dilated = {c.name for c in RUN if c.family != "conv2d" and c.params.dilation != (1, 1)}
    assert {"test_maxpool_2d_dilations", "test_averagepool_2d_dilations"} <= dilated, sorted(dilated)


def test_onnx_ceil_mode_and_same_padding_cases_are_among_those_run():
    names = {c.name for c in RUN}
    assert {"test_averagepool_2d_ceil_last_window_starts_on_pad",
            "test_maxpool_2d_ceil_output_size_reduce_by_one", "test_maxpool_2d_same_lower",
            "test_conv_with_autopad_same",
            "test_conv_with_strides_and_asymmetric_padding"} <= names


@pytest.mark.parametrize("impl", ["naive", "im2col"])
def test_scipy_correlate2d_and_convolve2d_identities_hold(impl):
    for name, inputs, params, expected in oracles.scipy_cases():
        check = oracles.check_scipy_case(get(impl), name, inputs, params, expected)
        assert check.passed, check.message
