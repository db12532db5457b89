"""The random sweep: seeded and deterministic, over claimed features only, edge geometries
weighted up, each failure shrunk and reproducible from its one-line command."""

import dataclasses
import time

import numpy as np
import pytest

from conformance.catalogue.cases import CATALOGUE, problem_from_name
from conformance.catalogue.selection import all_cases, find_case
from conformance.judging.judge import run_case
from conformance.mutants import DilatedWindowFitKD, GroupsMixed, Mutant
from conformance.search.draws import draw_problems, rng_for
from conformance.search.sweep import local_runner, sweep
from conformance.verdicts.certify import certify
from implementations import get
from implementations import im2col as base
from implementations.contract import OPTIONS


def _drawn(seed, examples=25):
    return sweep(get("im2col"), ["cpu"], ["float32"], examples=examples, seed=seed).drawn


def test_the_same_seed_draws_the_same_problems_and_another_seed_others():
    first = _drawn(5)
    assert first == _drawn(5)
    assert first != _drawn(6)
    assert len(first) == 3 * 25  # every family of a full implementation, the whole budget


def test_a_failure_is_shrunk_to_a_minimal_problem_that_its_repro_reproduces():
    impl = GroupsMixed()
    swept = sweep(impl, ["cpu"], ["float64"], local_runner(impl, "conformance.mutants:GroupsMixed"),
                  examples=60, seed=1)
    failing = [r for r in swept.results if r.status == "fail"]
    assert failing
    problem = swept.cases[failing[0].case].problem
    n, c, h, w = problem.x_shape
    assert problem.groups == 2 and c == 2 and n * h * w == 1, problem.descriptor  # nothing left to remove
    case = failing[0].repro.split("--case ")[1].split()[0]
    assert not certify(GroupsMixed(), dtypes=["float64"], cases=[find_case(case)]).passed


def test_the_sweep_finds_the_window_fit_bug_that_the_toy_catalogue_misses():
    swept = sweep(DilatedWindowFitKD(), ["cpu"], ["float32"], examples=100, seed=0)
    messages = [m for r in swept.results for m in (c.message for c in r.checks) if m]
    assert any("no crash" in m and "does not fit" in m for m in messages)


class _PlainConv(Mutant):
    name = "plain-conv"
    features = frozenset({"conv2d"})


def test_only_claimed_features_are_drawn():
    seen = []

    def record(case, device, dtype):
        seen.append(case.problem)
        return run_case(_PlainConv(), case, device, dtype)

    sweep(_PlainConv(), ["cpu"], ["float32"], record, examples=40, seed=0)
    assert seen and all(p.family == "conv2d" and not p.options for p in seen)


def _planned(family, allowed=frozenset(OPTIONS), count=300):
    return draw_problems(rng_for(0, "cpu", "float32", family, allowed), family, allowed, count)


def test_edge_geometries_are_weighted_up_and_crossed_with_options():
    convs = _planned("conv2d")
    one_column = [p for p in convs if p.params.out_hw[1] == 1]
    assert len(one_column) > len(convs) // 4
    assert any(p.params.stride[1] > p.w_shape[3] for p in one_column)  # stride beyond the window
    assert any(p.groups > 1 for p in one_column) and any(p.params.dilation != (1, 1) for p in one_column)
    fill = [p for p in convs if any(n + a + b == e for n, (a, b), e in
                                    zip(p.x_shape[2:], p.params.padding, p.params.eff_kernel, strict=True))]
    assert len(fill) > len(convs) // 5
    assert {1, 3, 5, 7} <= {p.x_shape[0] for p in convs} and {1, 3, 5, 7} <= {p.w_shape[0] for p in convs}
    pools = _planned("avg_pool2d")
    assert any(p.ceil_mode and p.count_include_pad and p.params.out_hw[1] == 1 for p in pools)


def test_only_claimed_options_are_drawn_and_every_draw_is_valid():
    for family in ("conv2d", "max_pool2d"):
        allowed = frozenset({"stride"})
        problems = _planned(family, allowed, 100)
        assert len(problems) == 100 and all(p.options <= allowed for p in problems)
        assert any(p.options for p in problems)


def test_the_sweep_draws_dilated_pooling_when_it_is_claimed():
    assert any("pool_dilation" in p.options for p in _planned("max_pool2d", count=50))


