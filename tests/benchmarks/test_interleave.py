"""Interleaved rounds: the schedule, a burst of load on synthetic timings, and the harness taking turns."""

import itertools
from dataclasses import replace

import pytest

from benchmarks import interleave, measure, stats, storage
from benchmarks.harness import Run, group_id
from benchmarks.interleave import Contender, blocks_of, schedule
from benchmarks.storage import ResultFile
from benchmarks.workloads import LAYERS, Workload, get_profile
from implementations import registry


def test_blocks_are_as_even_as_can_be_and_keep_every_round():
    assert blocks_of(12, 5) == [3, 3, 2, 2, 2]
    assert blocks_of(3, 5) == [1, 1, 1, 0, 0]
    assert sum(blocks_of(29, 5)) == 29
    with pytest.raises(ValueError, match="blocks=0"):
        blocks_of(3, 0)


def test_the_order_of_the_contenders_rotates_from_turn_to_turn():
    turns = schedule([5, 5, 5])
    assert [t for t, _ in turns] == [t for t in range(5) for _ in range(3)]  # one sample each per turn
    order = [i for _, i in turns]
    assert order == [0, 1, 2, 1, 2, 0, 2, 0, 1, 0, 1, 2, 1, 2, 0]
    # every contender is first in some turn and last in another
    firsts = {order[3 * t] for t in range(5)}
    lasts = {order[3 * t + 2] for t in range(5)}
    assert firsts == lasts == {0, 1, 2}


def test_a_contender_with_fewer_samples_drops_out_and_every_sample_is_scheduled_once():
    turns = schedule([2, 7])
    assert sum(i == 0 for _, i in turns) == 2 and sum(i == 1 for _, i in turns) == 7
    assert [i for _, i in turns][:5] == [0, 1, 1, 0, 1]
    assert interleave.block_starts([2, 7]) == {0, 3, 5}


class _Machine:
    """A synthetic clock: every call takes ``work`` seconds, five times longer while a burst
    of other load runs (from ``burst[0]`` to ``burst[1]`` seconds)."""

    def __init__(self, burst):
        self.now, self.burst = 0.0, burst

    def clock(self):
        return self.now

    def impl(self, work):
        def call():
            slow = self.burst[0] <= self.now < self.burst[1]
            self.now += work * (5 if slow else 1)
            return self.now

        return call


def _ranked(contenders):
    a, b = (stats.measurement_of(c.times) for c in contenders)
    return stats.separated(a.ci_low_s, a.ci_high_s, b.ci_low_s, b.ci_high_s)


def test_a_burst_of_load_makes_a_false_ranking_back_to_back_and_none_when_interleaved():
    # Two equally fast implementations, 20 rounds of 10 ms each; a burst of 0.8 s starts
    # as the second one's rounds would start when timed back to back.
    back_to_back = _Machine(burst=(0.2, 1.0))
    pair = [Contender("a", back_to_back.impl(0.01), 20), Contender("b", back_to_back.impl(0.01), 20)]
    for c in pair:
        interleave.run([c], clock=back_to_back.clock)
    assert _ranked(pair)  # "a" looks faster, with intervals apart: the burst's doing
    assert stats.measurement_of(pair[1].times).median_s > 2 * stats.measurement_of(pair[0].times).median_s

    taking_turns = _Machine(burst=(0.2, 1.0))
    pair = [Contender("a", taking_turns.impl(0.01), 20), Contender("b", taking_turns.impl(0.01), 20)]
    interleave.run(pair, blocks=5, clock=taking_turns.clock)
    assert not _ranked(pair)  # the burst fell on both: no clear difference
    assert [sum(t > 0.02 for t in c.times) for c in pair] == [8, 8]  # both were slowed alike
    assert pair[0].turns == pair[1].turns == list(range(20))  # paired: one sample of each per turn
    medians = [stats.measurement_of(c.times).median_s for c in pair]
    assert medians[0] == pytest.approx(medians[1])


def test_a_real_difference_still_shows_when_interleaved():
    machine = _Machine(burst=(0.1, 0.3))
    pair = [Contender("fast", machine.impl(0.01), 20), Contender("slow", machine.impl(0.03), 20)]
    interleave.run(pair, clock=machine.clock)
    assert _ranked(pair)


def test_a_cheap_call_is_sampled_in_calibrated_batches_after_a_warm_up_that_settles():
    machine = _Machine(burst=(0, 0))
    pair = [Contender("cheap", machine.impl(0.001), 4, warmup=True), Contender("dear", machine.impl(0.2), 4)]
    interleave.run(pair, blocks=2, clock=machine.clock)
    cheap, dear = pair
    assert cheap.inner == 20 and dear.inner == 1  # 20 ms samples: 20 calls of 1 ms, one of 200 ms
    assert cheap.times == pytest.approx([0.001] * 4) and len(dear.times) == 4
    assert cheap.sampled_s == pytest.approx(4 * 0.02)
    # each of the 2 blocks: two warm-up samples that agree (the first also 3 calibrating calls)
    assert cheap.warmup_calls == 3 + 2 * 2 * 20 + 4  # and one untimed lead-in call per sample
    assert dear.warmup_calls == 0 and dear.warmup_s == 0  # not flagged: no warm-up


