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
def test_naive_reproduces_the_golden_outputs_and_the_oracles_agree(problem):
    inputs, outputs = references.golden(problem)
    fresh = references.compute(problem, inputs)
    assert set(fresh) == set(outputs)
    for name in outputs:
        np.testing.assert_array_equal(fresh[name], outputs[name])
    verdicts = references.cross_check(problem, inputs, outputs)
    assert verdicts["im2col"] == "agrees"
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


def test_float_mode_golden_outputs_are_exact_so_they_do_not_depend_on_summation_order():
    problem = next(p for p in CATALOGUE if p.family == "conv2d" and p.mode == "float")
    inputs, outputs = references.golden(problem)
    assert np.all(inputs["x"] * 2**20 == np.round(inputs["x"] * 2**20))
    reordered = references._run(references.fast, problem, inputs)  # im2col sums in another order
    np.testing.assert_array_equal(reordered["y"], outputs["y"])


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
