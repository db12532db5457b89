"""Golden data: intact, reproducible, cross-checked, and the reference gradients are right."""

import shutil

import numpy as np
import pytest

from conformance.catalogue.cases import CATALOGUE
from conformance.judging import references


def test_golden_files_match_their_manifest():
    assert references.verify_manifest() == []


def test_a_hand_edited_golden_file_is_detected(tmp_path):
    copy = tmp_path / "golden"
    shutil.copytree(references.GOLDEN_DIR, copy)
    path = copy / "max_pool2d.npz"
    data = bytearray(path.read_bytes())
    data[-200] ^= 1
    path.write_bytes(bytes(data))
    assert any("max_pool2d.npz" in p and "sha256" in p for p in references.verify_manifest(copy))


def test_regeneration_reproduces_the_stored_bytes():
    """What `python -m conformance references --check` proves (with cross-checks off, for speed)."""
    assert references.check(verify=False) == []


@pytest.mark.parametrize("problem", CATALOGUE[::9], ids=lambda p: f"{p.family}-{p.descriptor}")
def test_the_exact_reference_reproduces_the_golden_outputs_and_the_oracles_agree(problem):
    inputs, outputs = references.golden(problem)
    fresh = references.compute(problem, inputs)
    assert set(fresh) == set(outputs)
    for name in outputs:
        np.testing.assert_array_equal(fresh[name], outputs[name])
    verdicts = references.cross_check(problem, inputs, outputs)
    assert verdicts["naive"] == verdicts["im2col"] == "agrees"
    assert not verdicts["torch"].startswith("DISAGREES")


@pytest.mark.parametrize("problem", [p for p in CATALOGUE if p.mode == "float"][::3],
                         ids=lambda p: f"{p.family}-{p.descriptor}")
def test_reference_gradients_match_finite_differences(problem):
    inputs, outputs = references.golden(problem)
    errors = references.finite_difference_errors(problem, inputs, outputs)
    assert errors, "no gradient was checked"
    assert max(errors.values()) < 1e-9


def test_finite_differences_catch_a_wrong_gradient():
    problem = next(p for p in CATALOGUE if p.family == "conv2d" and p.mode == "float")
    inputs, outputs = references.golden(problem)
    wrong = dict(outputs, dw=outputs["dw"] * 1.01)
    assert references.finite_difference_errors(problem, inputs, wrong)["dw"] > 1e-3


def test_float_mode_inputs_have_full_mantissas_that_no_narrower_dtype_holds():
    import ml_dtypes

    float_mode = [p for p in CATALOGUE if p.mode == "float"]
    values = np.concatenate([v.ravel() for p in float_mode for v in references.golden(p)[0].values()
                             if v is not None])
    assert np.mean(values.astype(np.float32).astype(np.float64) == values) < 1e-3
    assert np.mean(values * 2**20 == np.round(values * 2**20)) < 1e-3  # no grid a plug-in could detect
    single = values.astype(np.float32)
    for narrower in (np.float16, ml_dtypes.bfloat16):
        assert np.mean(single.astype(narrower).astype(np.float32) == single) < 1e-2


def test_every_conv2d_output_is_within_one_ulp_of_its_exact_value():
    from fractions import Fraction

    problem = next(p for p in CATALOGUE if p.family == "conv2d" and p.mode == "float" and p.bias)
    inputs, outputs = references.golden(problem)
    x, w, b = inputs["x"], inputs["w"], inputs["b"]
    assert problem.params.padding == ((0, 0), (0, 0)) and problem.params.stride == (1, 1)
    _, _, r_, s_ = w.shape
    for (n, k, i, j), found in np.ndenumerate(outputs["y"]):
        exact = Fraction(b[k]) + sum(Fraction(float(a)) * Fraction(float(c)) for a, c in
                                     zip(x[n, :, i:i + r_, j:j + s_].ravel(), w[k].ravel(), strict=True))
        assert abs(Fraction(found) - exact) <= Fraction(np.spacing(abs(found))), (n, k, i, j)


def test_pooling_gradient_length_bounds_the_true_window_overlap_dilated_included():
    import itertools

    from conformance.catalogue.cases import CATALOGUE
    from conformance.judging.references import reduction_lengths
    from implementations.geometry import PoolParams

    checked = 0
    for problem in CATALOGUE:
        p = problem.params
        if not isinstance(p, PoolParams):
            continue
        hits: dict[tuple[int, int], int] = {}
        for (oy, ox), (jy, jx) in itertools.product(itertools.product(*map(range, p.out_hw)),
                                                    itertools.product(*map(range, p.kernel))):
            pixel = (oy * p.stride[0] + jy * p.dilation[0], ox * p.stride[1] + jx * p.dilation[1])
            hits[pixel] = hits.get(pixel, 0) + 1
        assert reduction_lengths(problem)["dx"] >= max(hits.values()), problem.descriptor
        checked += p.dilation != (1, 1)
    assert checked  # dilated windows were among them