def test_the_certificate_records_the_seed_and_each_shrunk_failure_with_its_repro():
    cert = certify(GroupsMixed(), dtypes=["float64"], quick=True, sweep_examples=30, seed=3)
    data = cert.to_dict()["sweep"]
    assert data["seed"] == 3 and data["problems_tried"] == data["problems_planned"] > 0
    assert data["failures"] and all("--case" in f["repro"] and "--dtype float64" in f["repro"]
                                    for f in data["failures"])
    assert "groups" in cert.failed_features


def test_negative_sweep_budget_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="sweep_examples=-1"):
        certify("im2col", sweep_examples=-1)


def test_every_catalogue_case_name_reads_back_as_its_problem_and_inputs():
    for case in all_cases(CATALOGUE):
        back = problem_from_name(case.name + "-bfloat16")
        assert (back.name, back.op, back.problem.params) == (case.name, case.op, case.problem.params)
        inputs, again = case.problem.inputs(), back.problem.inputs()
        assert all(np.array_equal(v, again[k]) for k, v in inputs.items() if v is not None)


def test_a_name_that_is_no_descriptor_is_refused_naming_it():
    with pytest.raises(ValueError, match="conv2d-n1c1-bogus"):
        find_case("conv2d-n1c1-bogus")


def test_a_failure_found_before_the_time_budget_is_kept_and_the_sweep_says_it_stopped_early():
    calls = []

    def slow_and_always_wrong(case, device, dtype):  # every problem fails; each run takes 50 ms
        calls.append(case.name)
        time.sleep(0.05)
        return dataclasses.replace(run_case(GroupsMixed(), case, device, dtype), status="fail")

    # 1,500 problems at 50 ms each would take minutes: an 8 s budget (drawing them takes 1-2 s on a
    # busy 2-core machine) stops the sweep after some calls, whatever the load
    swept = sweep(get("im2col"), ["cpu"], ["float64"], slow_and_always_wrong, examples=500, seed=0,
                  max_seconds=8)
    assert swept.stopped_early and calls and len(swept.drawn) < swept.planned
    assert any(r.status == "fail" for r in swept.results), "the failure seen before the budget was dropped"


def test_a_crash_in_the_sweep_fails_that_case_through_the_worker_and_the_sweep_goes_on():
    from conformance.execution.worker import Worker
    from conformance.verdicts.certify import runner

    worker = Worker("tests.conformance.misbehaving:Segfaults", case_timeout=20)
    try:
        run = runner(worker, worker.spec)
        swept = sweep(worker, ["cpu"], ["float32"], run, examples=8, seed=0)
    finally:
        worker.shutdown()
    crashed = [c.message for r in swept.results for c in r.checks if "SIGSEGV" in (c.message or "")]
    assert crashed, [r.to_dict() for r in swept.results]
    assert swept.cases  # the shrunk grouped convolution is in the certificate's cases


def test_a_failure_that_does_not_recur_is_kept_and_marked_nondeterministic():
    seen = []

    def wrong_once(case, device, dtype):  # the first call fails, every later one passes
        result = run_case(get("im2col"), case, device, dtype)
        if not seen:
            result = dataclasses.replace(result, status="fail")
        seen.append(case.name)
        return result

    swept = sweep(get("im2col"), ["cpu"], ["float64"], wrong_once, examples=20, seed=0)
    kept = [r for r in swept.results if r.status == "fail"]
    assert kept and all(r.reason.startswith("nondeterministic") for r in kept)




def test_a_slow_machine_runs_the_same_problems_with_the_same_digest():
    def slow(case, device, dtype):  # a busy machine: every case takes longer
        time.sleep(0.002)
        return run_case(get("im2col"), case, device, dtype)

    quick = sweep(get("im2col"), ["cpu"], ["float32"], examples=15, seed=4)
    loaded = sweep(get("im2col"), ["cpu"], ["float32"], slow, examples=15, seed=4)
    assert loaded.drawn == quick.drawn and loaded.digest == quick.digest and len(quick.digest) == 64
    assert quick.digest != sweep(get("im2col"), ["cpu"], ["float32"], examples=15, seed=5).digest


