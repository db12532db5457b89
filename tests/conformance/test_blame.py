"""Precise blame and diagnosis: the feature that is wrong fails, the ones merely present are
implicated, and each failure of a recognisable kind gets its one-line diagnosis."""

import pytest

from conformance.judging.result import FAIL, PASS, CaseResult
from conformance.mutants import (
    GALLERY,
    SCALE_GALLERY,
    BiasGradAveraged,
    DilatedWindowFitKD,
    KernelFlipped,
    MaxPoolGradToLastTie,
    MaxPoolPadsWithZero,
    SameOddPixelWrongSide,
)
from conformance.verdicts.blame import blame
from conformance.verdicts.certify import certify


def _result(op, options, status, dtype="float32"):
    filed = tuple(sorted(options)) or (op,)
    return CaseResult(f"{op}-{'-'.join(filed)}-{status}", op, "cpu", dtype, status, filed, "float")


def test_a_wrong_operation_explains_its_cases_with_options():
    verdict = blame([_result("max_pool2d_backward", [], FAIL),
                     _result("max_pool2d_backward", ["stride"], FAIL),
                     _result("max_pool2d_backward", ["stride", "ceil_mode"], FAIL)])
    assert verdict.failed[("cpu", "float32")] == {"max_pool2d_backward"}
    assert verdict.implicated[("cpu", "float32")] == {"stride", "ceil_mode"}


def test_an_option_failing_alone_with_the_plain_operation_is_failed_and_explains_combinations():
    verdict = blame([_result("conv2d", [], PASS), _result("conv2d", ["stride"], FAIL),
                     _result("conv2d", ["stride", "dilation"], FAIL), _result("conv2d", ["dilation"], PASS)])
    assert verdict.failed[("cpu", "float32")] == {"stride"}
    assert verdict.implicated[("cpu", "float32")] == {"conv2d", "dilation"}


def test_a_failure_nothing_explains_is_blamed_on_every_option_it_uses():
    verdict = blame([_result("conv2d", ["stride", "dilation"], FAIL)])
    assert verdict.failed[("cpu", "float32")] == {"stride", "dilation"}


def test_blame_is_per_device_and_dtype():
    verdict = blame([_result("conv2d", [], FAIL, "float16"), _result("conv2d", ["groups"], FAIL, "float32")])
    assert verdict.failed[("cpu", "float16")] == {"conv2d"}
    assert verdict.failed[("cpu", "float32")] == {"groups"}


def _diagnoses(cert):
    return {s.diagnosis for s in cert.features if s.status == "fail"}


@pytest.mark.parametrize("mutant,feature,words", SCALE_GALLERY, ids=[m.__name__ for m, _, _ in SCALE_GALLERY])
def test_scale_mutant_is_blamed_on_one_feature_with_its_diagnosis(mutant, feature, words):
    dtypes = ["float16"] if "float16" in words else ["float32"]
    cert = certify(mutant(), dtypes=dtypes)
    assert cert.failed_features == {feature}, (sorted(cert.failed_features), sorted(cert.implicated_features))
    assert all(words in d for d in _diagnoses(cert)), _diagnoses(cert)


@pytest.mark.parametrize("mutant", [m for m, _, _ in SCALE_GALLERY[:4]], ids=lambda m: m.__name__)
def test_tile_and_chunk_mutants_are_right_on_every_toy_case(mutant):
    from conformance.catalogue.cases import CATALOGUE
    from conformance.catalogue.selection import all_cases

    assert certify(mutant(), dtypes=["float32"], cases=all_cases(CATALOGUE)).passed


def test_tied_maxima_fail_the_gradient_and_only_implicate_the_options():
    cert = certify(MaxPoolGradToLastTie(), dtypes=["float64"])
    assert cert.failed_features == {"max_pool2d_backward"}
    assert {"stride", "ceil_mode", "asymmetric_padding"} <= cert.implicated_features
    assert _diagnoses(cert) == {"ties: the gradient of a window goes to the last of the tied maxima, "
                                "not to the first in row-major order"}
    failing = {f["feature"] for f in cert.failures}
    assert failing == {"max_pool2d_backward"}


@pytest.mark.parametrize("mutant,words", [
    (KernelFlipped, "kernel flipped"),
    (BiasGradAveraged, "averaged over the batch"),
    (SameOddPixelWrongSide, "wrong side"),
    (MaxPoolPadsWithZero, "pads with zeros"),
], ids=lambda v: getattr(v, "__name__", "words"))
def test_gallery_mutant_gets_its_diagnosis(mutant, words):
    cert = certify(mutant(), dtypes=["float64"])
    feature = dict(GALLERY)[mutant]
    diagnosis = {s.feature: s.diagnosis for s in cert.features if s.status == "fail"}
    assert words in diagnosis[feature], diagnosis


def test_a_correct_implementation_has_no_failed_implicated_or_diagnosed_feature():
    cert = certify("im2col", dtypes=["float32"])
    assert cert.passed and not cert.implicated_features
    assert not any(s.diagnosis for s in cert.features)


class _WindowShapeMismatch(DilatedWindowFitKD):
    """Crashes on the same geometry with a message that says nothing of a window-fit check."""

    name = "window-shape-mismatch"

    def conv2d(self, x, w, b, params):
        try:
            return super().conv2d(x, w, b, params)
        except ValueError:
            raise RuntimeError("Window dimensions do not match RHS shape") from None


def _crowded_dilated_cases():
    from conformance.catalogue.selection import all_cases

    def crowded(p):
        padded = [n + a + z for n, (a, z) in zip(p.x_shape[2:], p.padding, strict=True)]
        return any(k * d > n for k, d, n in zip(p.kernel, p.dilation, padded, strict=True))

    return [c for c in all_cases() if c.op == "conv2d" and c.problem.options == {"dilation"}
            and crowded(c.problem.params)]


@pytest.mark.parametrize("mutant,mechanism", [(DilatedWindowFitKD, True), (_WindowShapeMismatch, False)],
                         ids=["says-does-not-fit", "says-something-else"])
def test_a_window_fit_check_is_named_only_when_the_crash_message_says_so(mutant, mechanism):
    cases = _crowded_dilated_cases()
    assert cases
    cert = certify(mutant(), dtypes=["float32"], cases=cases, isolate=False)
    line = {s.feature: s.diagnosis for s in cert.features if s.status == "fail"}["dilation"]
    assert ("window-fit check on k * d refuses it" in line) is mechanism, line
    if not mechanism:  # the geometry, and the library's own words
        assert "k * d exceeds the padded input" in line and "Window dimensions do not match" in line
