"""The scale cases cross the tile and chunk boundaries of real kernels, and their run-time
references are exact and agree with independent oracles."""

import numpy as np
import pytest

from conformance.catalogue.scale import SCALE
from conformance.catalogue.selection import all_cases, find_case
from conformance.judging import references
from implementations import im2col

CONV = [p for p in SCALE if p.family == "conv2d"]
BOTH_WAYS = {"conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
             "avg_pool2d_backward"}


def _pixels(p):
    n, _, oh, ow = p.params.y_shape
    return n * oh * ow


def test_output_pixels_cross_256_and_1024_and_are_not_multiples_of_64():
    pixels = {_pixels(p) for p in SCALE}
    assert any(256 < t < 1024 and t % 64 for t in pixels)
    assert any(t > 1024 and t % 64 for t in pixels)


def test_reductions_run_from_about_100_past_4608_and_are_not_multiples_of_32():
    lengths = {p.w_shape[1] * p.w_shape[2] * p.w_shape[3] for p in CONV}
    assert any(100 <= n < 200 for n in lengths) and max(lengths) >= 4608
    assert all(n % 32 for n in lengths if n >= 100)
    assert max(references.reduction_lengths(p)["dw"] for p in CONV) > 4096


def test_output_channels_cross_128_and_grouped_and_depthwise_layers_have_many_channels():
    assert any(p.w_shape[0] > 128 and p.w_shape[0] % 64 and p.groups == 1 for p in CONV)
    assert any(p.groups == p.x_shape[1] >= 64 for p in CONV)  # depthwise
    assert any(1 < p.groups < p.x_shape[1] and p.w_shape[0] > 128 for p in CONV)  # grouped


def test_a_dilated_window_nearly_fills_the_padded_input_where_k_times_d_would_not_fit():
    def k_times_d_too_big(p):
        padded = [n + a + b for n, (a, b) in zip(p.x_shape[2:], p.params.padding, strict=False)]
        eff = p.params.eff_kernel
        axes = zip(p.params.kernel, p.params.dilation, padded, eff, strict=True)
        return any(k * d > n >= e for k, d, n, e in axes)

    fits = [p for p in CONV if k_times_d_too_big(p)]
    assert fits and any(p.params.stride != (1, 1) for p in fits)


def test_one_by_one_outputs_and_every_operation_forward_and_backward():
    assert any(p.params.out_hw == (1, 1) and p.w_shape[1] > 100 for p in CONV)
    assert {c.op for c in all_cases(SCALE)} == BOTH_WAYS
    assert {p.mode for p in SCALE} == {"float", "exact"}


def test_inputs_stay_small_in_memory():
    for p in SCALE:
        sizes = [v.nbytes for v in p.inputs().values() if v is not None]
        assert sum(sizes) < 4 * 2**20, p.descriptor


def test_scale_cases_are_found_by_name_for_their_repro_command():
    case = all_cases(SCALE)[0]
    assert find_case(case.name + "-float32") == case


@pytest.mark.parametrize("problem", SCALE, ids=lambda p: f"{p.family}-{p.descriptor}")
def test_the_float64_loops_and_im2col_agree_with_the_reference_and_integer_inputs_bit_for_bit(problem):
    inputs = problem.inputs()
    ref = references.compute(problem, inputs)
    verdicts = references.cross_check(problem, inputs, ref)
    assert verdicts["naive"] == verdicts["im2col"] == "agrees", verdicts
    if problem.mode == "exact" and problem.family != "avg_pool2d":  # integer sums are exact in any order
        other = references._run(im2col, problem, inputs)
        for name, value in ref.items():
            assert np.array_equal(other[name], value), name


@pytest.mark.parametrize("problem", [p for p in SCALE if p.mode == "float"][::4],
                         ids=lambda p: f"{p.family}-{p.descriptor}")
def test_float64_reference_agrees_with_torch(problem):
    pytest.importorskip("torch")
    inputs = problem.inputs()
    verdicts = references.cross_check(problem, inputs, references.compute(problem, inputs))
    assert "DISAGREES" not in verdicts["torch"], verdicts


def test_long_reductions_fail_an_undeclared_float16_accumulator_and_pass_float32_and_declared_ones():
    from conformance.mutants import Float16Accumulator, UndeclaredFloat16Accumulator
    from conformance.verdicts.certify import certify

    long = [c for c in all_cases([p for p in CONV if p.mode == "float"])
            if c.op == "conv2d" and references.reduction_lengths(c.problem)["y"] >= 2000]
    assert len(long) >= 3
    assert certify("im2col", dtypes=["float16"], cases=long).passed
    assert certify(Float16Accumulator(), dtypes=["float16"], cases=long).passed
    undeclared = certify(UndeclaredFloat16Accumulator(), dtypes=["float16"], cases=long)
    assert all(r.status == "fail" for r in undeclared.results)
