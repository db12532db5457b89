from dataclasses import replace

import pytest

from benchmarks import storage
from benchmarks.harness import Run
from benchmarks.storage import ResultFile
from benchmarks.timed_cases import TimedCase
from benchmarks.workloads import LAYERS, Workload, get_profile
from implementations import registry

CONV = Workload(LAYERS["lenet5.c3"], 2)


def _run(tmp_path, **limits):
    profile = replace(get_profile("smoke"), workloads=(CONV,), **limits)
    impls = {n: registry.get(n) for n in ("naive", "im2col")}
    return Run(profile, impls, ("cpu",), ("float32",), ResultFile(tmp_path / "r.json", {"machine": "m"}))


def test_a_call_estimated_over_the_limit_is_skipped_and_recorded(tmp_path):
    run = _run(tmp_path, max_call_s=1e-6)
    batches = iter([1, 4, 16])
    run.planner.probe_timer = lambda call, repeats: 0.05 * next(batches)  # time follows work: trusted
    with pytest.raises(pytest.skip.Exception, match="estimated: over 10x the profile's 1e-06 s per call"):
        run.run_case(TimedCase("naive", "cpu", "float32", CONV, "forward"))
    skipped = storage.read(tmp_path / "r.json").skipped
    assert skipped[0].task.impl == "naive" and "grew 4.00x from batch 1 to 4 (trusted)" in skipped[0].reason


def test_an_exhausted_budget_skips_and_says_how_much_was_spent(tmp_path):
    run = _run(tmp_path, budget_s=1e-6)
    with pytest.raises(pytest.skip.Exception, match="time budget"):
        run.run_case(TimedCase("naive", "cpu", "float32", CONV, "backward"))


def test_an_unclaimed_dtype_is_skipped_with_the_claims(tmp_path):
    run = _run(tmp_path)

    class Fp64Only(type(registry.get("im2col"))):
        name = "fp64"
        dtypes = ("float64",)

    run.impls["fp64"] = Fp64Only()
    with pytest.raises(pytest.skip.Exception, match="does not claim float32"):
        run.run_case(TimedCase("fp64", "cpu", "float32", CONV, "forward"))
