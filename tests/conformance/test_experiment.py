"""Blame by experiment and per-operation verdicts: an option fails only where the failure
needs it (the same case passes with it turned off), and each option is judged per operation."""

from __future__ import annotations

from conformance.catalogue.cases import Case, Problem
from conformance.catalogue.selection import all_cases
from conformance.judging.compare import Check
from conformance.judging.result import FAIL, LIMITED, PASS, CaseResult
from conformance.mutants import AvgPoolFloat16Rounding, CountIncludePadIgnoredWhenAsymmetric, StrideOffByOne
from conformance.verdicts.blame import blame
from conformance.verdicts.certify import certify
from conformance.verdicts.experiment import INDEPENDENT_INPUTS, experiment, without


def _rows(cert, status):
    return {s.feature for s in cert.operations if s.status == status}


def test_a_failure_that_needs_two_options_is_blamed_on_the_pair_and_never_on_stride():
    cert = certify(CountIncludePadIgnoredWhenAsymmetric(), dtypes=["float64"], isolate=False)
    assert not cert.passed
    assert cert.failed_features == {"asymmetric_padding", "count_include_pad"}
    forward = {e["blamed"] for e in cert.experiments if e["op"] == "avg_pool2d"}
    assert forward == {"asymmetric_padding+count_include_pad"}, cert.experiments
    # the deciding pairs: the failing case passes without either option, on the same data
    e = next(e for e in cert.experiments if e["op"] == "avg_pool2d" and not e["shared_from"])
    deciding = {o: v["status"] for o, v in e["variants"].items()}
    assert deciding["asymmetric_padding"] == deciding["count_include_pad"] == "pass"
    # a gradient's symmetric variant has another output shape, so another dy: not evidence
    back = next(e for e in cert.experiments if e["op"] == "avg_pool2d_backward" and not e["shared_from"])
    assert back["variants"]["asymmetric_padding"]["status"] == "pass, not comparable"
    assert back["blamed"] == "count_include_pad"
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


def _failed(case: Case, ratio: float, dtype: str = "float32") -> CaseResult:
    check = Check("dx" if case.op.endswith("_backward") else "y", "float", False, ratio, (0, 0, 0, 0),
                  1.0, 0.0, 1.0)
    return CaseResult(case.name, case.op, "cpu", dtype, FAIL, tuple(sorted(case.filed_under)), "float",
                      [check])


class _Runner:
    """A fake implementation: the case (``origin``) and its variants get the statuses given."""

    def __init__(self, origin: Case, case_status, variant_status):
        self.origin, self.case_status, self.variant_status = origin, case_status, variant_status
        self.calls: list[Case] = []

    def __call__(self, case, device, dtype):
        self.calls.append(case)
        same = case.problem.descriptor == self.origin.problem.descriptor
        status = self.case_status(case) if same else self.variant_status(case)
        return CaseResult(case.name, case.op, device, dtype, status, tuple(case.filed_under), "float",
                          reason="declared: no such stride" if status == LIMITED else "")


_STRIDED = Case(Problem("avg_pool2d", (1, 1, 6, 6), kernel=2, stride=1), "avg_pool2d")


def test_a_rounding_size_failure_blames_an_option_only_if_it_fails_and_its_variant_passes_on_fresh_inputs():
    always = _Runner(_STRIDED, lambda c: FAIL, lambda c: PASS)
    shown = experiment(_failed(_STRIDED, 1.5), _STRIDED, always)
    assert shown.blamed == ("stride",)  # a true stride bug: every fresh input says so
    assert len({c.problem.seed for c in always.calls}) == 1 + INDEPENDENT_INPUTS
    by_chance = _Runner(_STRIDED, lambda c: FAIL if c.problem == _STRIDED.problem else PASS, lambda c: PASS)
    chance = experiment(_failed(_STRIDED, 1.5), _STRIDED, by_chance)
    assert chance.blamed == ("avg_pool2d",) and chance.note.startswith("not isolated")
    # the same luck with a large error is not rounding: the variant on the same data decides
    assert experiment(_failed(_STRIDED, 1e6), _STRIDED, by_chance).blamed == ("stride",)


def test_float16_rounding_in_average_pooling_is_never_blamed_on_stride():
    strided = [c for c in all_cases() if c.op == "avg_pool2d" and c.problem.options == {"stride"}]
    cert = certify(AvgPoolFloat16Rounding(), dtypes=["float16"], isolate=False, cases=strided)
    assert not cert.passed and cert.failed_features == {"avg_pool2d"}, cert.experiments
    assert "stride" not in {f for e in cert.experiments for f in e["blamed"].split("+")}
    assert any(e["note"].startswith("not isolated") for e in cert.experiments)


def test_a_variant_with_another_output_shape_runs_on_another_dy_and_is_not_comparable():
    ceil = Case(Problem("max_pool2d", (1, 1, 5, 5), kernel=2, ceil_mode=True), "max_pool2d_backward")
    assert ceil.problem.options == {"ceil_mode"}
    shown = experiment(_failed(ceil, 50.0), ceil, _Runner(ceil, lambda c: FAIL, lambda c: PASS))
    assert shown.variants["ceil_mode"][1] == "pass, not comparable"
    assert shown.blamed == () and "no comparable variant" in shown.note
    # a variant failing on other data still shows the failure does not need the option
    failing = experiment(_failed(ceil, 50.0), ceil, _Runner(ceil, lambda c: FAIL, lambda c: FAIL))
    assert failing.blamed == ("max_pool2d_backward",)
    # blame then rests on the catalogue's evidence: here, nothing proves ceil_mode alone
    result = _failed(ceil, 50.0)
    verdict = blame([result], {(result.case, "cpu", "float32"): shown})
    assert verdict.of(result) == ("ceil_mode",)


def test_when_every_variant_is_refused_by_a_limit_only_the_operation_is_blamed_and_the_note_says_why():
    case = Case(Problem("avg_pool2d", (1, 1, 6, 7), kernel=2, stride=1, padding=((1, 0), (1, 1)),
                        count_include_pad=True), "avg_pool2d")
    assert len(case.problem.options) == 3
    shown = experiment(_failed(case, 1.2, "float16"), case, _Runner(case, lambda c: FAIL, lambda c: LIMITED))
    assert shown.blamed == ("avg_pool2d",)
    assert "declared limit" in shown.note and "no such stride" in shown.note


def test_a_failure_that_persists_without_every_option_it_can_drop_is_never_blamed_on_those():
    """onnxruntime's corpus case: without stride and without asymmetric padding it still fails,
    and its pool dilation cannot be turned off (the window would no longer fit)."""
    case = Case(Problem("max_pool2d", (1, 1, 1, 1), kernel=(1, 2), stride=1, padding=((0, 0), (0, 2)),
                        dilation=(1, 2)), "max_pool2d")
    assert case.problem.options == {"stride", "asymmetric_padding", "pool_dilation"}
    shown = experiment(_failed(case, 1e6), case, _Runner(case, lambda c: FAIL, lambda c: FAIL))
    assert shown.variants["pool_dilation"] == ("-", "not possible")
    assert shown.blamed == ("pool_dilation",) and set(shown.excluded) == {"stride", "asymmetric_padding"}
