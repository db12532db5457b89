"""The benchmark harness: plans the cases, runs them group by group, records results as they finish.

:class:`Run` is a pytest plugin with one test per *group*: the implementations compared
on one (device, dtype, workload, pass). Each member is prepared alone (the decision to
time it, its first call, the reference check, its memory); then the members' timed rounds
run in interleaved blocks (:mod:`benchmarks.interleave`), so that a burst of load falls on
all of them alike; then each member's last call is checked and its result recorded. The
pytest glue in ``benchmarks/pytest_suite.py`` stays a few lines.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest

from implementations import Implementation, Unsupported
from implementations.geometry import ConvParams

from . import environment, interleave, layouts, measure, stats, timers
from . import timed_cases as tc
from .records import BenchmarkResult, SkippedCase, TaskSpec, Timing
from .storage import ResultFile
from .timed_cases import TimedCase
from .workloads import PASSES, Profile


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
class Prepared:
    """A case ready for its timed rounds: decided, called once, checked, memory measured."""

    case: TimedCase
    impl: Implementation
    placed: Any
    raw: Any  # the bound call (what a device timer times)
    call: Any  # the bound call followed by the implementation's ready(result)
    budget: Budget
    first_s: float
    decided: str
    check: dict[str, Any]
    memory: tuple[int | None, str]
    rounds: int  # timed samples
    inner: int  # calls per sample, from the first call (a cheap call's is recalibrated at its warm-up)
    warmup: bool
    reserved_s: float  # budget held for the samples until they are timed


def group_key(case: TimedCase) -> tuple[str, str, str, str]:
    """Cases compared with one another: the same device, dtype, workload and pass."""
    return case.device, case.dtype, case.workload.name, case.pass_


def group_id(group: Sequence[TimedCase]) -> str:
    device, dtype, workload, pass_ = group_key(group[0])
    return f"{device}-{dtype}-{workload}-{pass_}"


@dataclass(eq=False)  # pytest registers the instance as a plugin: it must stay hashable
class Run:
    profile: Profile
    impls: dict[str, Implementation]
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    result_file: ResultFile
    console: Any = None
    cold_cache: bool = False
    #: implementation -> the only dtypes it is timed in (e.g. a TF32 variant: float32)
    dtype_limits: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: CPU threads every implementation was given (``--threads``; :mod:`benchmarks.threads`)
    threads: int | None = None
    cases: list[TimedCase] = field(default_factory=list)
    _budgets: dict[tuple[str, str, str], Budget] = field(default_factory=dict)
    _rates: dict[tuple[str, ...], tuple[float, float, int, float]] = field(default_factory=dict)
    #: min seconds of ``repeats`` calls (after one warm-up); a test replaces it to simulate a slow probe
    _probe_timer: Any = field(default_factory=lambda: measure.min_time, init=False)
    _peaks: dict[str, dict[str, Any]] = field(default_factory=dict)
    _bandwidths: dict[str, dict[str, Any]] = field(default_factory=dict)
    _bound: dict[tuple[str, str], Implementation] = field(default_factory=dict)
    _done: int = 0

    def __post_init__(self) -> None:
        # Group-major order: the implementations compared on a workload run one after the
        # other and take turns in their timed rounds (run_group); a settle between two
        # implementations lets one framework's spinning thread pool stop before the next runs.
        held = {(name, device): _layouts(impl, device) for name, impl in self.impls.items()
                for device in self.devices}
        self.cases = [
            TimedCase(name, device, dtype, workload, pass_, layout)
            for device in self.devices
            for dtype in self.dtypes
            for workload in self.profile.workloads
            for pass_ in PASSES
            for name in self.impls
            if dtype in self.dtype_limits.get(name, self.dtypes)
            for layout in held[name, device]
        ]

    @property
    def groups(self) -> list[tuple[TimedCase, ...]]:
        """The cases in groups of those compared with one another (:func:`group_key`)."""
        return [tuple(g) for _, g in itertools.groupby(self.cases, key=group_key)]

    # -- pytest plugin hooks and fixtures --------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "bench_group" in metafunc.fixturenames:
            groups = self.groups
            metafunc.parametrize("bench_group", groups, ids=[group_id(g) for g in groups])

    @pytest.fixture
    def bench_run(self) -> Run:
        return self

    # -- one group of cases -------------------------------------------------------------
    def run_case(self, case: TimedCase) -> None:
        """Time one case alone (a group of one)."""
        self.run_group((case,))

    def run_group(self, group: Sequence[TimedCase]) -> None:
        """Prepare each case of ``group``, time the prepared ones in interleaved rounds, then
        check and record each (or record why not). A case that errors is recorded and the
        others go on; the test then fails with its error. A group with nothing timed skips."""
        ready: list[Prepared] = []
        skipped: list[str] = []
        errors: list[Exception] = []
        for case in group:
            self._done += 1
            measure.settle(SETTLE_S)
            try:
                ready.append(self._prepare(case))
            except Skip as skip:
                self._record_skip(case, str(skip))
                skipped.append(f"{case.impl}: {skip}")
            except Exception as exc:
                self._record_error(case, exc)
                errors.append(exc)
        contenders = [interleave.Contender(p.case.id, p.call, p.rounds, p.warmup, p.inner,
                                           self.profile.min_sample_s) for p in ready]
        interleave.run(contenders)
        for p, c in zip(ready, contenders, strict=True):
            try:
                if c.error is not None:
                    raise c.error
                result = self._finish(p, c, [q.case for q in ready if q is not p])
            except Exception as exc:
                self._record_error(p.case, exc)
                errors.append(exc)
                continue
            self.result_file.add_result(result)
            m = result.timing.summary if result.timing else None
            status = "ok" if result.status == "ok" else f"[red]WRONG[/red] {result.check['detail']}"
            if m is not None:
                self._say(p.case, f"{m.median_s * 1e3:9.3f} ms  IQR {m.relative_iqr * 100:4.1f}%  "
                                  f"{result.gflops:8.2f} GFLOP/s  {status}")
        if errors:
            raise errors[0]
        if not ready:
            pytest.skip("; ".join(skipped))

    def _record_error(self, case: TimedCase, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.result_file.add_result(BenchmarkResult(task_spec(case), "error", _now(), error=reason))
        self._say(case, f"[red]error[/red] {reason}")

    def _impl(self, case: TimedCase) -> Implementation:
        """The case's implementation, holding its arrays in the case's layout."""
        key = (case.impl, case.layout)
        if key not in self._bound:
            self._bound[key] = layouts.bind(self.impls[case.impl], case.layout)
        return self._bound[key]

    def _prepare(self, case: TimedCase) -> Prepared:
        """Decide whether ``case`` can be timed (see :data:`SKIP_RULE`), then make it ready."""
        impl = self._impl(case)
        self._check_claims(impl, case)
        probe = self._estimate(impl, case)
        limit = self.profile.max_call_s
        budget = self._budgets.setdefault((case.impl, case.device, case.dtype), Budget(self.profile.budget_s))
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
        tc.expectations(tc.check_workload(case.workload, case.pass_), case.pass_, case.dtype,
                        tuple(sorted(impl.reduced_precision.items())))  # cached; not the impl's time
        return self._ready(impl, case, probe, budget)

    def _rounds(self, sample_s: float) -> int:
        """Samples (of ``sample_s`` seconds each) that fill the profile's target time, within its limits."""
        p = self.profile
        return min(p.max_rounds, max(p.min_rounds, math.ceil(p.target_s / max(sample_s, 1e-9))))

    def _first_calls(self, call: Any, probe: Probe, budget: Budget) -> tuple[float, Any, str]:
        """The first call (time, output) and how the decision to time the case was made.

        A first call over the per-call limit may hold compilation or autotuning: a second
        call decides. Skip when both are over the limit, or when the first alone is over
        3x the limit (a second would cost too much)."""
        limit = self.profile.max_call_s
        try:
            first_s, out = measure.time_once(call)
        except Unsupported as exc:
            raise Skip(f"unsupported: {exc.reason}") from None
        budget.spent_s += first_s
        how = "its first call"
        if first_s > limit:
            if first_s > 3 * limit:
                raise Skip(f"measured: its first call took {first_s:.2f} s, over 3x the profile's {limit} s "
                           "per call")
            del out
            second_s, out = measure.time_once(call)
            budget.spent_s += second_s
            if second_s > limit:
                raise Skip(f"measured: its first two calls took {first_s:.2f} s and {second_s:.2f} s, "
                           f"over the profile's {limit} s per call")
            how = f"its second call ({second_s:.3g} s; the first, {first_s:.3g} s, held compilation)"
        return first_s, out, f"timed: {how} within the profile's {limit} s per call; probe {probe.describe()}"

    def _ready(self, impl: Implementation, case: TimedCase, probe: Probe, budget: Budget) -> Prepared:
        """The first call(s), the rounds that fit the budget, the first output's check and the
        peak memory: all but the timed rounds."""
        placed = tc.place(impl, case)
        raw = tc.bound_call(impl, case, placed)
        call = measure.until_ready(raw, impl.ready)
        first_s, out, decided = self._first_calls(call, probe, budget)
        inner = interleave.calls_per_sample(first_s, self.profile.min_sample_s)
        sample_s = first_s * inner
        rounds = self._rounds(sample_s)
        left = budget.limit_s - budget.spent_s
        if sample_s * rounds > left:  # fewer samples to fit the budget, never fewer than min_rounds
            rounds = max(self.profile.min_rounds, int(left // max(sample_s, 1e-9)))
            if sample_s * rounds > left:
                raise Skip(f"time budget of {budget.limit_s:.0f} s for {case.impl}/{case.device}/"
                           f"{case.dtype}: measured {first_s:.2f} s per call, {rounds} samples of "
                           f"{inner} call(s) need {sample_s * rounds:.1f} s, {max(left, 0):.1f} s left")
        check = self._check(impl, case, out)
        del out
        if first_s < 1.0:
            memory = measure.peak_memory(call, case.device, case.impl, timers.holds_torch(placed))
        else:
            memory = None, f"not measured: one call takes {first_s:.1f} s"
        # untimed calls open each block of rounds where calls are cheap
        warmup = first_s * self.profile.min_rounds < self.profile.target_s
        reserved = sample_s * rounds
        budget.spent_s += reserved
        return Prepared(case, impl, placed, raw, call, budget, first_s, decided, check, memory, rounds,
                        inner, warmup, reserved)

    def _finish(self, p: Prepared, timed: interleave.Contender,
                alongside: list[TimedCase]) -> BenchmarkResult:
        """The result of a prepared case whose rounds ``timed`` holds: the last call checked,
        the device's own time on a GPU, the metrics."""
        case, impl, wl = p.case, p.impl, p.case.workload
        host = Timing(HOST_METHOD, tuple(timed.times))
        p.budget.spent_s += timed.sampled_s - p.reserved_s  # timed samples only (not the warm-ups)
        check = self._check_last(impl, case, timed.last, p.check)
        timed.last = None
        device = None
        if case.device != "cpu":  # on a GPU the device's own time is the primary figure
            timer = timers.device_timer(impl, case.device, p.placed, self.cold_cache)
            # a round of several calls is already an average: fewer rounds, the same calls
            device_rounds = max(self.profile.min_rounds, math.ceil(p.rounds / timer.calls_per_round))
            device = Timing(timer.method, tuple(timer.times(p.raw, device_rounds)))

        precision = impl.reduced_precision.get(case.dtype, case.dtype)
        itemsize = np.dtype(tc.numpy_dtype(case.dtype)).itemsize
        peak = self._peak(case.device, case.dtype, precision)
        memory, memory_method = p.memory
        blocks = len(interleave.block_starts([p.rounds]))
        return BenchmarkResult(
            task=task_spec(case), status="ok" if check["ok"] else "wrong", finished=_now(),
            host_time=host, device_time=device, first_call_s=p.first_s, precision=precision,
            flops=wl.flops(case.pass_),
            flops_kind="direct-conv FLOPs" if wl.op == "conv2d" else "window elements",
            min_bytes=wl.min_bytes(case.pass_, itemsize), peak_gflops=peak["gflops"],
            peak_method=peak["method"],
            peak_memory_bytes=memory, memory_method=memory_method, check=check,
            settings={"warmup_rounds": timed.warmup_calls, "rounds": p.rounds, "blocks": blocks,
                      "inner_calls": timed.inner, "turns": list(timed.turns),
                      "interleaved_with": [f"{c.impl} {c.layout}" for c in alongside],
                      "decided_by": p.decided, **_tuning(impl, case.device),
                      **({"threads": self.threads} if self.threads and case.device == "cpu" else {})},
        )

    def _check_last(self, impl: Implementation, case: TimedCase, out: Any,
                    first: dict[str, Any]) -> dict[str, Any]:
        """The last timed call's output against the reference, and a call on changed inputs,
        whose every output must differ from the last call's (no cached or stale result)."""
        names = tc.output_names(case.workload, case.pass_)
        last = tuple(np.asarray(impl.to_numpy(o)) for o in tc.outputs_of(out))
        calls = {"first_call": "within the bound" if first["ok"] else f"WRONG {first['detail']}"}
        answer = first
        if tc.check_workload(case.workload, case.pass_) == case.workload:
            v = tc.check_outputs(case.id, case.workload, case.pass_, case.dtype, last, impl.reduced_precision)
            calls["last_call"] = "within the bound" if v["ok"] else f"WRONG {v['detail']}"
            if not v["ok"] and first["ok"]:
                answer = {**first, **v, "detail": f"last timed call: {v['detail']}"}
        else:
            calls["last_call"] = "not checked: the reference is of a smaller batch"
        changed_case = replace(case, workload=case.workload, salt=1)
        changed = tc.bound_call(impl, changed_case, tc.place(impl, changed_case))()
        impl.ready(changed)
        again = tuple(np.asarray(impl.to_numpy(o)) for o in tc.outputs_of(changed))
        same = [n for n, a, b in zip(names, last, again, strict=False)
                if a.shape == b.shape and np.array_equal(a, b)]
        calls["changed_input"] = ("every output changed" if not same else
                                  f"WRONG: {', '.join(same)} did not change when the inputs changed")
        if same and answer["ok"]:
            answer = {**answer, "ok": False, "worst_ratio": float("inf"),
                      "detail": f"a call on changed inputs returned the same {', '.join(same)} as the last "
                                "timed call (a cached or stale output)"}
        return {**answer, "calls": calls}

    def _check(self, impl: Implementation, case: TimedCase, out: Any) -> dict[str, Any]:
        """The first call's output ``out`` against its float64 reference; when the timed
        problem is too big for a float64 reference, a call of the same layer at a smaller batch."""
        checked = tc.check_workload(case.workload, case.pass_)
        if checked != case.workload:
            small = TimedCase(case.impl, case.device, case.dtype, checked, case.pass_, case.layout)
            out = tc.bound_call(impl, small, tc.place(impl, small))()
        found = tuple(impl.to_numpy(o) for o in tc.outputs_of(out))
        precision = impl.reduced_precision.get(case.dtype, case.dtype)
        answer = tc.check_outputs(case.id, checked, case.pass_, case.dtype, found, impl.reduced_precision)
        of = "the timed problem" if checked == case.workload else f"the same layer at batch {checked.batch}"
        return {**answer, "reference": tc.reference(checked, case.pass_).source, "precision": precision,
                "batch": checked.batch, "of": of}

    # -- helpers ----------------------------------------------------------------------
    def _check_claims(self, impl: Implementation, case: TimedCase) -> None:
        if case.device not in impl.devices:
            raise Skip(f"{case.impl} does not run on {case.device} (devices {list(impl.devices)})")
        if case.dtype not in impl.dtypes:
            raise Skip(f"{case.impl} does not claim {case.dtype} (dtypes {list(impl.dtypes)})")
        if case.operation not in impl.features:
            raise Skip(f"{case.impl} does not claim {case.operation}")
        p = case.workload.params
        if isinstance(p, ConvParams) and p.groups > 1 and "groups" not in impl.features:
            raise Skip(f"{case.impl} does not claim groups (workload has groups={p.groups})")

    def _estimate(self, impl: Implementation, case: TimedCase) -> Probe:
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
        if key not in self._rates:
            batch, seconds = 1, self._probe(impl, case, 1)
            while seconds < PROBE_MIN_S and batch < PROBE_MAX_BATCH:
                batch *= 4
                seconds = self._probe(impl, case, batch)
            bigger = self._probe(impl, case, 4 * batch)
            work = tc.probe_workload(case.workload.op, batch).flops(case.pass_)
            rate = max(work / max(seconds, 1e-9), 4 * work / max(bigger, 1e-9))  # the less disturbed
            self._rates[key] = (rate, bigger / max(seconds, 1e-9), 4 * batch, bigger)
        rate, growth, batch, bigger = self._rates[key]
        trusted = PROBE_MIN_GROWTH <= growth <= PROBE_MAX_GROWTH and bigger >= TRUST_MIN_S
        return Probe(case.workload.flops(case.pass_) / rate, trusted, growth, batch)

    def _probe(self, impl: Implementation, case: TimedCase, batch: int) -> float:
        probe = TimedCase(case.impl, case.device, case.dtype, tc.probe_workload(case.workload.op, batch),
                          case.pass_, case.layout)
        call = measure.until_ready(tc.bound_call(impl, probe, tc.place(impl, probe)), impl.ready)
        try:
            return self._probe_timer(call, 3)
        except Unsupported as exc:
            raise Skip(f"unsupported: {exc.reason}") from None

    def measure_peaks(self, at: str = "start") -> None:
        """GEMM peak and copy bandwidth of every device and precision, at the start of the run
        (before any implementation, so no framework's thread pool is spinning while a GEMM is
        timed) and again at its end (``at="end"``): a machine whose speed changed by more than
        :data:`SPEED_CHANGE` between the two is said to have changed speed during the run."""
        for device in self.devices:
            for dtype in self.dtypes:
                for precision in {impl.reduced_precision.get(dtype, dtype) for impl in self.impls.values()}:
                    self._peak(device, dtype, precision)
        if at != "end":
            return
        measure.settle(SETTLE_S)  # the last implementation's pools stop spinning
        for key, peak in self._peaks.items():
            if peak.get("gflops") is None:
                continue
            device, precision = key.split("/")
            tf32 = precision == "tf32"
            again = measure.gemm_peak(device, "float32" if tf32 else precision, self.profile.gemm_size,
                                      "tf32" if tf32 else None)
            peak.update(end_gflops=again["gflops"], end_method=again["method"],
                        changed=_changed(peak["gflops"], again["gflops"]))
        for device, bw in self._bandwidths.items():
            if bw.get("gbytes_per_s") is None:
                continue
            again = measure.bandwidth(device, 256 if device == "cuda" else 64)
            bw.update(end_gbytes_per_s=again["gbytes_per_s"],
                      changed=_changed(bw["gbytes_per_s"], again["gbytes_per_s"]))
        self.result_file.update(peaks=self._peaks, bandwidth=self._bandwidths)

    def _peak(self, device: str, dtype: str, precision: str) -> dict[str, Any]:
        tf32 = precision == "tf32" and device == "cuda"  # TF32 is a CUDA tensor-core mode only
        key = f"{device}/{'tf32' if tf32 else dtype}"
        if key not in self._peaks:
            try:
                self._peaks[key] = measure.gemm_peak(device, dtype, self.profile.gemm_size,
                                                     "tf32" if tf32 else None)
            except (ImportError, RuntimeError) as exc:  # CUDA without torch (or without a GPU): no GEMM
                self._peaks[key] = {"gflops": None, "method": f"not measured: {exc}"}
            self.result_file.update(peaks=self._peaks)
        if device not in self._bandwidths:
            try:
                self._bandwidths[device] = measure.bandwidth(device, 256 if device == "cuda" else 64)
            except (ImportError, RuntimeError) as exc:
                self._bandwidths[device] = {"gbytes_per_s": None, "method": f"not measured: {exc}"}
            self.result_file.update(bandwidth=self._bandwidths)
        return self._peaks[key]

    def _record_skip(self, case: TimedCase, reason: str) -> None:
        self.result_file.add_skip(SkippedCase(task_spec(case), reason))
        self._say(case, f"[yellow]skipped[/yellow] {reason}")

    def _say(self, case: TimedCase, text: str) -> None:
        line = (f"[{self._done:>3}/{len(self.cases)}] {case.impl:>10} {case.device} {case.dtype} "
                f"{case.layout} {case.workload.name:<36} {case.pass_:<8} {text}")
        if self.console is not None:
            self.console.print(line, highlight=False, soft_wrap=True)
        else:  # without rich: the same line, its colour markup removed
            print(re.sub(r"\[/?(red|yellow)\]", "", line), flush=True)


HOST_METHOD = ("host clock (time.perf_counter) around samples of inner_calls calls, each call followed by "
               "the implementation's ready(result), a sample lasting at least the profile's "
               "min_sample_s; time per call = sample / inner_calls; the "
               "implementations compared on a workload take turns, one sample each per turn (turns "
               f"recorded), in up to {interleave.BLOCKS} blocks, a cheap call's block opened by untimed "
               f"samples until two agree within {interleave.SETTLE_TOLERANCE:.0%} (at most "
               f"{interleave.WARMUP_MAX_SAMPLES})")


def task_spec(case: TimedCase) -> TaskSpec:
    """The record of what ``case`` measures."""
    wl = case.workload
    p = wl.params
    return TaskSpec(
        impl=case.impl, device=case.device, dtype=case.dtype, layout=case.layout, workload=wl.name,
        network=wl.layer.network, layer=wl.layer.name, op=wl.op, pass_=case.pass_, batch=wl.batch,
        x_shape=tuple(p.x_shape), w_shape=tuple(p.w_shape) if isinstance(p, ConvParams) else None,
    )


def _layouts(impl: Implementation, device: str) -> tuple[str, ...]:
    """The layouts to time ``impl`` in on ``device`` (decided by the tensors it places)."""
    if device not in impl.devices or not impl.dtypes:
        return (layouts.NCHW,)  # every case will be skipped with the reason
    sample = impl.to_device(np.zeros((1, 1, 1, 1), tc.numpy_dtype(impl.dtypes[0])), device)
    return layouts.layouts(impl, device, sample)


def _tuning(impl: Implementation, device: str) -> dict[str, Any]:
    """Autotuning flags in force for this result (cuDNN's benchmark mode for torch on CUDA)."""
    flag = getattr(impl, "cudnn_benchmark", None)
    return {"cudnn_benchmark": flag} if device == "cuda" and flag is not None else {}


#: Start and end peaks further apart than this (relative to the higher): the machine's speed changed.
SPEED_CHANGE = 0.20


def _changed(start: float, end: float) -> bool:
    return abs(end - start) > SPEED_CHANGE * max(start, end)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def header(profile: Profile, impls: dict[str, Implementation], devices: tuple[str, ...] | list[str],
           dtypes: tuple[str, ...] | list[str], machine: str, command: str,
           cold_cache: bool = False) -> dict[str, Any]:
    """The run-level fields of a result file: what, where, with which versions."""
    env = environment.collect(tuple(devices))
    return {
        "machine": machine or env["hostname"],
        "profile": profile.name,
        "command": command,
        "started": _now(),
        "environment": env,
        "implementations": {name: impl.describe() for name, impl in impls.items()},
        "devices": list(devices),
        "dtypes": list(dtypes),
        "settings": {"target_s": profile.target_s, "min_sample_s": profile.min_sample_s,
                     "min_rounds": profile.min_rounds,
                     "max_rounds": profile.max_rounds, "max_call_s": profile.max_call_s,
                     "budget_s": profile.budget_s, "noise_threshold": stats.NOISE_THRESHOLD,
                     "skip_rule": SKIP_RULE, "confidence": stats.CONFIDENCE,
                     "timer": HOST_METHOD,
                     "device_timer": "on a GPU: CUDA events (torch tensors), else amortised calls",
                     "cold_cache": cold_cache},
        "peaks": {},
        "bandwidth": {},
    }