def test_the_cold_first_call_after_another_contender_is_left_out_of_the_sample():
    """The other contender evicts this one's caches: its first call after it is 5x slower."""
    now = [0.0]
    cold = [True]

    def cheap():
        now[0] += 0.005 if cold[0] else 0.001
        cold[0] = False

    def evicts():
        now[0] += 0.05
        cold[0] = True

    pair = [Contender("cheap", cheap, 6, inner=10), Contender("evicts", evicts, 6)]
    interleave.run(pair, clock=lambda: now[0])
    assert pair[0].times == pytest.approx([0.001] * 6)  # the slow first call of each turn untimed
    assert pair[0].warmup_calls == 6 and pair[1].warmup_calls == 0  # a sample of one call has no lead-in


def test_warm_up_stops_at_a_cap_when_the_samples_never_settle():
    machine = _Machine(burst=(0, 0))
    calls = itertools.count()

    def drifting():  # 1 ms for the calibrating calls, then 10% slower with each sample of 20
        machine.now += 0.001 * 1.1 ** (max(next(calls) - 3, 0) // 20)

    c = Contender("drifting", drifting, 2, warmup=True)
    interleave.run([c], blocks=1, clock=machine.clock)
    lead_ins = 2
    assert c.warmup_calls == interleave.WARMUP_CALLS + interleave.WARMUP_MAX_SAMPLES * c.inner + lead_ins
    assert interleave.calls_per_sample(0.5) == 1 and interleave.calls_per_sample(1e-4) == 200


def test_a_contender_that_raises_stops_and_the_others_are_still_timed():
    calls = iter(range(100))

    def flaky():
        if next(calls) == 2:
            raise RuntimeError("boom")

    machine = _Machine(burst=(0, 0))
    pair = [Contender("flaky", flaky, 5), Contender("fine", machine.impl(0.01), 5)]
    interleave.run(pair, clock=machine.clock)
    assert isinstance(pair[0].error, RuntimeError)
    assert len(pair[1].times) == 5


def test_settle_returns_at_once_when_the_process_is_idle():
    # the harness waits so before each case's first call, after another implementation ran
    assert measure.settle(1.0) < 0.5


CONV = Workload(LAYERS["lenet5.c3"], 2)


class _Logged(type(registry.get("im2col"))):
    """im2col that writes its name in a shared log at each forward call."""

    log: list = []

    def conv2d(self, *args, **kwargs):
        self.log.append(self.name)
        return super().conv2d(*args, **kwargs)


def test_the_harness_times_a_group_in_turns_and_records_whom_each_was_timed_with(tmp_path):
    a, b = _Logged(), _Logged()
    a.name, b.name = "first", "second"
    _Logged.log = []
    profile = replace(get_profile("smoke"), workloads=(CONV,), min_rounds=5, max_rounds=5, target_s=1e-9)
    run = Run(profile, {"first": a, "second": b}, ("cpu",), ("float32",),
              ResultFile(tmp_path / "r.json", {"machine": "m"}))
    groups = run.groups
    assert [group_id(g) for g in groups] == [f"cpu-float32-{CONV.name}-forward",
                                              f"cpu-float32-{CONV.name}-backward"]
    assert [c.impl for c in groups[0]] == ["first", "second"]
    run.run_group(groups[0])
    doc = storage.read(tmp_path / "r.json")
    by_impl = {r.task.impl: r for r in doc.results}
    assert by_impl["first"].settings["interleaved_with"] == ["second NCHW"]
    assert by_impl["second"].settings["blocks"] == 3
    assert all(len(r.host_time.times_s) == 5 for r in doc.results)
    assert all(r.settings["turns"] == [0, 1, 2, 3, 4] for r in doc.results)
    inner = {r.task.impl: r.settings["inner_calls"] for r in doc.results}
    # five samples of each, one per turn, the order rotating (first call, probes, checks and
    # memory come before; the profile's target makes the calls dear: no warm-up calls)
    # a sample of more than one call is led in by one untimed call
    f, s_ = (n + (n > 1) for n in (inner["first"], inner["second"]))
    samples = _Logged.log[:-2][-5 * (f + s_):]  # last two: changed-input checks
    runs = [(name, len(list(calls))) for name, calls in itertools.groupby(samples)]
    # turns f s | s f | f s | s f | f s
    assert runs == [("first", f), ("second", 2 * s_), ("first", 2 * f), ("second", 2 * s_), ("first", 2 * f),
                    ("second", s_)]
