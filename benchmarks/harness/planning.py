"""Planning a case: whether it is timed (the skip policy, probes, budgets) and how (samples).

:class:`Planner` decides, before and after a case's first call, whether the case is timed
(:data:`SKIP_RULE`) and how many samples of how many calls it gets within its
(implementation, device, dtype) time budget. It measures only what the decision needs (rate
probes, the first calls); the timed samples are :mod:`benchmarks.interleave`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from implementations import Implementation, Unsupported
from implementations.geometry import ConvParams

from .. import interleave, measure
from .. import timed_cases as tc
from ..timed_cases import TimedCase
from ..workloads import Profile


@dataclass
class Budget:
    """Seconds of timed calls (first calls and rounds; not the warm-up calls that open each
    interleaved block, the checks, probes or memory measurement) an (implementation, device,
    dtype) may spend. The warm-ups are the price of taking turns, not the implementation's:
    under six busy processes they took 17 s of torch's 60 s and it lost 8 rows."""

    limit_s: float
    spent_s: float = 0.0


#: A rate probe is grown until one call takes this long (or reaches PROBE_MAX_BATCH images).
PROBE_MIN_S = 0.02
PROBE_MAX_BATCH = 64
#: The larger probe must take at least this long for its rate to be trusted: a busy machine's
#: scheduling delays (a few time slices of some milliseconds) are then small beside the work.
TRUST_MIN_S = 0.1
#: The probe at 4x the batch must take between this many times longer and PROBE_MAX_GROWTH
#: times longer for its rate to be trusted (4x the work: about 4x the time, unless per-call
#: overhead dominates (less) or a burst of load hit one of the two (either way)).
PROBE_MIN_GROWTH = 2.0
PROBE_MAX_GROWTH = 8.0
#: A trusted estimate skips a case only when it is over this many times the per-call limit
#: (or the budget left): a margin for the load that slowed the probe (six busy processes on
#: two cores slow a single-threaded probe about 3.5x).
ESTIMATE_MARGIN = 10.0

SKIP_RULE = (
    "A case is skipped as too slow (1) when its own first call took over 3x the profile's per-call limit, "
    "or its first two calls both took over it (measured); or (2) when a trusted probe estimate is over "
    f"{ESTIMATE_MARGIN:g}x the limit, or its minimum rounds over {ESTIMATE_MARGIN:g}x the time budget left. "
    "A probe (a small convolution or pooling of the same kind, grown until a call takes "
    f"{PROBE_MIN_S * 1e3:g} ms, then timed at 4x its batch) is trusted only when the larger probe took "
    f"{PROBE_MIN_GROWTH:g}x to {PROBE_MAX_GROWTH:g}x longer and at least {TRUST_MIN_S:g} s, so its time "
    "follows the work and not per-call "
    "overhead or a burst of load; its rate is the faster of the two probes' (load only slows a probe). "
    "Rounds are cut to fit the budget, never below the profile's minimum."
)


@dataclass(frozen=True)
class Probe:
    """The estimate of one call's seconds, and whether it may skip a case."""

    seconds: float
    trusted: bool
    growth: float  # time at 4x the batch / time at the batch
    batch: int

    def describe(self) -> str:
        bounds = f"{PROBE_MIN_GROWTH:g}x-{PROBE_MAX_GROWTH:g}x and >= {TRUST_MIN_S:g} s"
        trust = "trusted" if self.trusted else f"not trusted: needs {bounds}"
        return (f"estimate {self.seconds:.3g} s; the probe's time grew {self.growth:.2f}x "
                f"from batch {self.batch // 4} to {self.batch} ({trust})")
#: At most this many seconds are waited, before each case's first call and probes, for the
#: previous implementation's thread pools to stop spinning (:func:`benchmarks.measure.settle`);
#: within the interleaved rounds each block's warm-up calls take that place.
SETTLE_S = 1.0


class Skip(Exception):
    """A case that will not be timed, with the reason recorded in the result file."""



