"""The benchmark harness: runs the cases group by group and records results as they finish.

:class:`Run` is a pytest plugin with one test per *group*: the implementations compared
on one (device, dtype, workload, pass). Each member is prepared alone (the decision to
time it, its first call, the reference check, its memory); then the members' timed samples
take turns (:mod:`benchmarks.interleave`), so that a burst of load falls on all of them
alike; then each member's last call is checked and its result recorded. Run coordinates;
each job is its own module's: the plan and the skip policy (:mod:`benchmarks.harness.planning`),
measuring (:mod:`benchmarks.measure`, :mod:`benchmarks.interleave`, :mod:`benchmarks.harness.peaks`),
checking (:mod:`benchmarks.harness.checking`) and reporting progress (:mod:`benchmarks.harness.progress`).
The pytest glue in ``benchmarks/pytest_suite.py`` stays a few lines.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest

from implementations import Implementation
from implementations.geometry import ConvParams

from .. import environment, interleave, layouts, measure, stats, timers
from .. import timed_cases as tc
from ..records import BenchmarkResult, SkippedCase, TaskSpec, Timing
from ..storage import ResultFile
from ..timed_cases import TimedCase
from ..workloads import PASSES, Profile
from . import checking
from .peaks import Peaks
from .planning import SETTLE_S, SKIP_RULE, Budget, Planner, Skip
from .progress import Progress


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
    #: CPU threads every implementation was given (``--threads``; :mod:`benchmarks.precision.threads`)
    threads: int | None = None
    cases: list[TimedCase] = field(default_factory=list)
    planner: Planner = field(init=False)
    peaks: Peaks = field(init=False)
    progress: Progress = field(init=False)
    _bound: dict[tuple[str, str], Implementation] = field(default_factory=dict)

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
        self.planner = Planner(self.profile)
        self.peaks = Peaks(self.profile, self.impls, self.devices, self.dtypes, self.result_file)
        self.progress = Progress(len(self.cases), self.console)

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
        self.progress.total = len(self.cases)  # a shard keeps only some cases
        for case in group:
            self.progress.done += 1
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
                self.progress.say(p.case, f"{m.median_s * 1e3:9.3f} ms  IQR {m.relative_iqr * 100:4.1f}%  "
                                  f"{result.gflops:8.2f} GFLOP/s  {status}")
        if errors:
            raise errors[0]
        if not ready:
            pytest.skip("; ".join(skipped))

    def _record_error(self, case: TimedCase, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.result_file.add_result(BenchmarkResult(task_spec(case), "error", _now(), error=reason))
        self.progress.say(case, f"[red]error[/red] {reason}")

    def _impl(self, case: TimedCase) -> Implementation:
        """The case's implementation, holding its arrays in the case's layout."""
        key = (case.impl, case.layout)
        if key not in self._bound:
            self._bound[key] = layouts.bind(self.impls[case.impl], case.layout)
        return self._bound[key]

    def _prepare(self, case: TimedCase) -> Prepared:
        """Decide whether ``case`` is timed (:data:`benchmarks.harness.planning.SKIP_RULE`), then
        make it ready: the first call(s), the samples that fit the budget, the first output's check and the
        peak memory: all but the timed samples."""
        impl = self._impl(case)
        probe, budget = self.planner.admit(impl, case)
        tc.expectations(tc.check_workload(case.workload, case.pass_), case.pass_, case.dtype,
                        tuple(sorted(impl.reduced_precision.items())))  # cached; not the impl's time
        placed = tc.place(impl, case)
        raw = tc.bound_call(impl, case, placed)
        call = measure.until_ready(raw, measure.ready_of(impl, case.device))
        first_s, steady_s, out, decided = self.planner.first_calls(call, probe, budget)
        rounds, inner, reserved = self.planner.samples(case, steady_s, budget)
        check = checking.check_first(impl, case, out)
        del out
        if steady_s < 1.0:
            memory = measure.peak_memory(call, case.device, case.impl, timers.holds_torch(placed))
        else:
            memory = None, f"not measured: one call takes {steady_s:.1f} s"
        # untimed samples open each block where calls are cheap
        warmup = steady_s * self.profile.min_rounds < self.profile.target_s
        return Prepared(case, impl, placed, raw, call, budget, first_s, decided, check, memory, rounds,
                        inner, warmup, reserved)

    def _finish(self, p: Prepared, timed: interleave.Contender,
                alongside: list[TimedCase]) -> BenchmarkResult:
        """The result of a prepared case whose rounds ``timed`` holds: the last call checked,
        the device's own time on a GPU, the metrics."""
        case, impl, wl = p.case, p.impl, p.case.workload
        host = Timing(HOST_METHOD, tuple(timed.times))
        p.budget.spent_s += timed.sampled_s - p.reserved_s  # timed samples only (not the warm-ups)
        check = checking.check_last(impl, case, timed.last, p.check)
        timed.last = None
        device = None
        if case.device != "cpu":  # on a GPU the device's own time is the primary figure
            timer = timers.device_timer(impl, case.device, p.placed, self.cold_cache)
            # a round of several calls is already an average: fewer rounds, the same calls
            device_rounds = max(self.profile.min_rounds, math.ceil(p.rounds / timer.calls_per_round))
            device = Timing(timer.method, tuple(timer.times(p.raw, device_rounds)))

        precision = impl.reduced_precision.get(case.dtype, case.dtype)
        itemsize = np.dtype(tc.numpy_dtype(case.dtype)).itemsize
        peak = self.peaks.peak(case.device, case.dtype, precision)
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

    # -- helpers ----------------------------------------------------------------------
    def measure_peaks(self, at: str = "start") -> None:
        """The GEMM peaks and copy bandwidths, at the start of the run or at its end
        (:meth:`benchmarks.harness.peaks.Peaks.measure`)."""
        self.peaks.measure(at)

    def _record_skip(self, case: TimedCase, reason: str) -> None:
        self.result_file.add_skip(SkippedCase(task_spec(case), reason))
        self.progress.say(case, f"[yellow]skipped[/yellow] {reason}")

HOST_METHOD = ("host clock (time.perf_counter) around samples of inner_calls calls, each call followed by "
               "the implementation's ready(result), a sample lasting at least the profile's "
               "min_sample_s and, when it holds more than one call, led in by one untimed call; "
               "time per call = sample / inner_calls; the "
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