def test_answers_that_change_between_runs_never_crash_the_sweep():
    # What made Hypothesis raise Flaky (and the old sweep IndexError): a problem failing, then
    # passing on the same input, here for every third call.
    calls = []

    def alternating(case, device, dtype):
        result = run_case(get("im2col"), case, device, dtype)
        calls.append(case.name)
        if len(calls) % 3 == 1:
            result = dataclasses.replace(result, status="fail")
        return result

    swept = sweep(get("im2col"), ["cpu"], ["float64"], alternating, examples=10, seed=0)
    assert len(swept.drawn) == swept.planned == 30
    assert {r.device for r in swept.results if r.status == "fail"} == {"cpu"}


def test_a_time_budget_that_stops_the_run_makes_the_certificate_incomplete_never_a_pass():
    cert = certify("im2col", dtypes=["float32"], sweep_examples=5, max_seconds=0.2)
    assert cert.state == "incomplete" and not cert.passed
    assert "time budget of 0.2 s" in cert.note
    assert cert.coverage["catalogue_cases"] > 0 and len(cert.coverage["sweep_sha256"]) == 64


def test_two_certifications_record_the_same_coverage_digests():
    first, second = (certify("im2col", dtypes=["float64"], quick=True, sweep_examples=4, seed=2,
                             isolate=False) for _ in range(2))
    assert first.coverage == second.coverage and first.sweep["sha256"] == second.sweep["sha256"]
    assert first.passed and first.to_dict()["coverage"]["sweep_problems"] == 12


class SingleColumnWideStride(Mutant):  # only this test uses it: not in the mutant gallery
    """Wrong when the W stride exceeds a kernel width of 3 or more and the output has a single
    column: the last kernel column's taps are dropped. Modelled on OpenVINO's CPU convolution
    (wrong whenever the W stride exceeds 1 and the output has one column,
    ``conv2d-n1c1h12w2-k2r3s2-st1x3-pad_valid-bias``); narrowed to strides beyond a wider kernel
    so that the catalogue (corpus included) misses it and only the sweep's edge geometry finds it."""

    name = "mutant-single-column-wide-stride"

    def conv2d(self, x, w, b, params):
        if params.stride[1] > params.w_shape[3] > 2 and params.out_hw[1] == 1:
            w = w.copy()
            w[..., -1] = 0
        return base.conv2d(x, w, b, params)


def test_the_default_sweep_finds_a_single_column_wide_stride_bug_that_the_catalogue_misses():
    from conformance.search.sweep import DEFAULT_EXAMPLES

    class ConvOnly(SingleColumnWideStride):  # the same options, so the same convolutions are drawn
        features = SingleColumnWideStride.features - {"max_pool2d", "max_pool2d_backward", "avg_pool2d",
                                                      "avg_pool2d_backward"}

    impl = ConvOnly()
    convs = [c for c in all_cases() if c.op == "conv2d"]
    assert all(run_case(impl, c, "cpu", "float64").status == "pass" for c in convs)
    for seed in range(5):
        swept = sweep(impl, ["cpu"], ["float64"], examples=DEFAULT_EXAMPLES, seed=seed)
        failing = [swept.cases[r.case].problem for r in swept.results if r.status == "fail"]
        assert failing, f"seed {seed}: not found"
        assert all(p.params.out_hw[1] == 1 and p.params.stride[1] > p.w_shape[3] > 1 for p in failing)


def test_a_plugin_wrong_in_one_call_in_twenty_fails_a_default_certification():
    # Every call is a chance to be caught: with N calls, a plug-in wrong in 5% of them passes with
    # probability 0.95**N, below 1e-9 from N = 405. A default float32 certification makes more.
    from conformance.search.sweep import DEFAULT_EXAMPLES

    cert = certify("tests.conformance.misbehaving:WrongSometimes", sweep_examples=DEFAULT_EXAMPLES)
    calls = sum(r.status in ("pass", "fail") for r in cert.results) + 2 * cert.sweep["problems_tried"]
    assert calls >= 405 and 0.95**calls < 1e-9
    assert not cert.passed and cert.state == "complete"
    swept = cert.sweep["failures"]
    assert swept and all(f["failed_runs"] for f in swept)


def test_the_cli_says_an_incomplete_certification_is_not_certified_and_exits_2(tmp_path, capsys):
    from conformance.cli import main

    code = main(["certify", "im2col", "--dtype", "float32", "--no-progress", "--max-seconds", "0.1",
                 "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2 and "INCOMPLETE" in captured.out
    assert "not certified: incomplete: the time budget of 0.1 s" in captured.err