@dataclass
class Planner:
    """The skip policy and the sampling plan of one run's cases."""

    profile: Profile
    budgets: dict[tuple[str, str, str], Budget] = field(default_factory=dict)
    rates: dict[tuple[str, ...], tuple[float, float, int, float]] = field(default_factory=dict)
    #: min seconds of ``repeats`` calls (after one warm-up); a test replaces it to simulate a slow probe
    probe_timer: Any = field(default_factory=lambda: measure.min_time)

    def admit(self, impl: Implementation, case: TimedCase) -> tuple[Probe, Budget]:
        """The probe estimate and the budget of a case that may be timed (:data:`SKIP_RULE`);
        :class:`Skip` with the reason for one that may not."""
        check_claims(impl, case)
        probe = self.estimate(impl, case)
        limit = self.profile.max_call_s
        budget = self.budgets.setdefault((case.impl, case.device, case.dtype), Budget(self.profile.budget_s))
        left = budget.limit_s - budget.spent_s
        what = f"{case.impl}/{case.device}/{case.dtype}"
        if left <= 0:
            raise Skip(f"time budget of {budget.limit_s:.0f} s for {what} spent "
                       f"(measured: {budget.spent_s:.1f} s of timed calls so far)")
        if probe.trusted and probe.seconds > ESTIMATE_MARGIN * limit:
            raise Skip(f"estimated: over {ESTIMATE_MARGIN:g}x the profile's {limit} s per call "
                       f"({probe.describe()})")
        if probe.trusted and probe.seconds * self.profile.min_rounds > ESTIMATE_MARGIN * left:
            raise Skip(f"time budget of {budget.limit_s:.0f} s for {what}: {left:.1f} s left, "
                       f"{self.profile.min_rounds} calls estimated at {probe.seconds:.3g} s each, over "
                       f"{ESTIMATE_MARGIN:g}x what is left ({probe.describe()})")
        return probe, budget

    def first_calls(self, call: Any, probe: Probe, budget: Budget) -> tuple[float, float, Any, str]:
        """The first call's seconds, the *steady* seconds of a call, the output, and how the
        decision to time the case was made.

        A first call may hold compilation (JAX's jit, TensorFlow's kernels and oneDNN
        primitives), autotuning or cold caches, so a second call always follows, and the
        faster of the two is the steady time the samples are planned from: planned from
        the first, a jitted call of 2 ms that compiled for 0.2 s got samples of one call
        and the minimum rounds (relative IQR 14% against 5% planned from the second).
        Skip when both calls are over the per-call limit, or when the first alone is over
        3x the limit (a second would cost too much)."""
        limit = self.profile.max_call_s
        try:
            first_s, out = measure.time_once(call)
        except Unsupported as exc:
            raise Skip(f"unsupported: {exc.reason}") from None
        budget.spent_s += first_s
        if first_s > 3 * limit:
            raise Skip(f"measured: its first call took {first_s:.2f} s, over 3x the profile's {limit} s "
                       "per call")
        second_s = measure.time_once(call)[0]  # the first call's output is the one checked
        budget.spent_s += second_s
        if first_s > limit and second_s > limit:
            raise Skip(f"measured: its first two calls took {first_s:.2f} s and {second_s:.2f} s, "
                       f"over the profile's {limit} s per call")
        steady_s = min(first_s, second_s)
        how = (f"its first two calls ({first_s:.3g} s, {second_s:.3g} s; samples planned from "
               f"{steady_s:.3g} s)")
        return first_s, steady_s, out, f"timed: {how} within the profile's {limit} s per call; " \
            f"probe {probe.describe()}"

    def rounds(self, sample_s: float) -> int:
        """Samples (of ``sample_s`` seconds each) that fill the profile's target time, within its limits."""
        p = self.profile
        return min(p.max_rounds, max(p.min_rounds, math.ceil(p.target_s / max(sample_s, 1e-9))))

    def samples(self, case: TimedCase, call_s: float, budget: Budget) -> tuple[int, int, float]:
        """(samples, calls per sample, seconds reserved) of a case whose steady call takes ``call_s``:
        samples filling the profile's target, cut to fit the budget (never below its minimum)."""
        inner = interleave.calls_per_sample(call_s, self.profile.min_sample_s)
        sample_s = call_s * inner
        count = self.rounds(sample_s)
        left = budget.limit_s - budget.spent_s
        if sample_s * count > left:  # fewer samples to fit the budget, never fewer than min_rounds
            count = max(self.profile.min_rounds, int(left // max(sample_s, 1e-9)))
            if sample_s * count > left:
                raise Skip(f"time budget of {budget.limit_s:.0f} s for {case.impl}/{case.device}/"
                           f"{case.dtype}: measured {call_s:.2f} s per call, {count} samples of "
                           f"{inner} call(s) need {sample_s * count:.1f} s, {max(left, 0):.1f} s left")
        budget.spent_s += sample_s * count
        return count, inner, sample_s * count

    def estimate(self, impl: Implementation, case: TimedCase) -> Probe:
        """Seconds one call should take: the case's work at the rate of a small probe.

        The probe's batch grows (x4) until a call takes over :data:`PROBE_MIN_S`, then is
        timed once more at 4x that batch; the fastest of a few calls counts, and the faster
        rate of the two probes. The estimate is *trusted* (may skip a case, :data:`SKIP_RULE`)
        only where the larger probe took 2x to 8x as long, and at least :data:`TRUST_MIN_S`:
        then the time follows the work,
        not the per-call overhead or a burst of other processes' load, which slow a small
        probe of a fast implementation by orders of magnitude on a busy machine.
        """
        key = (case.impl, case.device, case.dtype, case.layout, case.operation)
        if key not in self.rates:
            batch, seconds = 1, self.probe(impl, case, 1)
            while seconds < PROBE_MIN_S and batch < PROBE_MAX_BATCH:
                batch *= 4
                seconds = self.probe(impl, case, batch)
            bigger = self.probe(impl, case, 4 * batch)
            work = tc.probe_workload(case.workload.op, batch).flops(case.pass_)
            rate = max(work / max(seconds, 1e-9), 4 * work / max(bigger, 1e-9))  # the less disturbed
            self.rates[key] = (rate, bigger / max(seconds, 1e-9), 4 * batch, bigger)
        rate, growth, batch, bigger = self.rates[key]
        trusted = PROBE_MIN_GROWTH <= growth <= PROBE_MAX_GROWTH and bigger >= TRUST_MIN_S
        return Probe(case.workload.flops(case.pass_) / rate, trusted, growth, batch)

    def probe(self, impl: Implementation, case: TimedCase, batch: int) -> float:
        probe = TimedCase(case.impl, case.device, case.dtype, tc.probe_workload(case.workload.op, batch),
                          case.pass_, case.layout)
        call = measure.until_ready(tc.bound_call(impl, probe, tc.place(impl, probe)),
                                   measure.ready_of(impl, case.device))
        try:
            return self.probe_timer(call, 3)
        except Unsupported as exc:
            raise Skip(f"unsupported: {exc.reason}") from None


def check_claims(impl: Implementation, case: TimedCase) -> None:
    """Skip a case the implementation does not claim (device, dtype, operation, groups)."""
    if case.device not in impl.devices:
        raise Skip(f"{case.impl} does not run on {case.device} (devices {list(impl.devices)})")
    if case.dtype not in impl.dtypes:
        raise Skip(f"{case.impl} does not claim {case.dtype} (dtypes {list(impl.dtypes)})")
    if case.operation not in impl.features:
        raise Skip(f"{case.impl} does not claim {case.operation}")
    p = case.workload.params
    if isinstance(p, ConvParams) and p.groups > 1 and "groups" not in impl.features:
        raise Skip(f"{case.impl} does not claim groups (workload has groups={p.groups})")
