"""The skip decision on simulated probes, and outputs checked beyond the first call."""

from dataclasses import replace

import pytest

from benchmarks import storage
from benchmarks.harness import Run
from benchmarks.storage import ResultFile
from benchmarks.timed_cases import TimedCase
from benchmarks.workloads import LAYERS, Workload, get_profile
from implementations import registry
from tests.benchmarks import bench_wrong_impl

CONV = Workload(LAYERS["lenet5.c3"], 2)


def _run(tmp_path, impls, probe_s=None, **limits):
    """A smoke-profile run of ``impls`` on CONV; ``probe_s(batch)`` simulates the rate probe."""
    run = Run(replace(get_profile("smoke"), workloads=(CONV,), **limits), impls, ("cpu",), ("float32",),
              ResultFile(tmp_path / "r.json", {"machine": "m"}))
    if probe_s is not None:
        batches = iter([1, 4, 16, 64, 256, 1024])
        run.planner.probe_timer = lambda call, repeats: probe_s(next(batches))
    return run


def _one(run, impl):
    try:
        run.run_case(TimedCase(impl, "cpu", "float32", CONV, "forward"))
    except pytest.skip.Exception:
        pass
    return storage.read(run.result_file.path)


def test_a_fast_implementation_with_a_slow_noisy_probe_is_timed_from_its_own_call(tmp_path):
    """A busy machine: every probe call takes 5 s whatever its size (scheduling, not work)."""
    run = _run(tmp_path, {"im2col": registry.get("im2col")}, probe_s=lambda batch: 5.0, max_call_s=1.0)
    doc = _one(run, "im2col")
    (result,) = doc.results
    assert not doc.skipped and result.status == "ok"
    decided = result.settings["decided_by"]
    assert decided.startswith("timed: its first two calls (")
    assert "within the profile's 1.0 s per call" in decided and "not trusted" in decided


def test_samples_are_planned_from_a_warm_call_not_from_one_that_compiled(tmp_path):
    """A jitted call: the first compiles for 0.3 s, every later one takes microseconds.
    Planned from the first, it would get samples of one call and the minimum rounds."""
    jitted = type("Jitted", (type(registry.get("im2col")),), {"name": "jitted"})()
    real, calls = jitted.conv2d, []

    def conv2d(x, w, b, params):
        import time

        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.3)
        return real(x, w, b, params)

    jitted.conv2d = conv2d
    (result,) = _one(_run(tmp_path, {"jitted": jitted}, probe_s=lambda batch: 0.001), "jitted").results
    assert result.first_call_s >= 0.3
    assert result.settings["inner_calls"] > 1 and result.settings["rounds"] > get_profile("smoke").min_rounds
    assert "samples planned from" in result.settings["decided_by"]


def test_a_probe_whose_time_follows_its_work_may_skip_with_its_estimate(tmp_path):
    run = _run(tmp_path, {"im2col": registry.get("im2col")}, probe_s=lambda batch: 5.0 * batch,
               max_call_s=1.0)
    doc = _one(run, "im2col")
    (skip,) = doc.skipped
    assert not doc.results and skip.reason.startswith("estimated: over 10x the profile's 1.0 s per call")
    assert "grew 4.00x from batch 1 to 4 (trusted)" in skip.reason


def test_an_estimate_within_the_margin_is_settled_by_a_real_call(tmp_path):
    """Trusted probe, estimate 5x the limit (inside the 10x margin): the case's own calls decide."""
    slow = type("Slow", (type(registry.get("im2col")),), {"name": "slow"})()
    real = slow.conv2d

    def conv2d(x, w, b, params):
        import time

        time.sleep(0.05)
        return real(x, w, b, params)

    slow.conv2d = conv2d
    work = CONV.flops("forward")
    probe_flops = 8 * 16 * 16 * 8 * 9 * 2  # tc.probe_workload("conv2d", 1)
    limit = 0.02
    run = _run(tmp_path, {"slow": slow}, probe_s=lambda b: 5 * limit * b * probe_flops / work,
               max_call_s=limit)
    doc = _one(run, "slow")
    (skip,) = doc.skipped
    assert skip.reason.startswith("measured: its first ") and "0.02 s per call" in skip.reason


def test_a_plugin_right_only_on_its_first_call_is_wrong(tmp_path):
    run = _run(tmp_path, {"stale": bench_wrong_impl.Stale()})
    (result,) = _one(run, "stale").results
    assert result.status == "wrong" and result.check["detail"].startswith("last timed call: y[")
    assert result.check["calls"]["first_call"] == "within the bound"
    assert result.check["calls"]["last_call"].startswith("WRONG")


def test_a_plugin_that_returns_a_cached_output_for_new_inputs_is_wrong(tmp_path):
    run = _run(tmp_path, {"cached": bench_wrong_impl.Cached()})
    (result,) = _one(run, "cached").results
    assert result.status == "wrong"
    assert "a call on changed inputs returned the same y" in result.check["detail"]


def test_a_right_plugin_passes_every_call_check(tmp_path):
    (result,) = _one(_run(tmp_path, {"im2col": registry.get("im2col")}), "im2col").results
    assert result.status == "ok"
    assert result.check["calls"] == {"first_call": "within the bound", "last_call": "within the bound",
                                     "changed_input": "every output changed"}


def test_an_errored_case_is_recorded_as_an_error_never_as_timed(tmp_path):
    run = _run(tmp_path, {"oom": bench_wrong_impl.OutOfMemory()}, probe_s=lambda batch: 0.001 * batch)
    with pytest.raises(MemoryError):
        run.run_case(TimedCase("oom", "cpu", "float32", CONV, "forward"))
    (result,) = storage.read(run.result_file.path).results
    assert result.status == "error" and result.timing is None and "MemoryError" in result.error


def test_a_burst_of_load_on_the_larger_probe_makes_the_estimate_untrusted(tmp_path):
    """Seen on a loaded 2-core machine: the probe at 4x the batch took 18.8x longer."""
    times = {1: 0.01, 4: 0.188}
    run = _run(tmp_path, {"im2col": registry.get("im2col")}, probe_s=lambda batch: times[batch] * 1000,
               max_call_s=1.0)
    (result,) = _one(run, "im2col").results
    assert "grew 18.80x" in result.settings["decided_by"] and "not trusted" in result.settings["decided_by"]
