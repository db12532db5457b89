"""The random sweep: seeded and deterministic, over claimed features only, edge geometries
weighted up, each failure shrunk and reproducible from its one-line command."""

import numpy as np
import pytest
from hypothesis import given, settings

from conformance.catalogue.cases import CATALOGUE, problem_from_name
from conformance.catalogue.selection import all_cases, find_case
from conformance.judging.judge import run_case
from conformance.mutants import DilatedWindowFitKD, GroupsMixed, Mutant
from conformance.search.sweep import edge_conv_problems, edge_pool_problems, local_runner, sweep
from conformance.verdicts.certify import certify
from implementations import get


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
                  examples=200, seed=1)
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
    sweep(_PlainConv(), ["cpu"], ["float32"], examples=40, seed=0,
          on_draw=lambda p: seen.append(p))
    assert seen and all(p.family == "conv2d" and not p.options for p in seen)


@settings(max_examples=60, derandomize=True, database=None)
@given(edge_conv_problems())
def test_edge_convolutions_fill_the_padded_input_to_within_one_pixel(problem):
    p = problem.params
    for size, (a, b), eff in zip(p.x_shape[2:], p.padding, p.eff_kernel, strict=False):
        assert size + a + b - eff in (0, 1)
    assert max(p.out_hw) <= 2


@settings(max_examples=60, derandomize=True, database=None)
@given(edge_pool_problems("avg_pool2d"))
def test_edge_poolings_are_valid_and_reach_the_padding(problem):
    p = problem.params
    assert all(k // 2 >= max(side) for k, side in zip(p.kernel, p.padding, strict=False))


def test_the_certificate_records_the_seed_and_each_shrunk_failure_with_its_repro():
    cert = certify(GroupsMixed(), dtypes=["float64"], sweep_examples=100, seed=3)
    data = cert.to_dict()["sweep"]
    assert data["seed"] == 3 and data["problems_tried"] > 0
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


def test_a_failure_found_before_the_time_cap_is_kept_when_shrinking_is_cut_short():
    calls = []

    def slow_and_always_wrong(case, device, dtype):  # every problem fails; each run takes 20 ms
        import time

        calls.append(case.name)
        time.sleep(0.02)
        result = run_case(GroupsMixed(), case, device, dtype)
        result.status = "fail"
        return result

    swept = sweep(get("im2col"), ["cpu"], ["float64"], slow_and_always_wrong, examples=500, seed=0,
                  max_seconds=0.5)
    assert swept.stopped_early and calls
    assert any(r.status == "fail" for r in swept.results), "the failure seen before the cap was dropped"


def test_a_crash_in_the_sweep_fails_that_case_through_the_worker_and_the_sweep_goes_on():
    from conformance.execution.worker import Worker
    from conformance.verdicts.certify import runner

    worker = Worker("tests.conformance.misbehaving:Segfaults", case_timeout=20)
    try:
        run = runner(worker, worker.spec)
        swept = sweep(worker, ["cpu"], ["float32"], run, examples=30, seed=0, max_seconds=20)
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
            result.status = "fail"
        seen.append(case.name)
        return result

    swept = sweep(get("im2col"), ["cpu"], ["float64"], wrong_once, examples=20, seed=0)
    kept = [r for r in swept.results if r.status == "fail"]
    assert kept and all(r.reason.startswith("nondeterministic") for r in kept)


def test_the_sweep_draws_dilated_pooling_when_it_is_claimed():
    from hypothesis import find

    dilated = find(edge_pool_problems("max_pool2d"), lambda p: p.params.dilation != (1, 1),
                   settings=settings(database=None, derandomize=True))
    assert "pool_dilation" in dilated.options
