"""Blame by experiment and per-operation verdicts: an option fails only where the failure
needs it (the same case passes with it turned off), and each option is judged per operation."""

from __future__ import annotations

from conformance.catalogue.cases import Problem
from conformance.mutants import CountIncludePadIgnoredWhenAsymmetric, StrideOffByOne
from conformance.verdicts.certify import certify
from conformance.verdicts.experiment import without


def _rows(cert, status):
    return {s.feature for s in cert.operations if s.status == status}


def test_a_failure_that_needs_two_options_is_blamed_on_the_pair_and_never_on_stride():
    cert = certify(CountIncludePadIgnoredWhenAsymmetric(), dtypes=["float64"], isolate=False)
    assert not cert.passed
    assert cert.failed_features == {"asymmetric_padding", "count_include_pad"}
    blamed = {e["blamed"] for e in cert.experiments}
    assert blamed == {"asymmetric_padding+count_include_pad"}, cert.experiments
    # the deciding pairs: the failing case passes without either option
    e = cert.experiments[0]
    deciding = {o: v["status"] for o, v in e["variants"].items()}
    assert deciding["asymmetric_padding"] == deciding["count_include_pad"] == "pass"
    assert "avg_pool2d · stride" not in _rows(cert, "fail")
    both = {"avg_pool2d · count_include_pad", "avg_pool2d_backward · count_include_pad"}
    assert both <= _rows(cert, "fail")


def test_each_option_is_judged_per_operation():
    cert = certify(StrideOffByOne(), dtypes=["float32"], isolate=False)
    assert cert.failed_features == {"stride"}
    failed = _rows(cert, "fail")
    assert "conv2d · stride" in failed
    assert not {"max_pool2d · stride", "avg_pool2d · stride", "conv2d_backward · stride"} & failed
    assert {"max_pool2d · stride", "avg_pool2d · stride"} <= _rows(cert, "pass")


def test_an_option_is_turned_off_only_where_the_geometry_allows():
    p = Problem("avg_pool2d", (1, 1, 5, 6), kernel=3, stride=2, padding=((1, 0), (1, 1)),
                count_include_pad=True)
    assert p.options == {"stride", "asymmetric_padding", "count_include_pad"}
    for option in p.options:
        variant = without(p, [option])
        assert variant is not None and option not in variant.options
        assert variant.x_shape == p.x_shape and variant.seed == p.seed  # the same input values
    grouped = Problem("conv2d", (1, 4, 5, 5), w_shape=(2, 2, 3, 3), groups=2)
    assert without(grouped, ["groups"]).w_shape == (2, 4, 3, 3)


def test_turning_an_option_off_never_silences_another_so_the_pair_is_evidence():
    """Without its stride this window fits 9 rows exactly, and ceil_mode would change nothing:
    the variant must grow the input until ceil_mode matters again (the onnx.reference case)."""
    p = Problem("avg_pool2d", (1, 1, 9, 1), kernel=(3, 1), stride=(4, 1), padding=0, ceil_mode=True)
    assert p.options == {"stride", "ceil_mode"}
    variant = without(p, ["stride"])
    assert variant is not None and variant.options == {"ceil_mode"}
    floor = Problem("avg_pool2d", variant.x_shape, kernel=(3, 1), padding=0)
    assert variant.params.out_hw != floor.params.out_hw  # ceil_mode still changes the output
    assert variant.x_shape != p.x_shape
