"""Certification: run the catalogue on what an implementation claims and issue a verdict.

Per (feature, device, dtype) the certificate says ``pass``, ``fail``, ``not claimed``,
``limited`` (every case covered by a declared limit; for a claimed feature that is a
failure: "claimed, never passed"), ``implicated`` (it fails only in cases that another
failed feature explains, ``conformance.blame``) or ``not run`` (every case needs another
feature that is not claimed), with the worst error ratio and the number of limited cases.
Each failed feature may carry a one-line diagnosis. Each failure names the case, the
feature it is blamed on, the output, the worst index, found vs expected, the bound,
and a command that reproduces it.

The implementation runs in a worker process (``conformance.worker``); the golden data are
verified before it is judged (``references.verify_golden``). A certificate has a *state*:
``running`` while cases run (``on_checkpoint`` receives snapshots, so the file on disk is
never an older verdict), then ``complete``, ``interrupted`` or ``could not run``; only a
complete certificate can pass.
"""

from __future__ import annotations

import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from implementations import FEATURES, Implementation, load, registry
from implementations.dtypes import DTYPES
from implementations.files import json_float

from . import call, references
from .blame import IMPLICATED, Outputs, Runner, blame, diagnose
from .cases import Case, all_cases, quick_cases
from .runner import (
    CATALOGUED,
    FAIL,
    LIMITED,
    NOT_CLAIMED,
    PASS,
    CaseResult,
    Outcome,
    Pending,
    begin,
    execute,
    failure_records,
    finish,
)
from .sweep import DEFAULT_SEED
from .sweep import sweep as run_sweep
from .worker import CASE_TIMEOUT, Worker

NOT_RUN = "not run"
#: Certificate states; only a complete certificate can pass.
RUNNING, COMPLETE, INTERRUPTED, COULD_NOT_RUN = "running", "complete", "interrupted", "could not run"
#: Seconds between two snapshots handed to ``on_checkpoint`` while cases run.
CHECKPOINT_EVERY = 2.0


@dataclass
class FeatureStatus:
    feature: str
    device: str
    dtype: str
    status: str
    worst_ratio: float = 0.0
    passed: int = 0
    failed: int = 0
    limited: int = 0
    reason: str = ""
    diagnosis: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["worst_ratio"] = json_float(self.worst_ratio)
        return d


@dataclass
class Certificate:
    """The verdict on one implementation: data first, rendered by ``conformance.render``."""

    spec: str
    implementation: dict[str, Any]
    environment: dict[str, Any]
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    quick: bool
    selection: str
    started: str
    seconds: float
    results: list[CaseResult] = field(default_factory=list)
    features: list[FeatureStatus] = field(default_factory=list)
    findings: dict[str, dict[str, str]] = field(default_factory=dict)
    state: str = COMPLETE
    note: str = ""
    case_timeout: float = CASE_TIMEOUT

    sweep: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Every failed check (``feature``: what it is blamed on), and every claimed feature never run."""
        verdict = blame(self.results)
        out = [dict(rec, feature="+".join(verdict.of(r))) for r in self.results if r.status == FAIL
               for rec in failure_records(r)]
        for s in self.features:
            if s.status == LIMITED:
                out.append({"case": "-", "feature": s.feature, "device": s.device, "dtype": s.dtype,
                            "output": "-",
                            "message": f"{s.feature} is claimed but no case passed: {s.reason}",
                            "repro": ""})
        return out

    @property
    def failed_features(self) -> set[str]:
        return {s.feature for s in self.features if s.status in (FAIL, LIMITED)}

    @property
    def implicated_features(self) -> set[str]:
        """Features present in failing cases that another failed feature explains."""
        return {s.feature for s in self.features if s.status == IMPLICATED}

    @property
    def passed(self) -> bool:
        """True only for a complete run where everything claimed passes (and something ran)."""
        ran = any(r.status == PASS for r in self.results)
        return self.state == COMPLETE and ran and not self.failed_features

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = defaultdict(int)
        for r in self.results:
            c[r.status] += 1
        return dict(c)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "passed": self.passed,
            "state": self.state,
            "note": self.note,
            "case_timeout": self.case_timeout,
            "implementation": self.implementation,
            "environment": self.environment,
            "devices": list(self.devices),
            "dtypes": list(self.dtypes),
            "quick": self.quick,
            "selection": self.selection,
            "started": self.started,
            "seconds": round(self.seconds, 2),
            "counts": self.counts(),
            "features": [s.to_dict() for s in self.features],
            "failures": self.failures,
            "findings": self.findings,
            "sweep": self.sweep,
            "results": [r.to_dict() for r in self.results],
        }


def spec_of(impl: Implementation) -> str:
    """A spec that loads ``impl`` again: its registered name, else ``module:Class``."""
    if impl.name in registry.registered():
        try:
            if type(registry.get(impl.name)) is type(impl):
                return impl.name
        except Exception:
            pass
    return f"{type(impl).__module__}:{type(impl).__qualname__}"


def environment(impl: Implementation | Worker) -> dict[str, Any]:
    env = {
        "implementation": impl.environment(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    try:
        import ml_dtypes

        env["ml_dtypes"] = ml_dtypes.__version__
    except ImportError:
        pass
    return env


def summarize(impl: Implementation | Worker, results: Sequence[CaseResult], devices: Iterable[str],
              dtypes: Iterable[str]) -> list[FeatureStatus]:
    """Per (feature, device, dtype) status from the case results filed under each feature.

    A feature with failing cases is ``fail`` only when some failing case is blamed on it
    (``conformance.blame``); otherwise it is ``implicated``.
    """
    grouped: dict[tuple[str, str, str], list[CaseResult]] = defaultdict(list)
    for r in results:
        for f in set(r.filed_under) | ({r.op} if r.status == FAIL else set()):
            grouped[(f, r.device, r.dtype)].append(r)
    verdict = blame(results)
    out = []
    for device in devices:
        for dtype in dtypes:
            for feature in FEATURES:
                s = FeatureStatus(feature, device, dtype, NOT_CLAIMED)
                out.append(s)
                if device not in impl.devices or dtype not in impl.dtypes:
                    s.reason = f"{device}/{dtype} not claimed"
                    continue
                if feature not in impl.features:
                    continue
                rs = grouped.get((feature, device, dtype), [])
                s.passed = sum(r.status == PASS for r in rs)
                s.failed = sum(r.status == FAIL for r in rs)
                s.limited = sum(r.status == LIMITED for r in rs)
                s.worst_ratio = max((r.worst_ratio for r in rs if r.status in (PASS, FAIL)), default=0.0)
                reasons = "; ".join(sorted({r.reason for r in rs if r.status == LIMITED}))
                if feature in verdict.failed.get((device, dtype), ()):
                    s.status = FAIL
                elif s.failed:
                    s.status = IMPLICATED
                    s.reason = "fails only in cases that another failed feature explains"
                elif s.passed:
                    s.status = PASS
                    s.reason = f"{s.limited} case(s) limited: {reasons}" if s.limited else ""
                elif s.limited:
                    s.status, s.reason = LIMITED, f"every case is limited: {reasons}"
                else:
                    s.status = NOT_RUN
                    needs = sorted({r.reason for r in rs if r.status == NOT_CLAIMED})
                    s.reason = "; ".join(needs) or "no case selected"
    return out


class _Progress:
    """A live progress line: rich when stderr is a terminal and rich is installed, else plain lines."""

    def __init__(self, total: int, title: str, enabled: bool):
        self.total, self.title, self.done, self.failed = total, title, 0, 0
        self.bar = None
        self.last_plain = -1
        if not enabled:
            self.enabled = False
            return
        self.enabled = True
        if sys.stderr.isatty():
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=False)
                self.task = self.bar.add_task(title, total=total, status="")
                self.bar.start()
            except ImportError:
                self.bar = None

    def update(self, result: CaseResult) -> None:
        if not self.enabled:
            return
        self.done += 1
        self.failed += result.status == FAIL
        status = f"{self.failed} failed | {result.label[:60]}"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, status=status)
            return
        step = max(self.total // 10, 1)
        if self.done // step != self.last_plain or self.done == self.total:
            self.last_plain = self.done // step
            print(f"[{self.title}] {self.done}/{self.total} cases, {status}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class DeviceUnavailable(RuntimeError):
    """A claimed device cannot be used here (no CUDA, say): nothing is certified on it."""


class NotClaimed(ValueError):
    """A device or dtype asked for explicitly is not one the implementation claims."""


class Interrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C, SIGTERM); ``certificate`` records what finished."""

    def __init__(self, certificate: Certificate):
        super().__init__(certificate.note)
        self.certificate = certificate


Stream = Callable[[Iterable[Pending]], Iterator[tuple[Pending, Outcome | None]]]


def _local(impl: Implementation) -> tuple[Implementation, Stream, Callable, Callable]:
    """Claims, case stream, findings and device probe of an implementation run in this process."""
    def stream(pendings: Iterable[Pending]) -> Iterator[tuple[Pending, Outcome | None]]:
        for p in pendings:
            yield p, None if p.request is None else execute(impl, *p.request)

    return (impl, stream, lambda d, t: call.findings(impl, d, t),
            lambda device: call.device_problem(impl, device))


def _claimed(described: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "devices", "dtypes", "features", "reduced_precision")
    limits = [lim["reason"] for lim in described.get("limits", [])]
    return {k: described.get(k) for k in keys} | {"limits": limits}


def _check_recreated(impl: Implementation, worker: Worker) -> None:
    """The worker re-creates ``impl`` from its class: refuse when that changes what it claims
    (an instance built with arguments, or changed after construction)."""
    here, there = _claimed(impl.describe()), _claimed(worker.claims["describe"])
    if here != there:
        differ = sorted(k for k in here if here[k] != there[k])
        raise ValueError(f"impl={impl!r}: a fresh {worker.spec} in the worker claims different "
                         f"{', '.join(differ)}; certify by a spec that builds this instance, or pass "
                         "isolate=False")


def _selection(claims: Implementation | Worker, devices: Sequence[str] | None, dtypes: Sequence[str] | None,
               require_claimed: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    devices = tuple(devices) if devices else (("cpu",) if "cpu" in claims.devices else tuple(claims.devices))
    dtypes = tuple(dtypes) if dtypes else tuple(d for d in DTYPES if d in claims.dtypes)
    for d in dtypes:
        if d not in DTYPES:
            raise ValueError(f"dtype={d!r}: must be one of {DTYPES}")
    if require_claimed:
        for what, asked, claimed in (("device", devices, claims.devices), ("dtype", dtypes, claims.dtypes)):
            for value in asked:
                if value not in claimed:
                    raise NotClaimed(f"{what}={value!r}: {claims.name} does not claim it "
                                     f"(it claims {', '.join(claimed)})")
    return devices, dtypes


def certify(
    impl_or_spec: Implementation | str,
    *,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    quick: bool = False,
    progress: bool | Callable[[CaseResult], None] = False,
    cases: Sequence[Case] | None = None,
    case_timeout: float = CASE_TIMEOUT,
    isolate: bool = True,
    require_claimed: bool = False,
    on_checkpoint: Callable[[Certificate], None] | None = None,
    worker: Worker | None = None,
    selection: str | None = None,
    sweep_examples: int = 0,
    seed: int = DEFAULT_SEED,
) -> Certificate:
    """Certify an implementation (instance, registered name or ``module:Class``).

    ``devices`` defaults to ``("cpu",)`` when claimed, else the claimed devices;
    ``dtypes`` to the claimed dtypes. A requested device or dtype that is not claimed is
    reported "not claimed" (with ``require_claimed``: ``NotClaimed`` is raised). ``quick``
    runs a representative subset (one case per operation and feature); ``cases`` runs
    exactly those cases, and ``selection`` says in the certificate where they came from
    (default "given cases"). ``sweep_examples`` > 0 runs the random sweep
    (``conformance.sweep``, seeded by ``seed``) after the catalogue, with that many examples
    per family, device and dtype (the command line's default is ``sweep.DEFAULT_EXAMPLES``;
    never with ``cases``).

    With ``isolate`` (the default) the implementation is loaded by its spec in a worker
    process (an instance is re-created from its class there): a crash or a case running
    past ``case_timeout`` seconds fails that case and the run goes on. ``on_checkpoint``
    receives the certificate as it grows (state ``running``), when the run cannot go on
    once the implementation is loaded (``could not run``), and at the end. Raises
    ``LoadError``, ``GoldenError``, ``DeviceUnavailable`` or ``NotClaimed`` before any
    case runs, and ``Interrupted`` (a ``KeyboardInterrupt``) when interrupted. A ``worker``
    already started for the same spec may be passed in (the caller closes it).
    """
    if sweep_examples < 0:
        raise ValueError(f"sweep_examples={sweep_examples}: must be >= 0")
    spec = impl_or_spec if isinstance(impl_or_spec, str) else spec_of(impl_or_spec)
    owned = worker is None and isolate
    if owned:
        worker = Worker(spec, case_timeout)
    try:
        claims: Implementation | Worker
        stream: Stream
        if worker is not None:
            running = worker
            if not isinstance(impl_or_spec, str):
                _check_recreated(impl_or_spec, running)
            claims, probe, device_problem = running, running.findings, running.device_problem
            stream = lambda pendings: running.stream(pendings, lambda p: p.request)  # noqa: E731
        else:
            impl = load(impl_or_spec) if isinstance(impl_or_spec, str) else impl_or_spec
            claims, stream, probe, device_problem = _local(impl)
        return _run(spec, claims, stream, probe, device_problem, devices, dtypes, quick, progress, cases,
                    case_timeout, require_claimed, on_checkpoint, selection, sweep_examples, seed)
    finally:
        if owned and worker is not None:
            worker.shutdown()


def _run(spec: str, claims: Any, stream: Stream, probe: Callable, device_problem: Callable,
         devices: Sequence[str] | None, dtypes: Sequence[str] | None, quick: bool,
         progress: bool | Callable[[CaseResult], None], cases: Sequence[Case] | None, case_timeout: float,
         require_claimed: bool, on_checkpoint: Callable[[Certificate], None] | None,
         selection: str | None, sweep_examples: int = 0, seed: int = DEFAULT_SEED) -> Certificate:
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    if selection is None:
        selection = "given cases" if cases is not None else ("quick" if quick else "full")
    results: list[CaseResult] = []
    findings: dict[str, dict[str, str]] = {}
    emit = on_checkpoint or (lambda cert: None)
    devs, dts = tuple(devices or ("cpu",)), tuple(dtypes or ())

    def snapshot(state: str, note: str = "") -> Certificate:
        return Certificate(spec, claims.describe(), environment(claims), devs, dts, quick, selection, started,
                           time.perf_counter() - t0, list(results), summarize(claims, results, devs, dts),
                           dict(findings), state, note, case_timeout)

    chosen = list(cases) if cases is not None else (quick_cases() if quick else all_cases())
    golden_error = None
    try:  # while the worker loads the implementation
        if any(c.problem in CATALOGUED for c in chosen):
            references.verify_golden()
    except references.GoldenError as exc:
        golden_error = exc
    try:
        devs, dts = _selection(claims, devices, dtypes, require_claimed)
        if golden_error is not None:
            raise golden_error
        for device in devs:
            problem = device_problem(device) if device in claims.devices else None
            if problem:
                raise DeviceUnavailable(
                    f"device={device!r}: {claims.name} cannot place a tensor there ({problem})")
    except (DeviceUnavailable, references.GoldenError, ValueError) as exc:
        emit(snapshot(COULD_NOT_RUN, f"{type(exc).__name__}: {exc}"))
        raise
    plan = [(c, dev, dt) for dev in devs for dt in dts for c in chosen]
    bar = _Progress(len(plan), f"certify {claims.name}", progress is True)
    emit(snapshot(RUNNING))
    last = time.perf_counter()
    pendings = (begin(claims, case, device, dtype, spec=spec) for case, device, dtype in plan)
    try:
        for pending, outcome in stream(pendings):
            r = finish(pending, outcome)
            results.append(r)
            bar.update(r)
            if callable(progress):
                progress(r)
            if on_checkpoint and time.perf_counter() - last > CHECKPOINT_EVERY:
                emit(snapshot(RUNNING))
                last = time.perf_counter()
        for device in devs:
            for dtype in dts:
                if device in claims.devices and dtype in claims.dtypes:
                    findings[f"{device}/{dtype}"] = probe(device, dtype)
    except KeyboardInterrupt as exc:
        why = str(exc) or "KeyboardInterrupt"
        cert = snapshot(INTERRUPTED, f"interrupted ({why}) after {len(results)} of {len(plan)} cases")
        emit(cert)
        raise Interrupted(cert) from None
    finally:
        bar.close()
    swept = None
    if sweep_examples and cases is None:
        try:
            swept = run_sweep(claims, devs, dts, runner(claims, stream, spec), examples=sweep_examples,
                              seed=seed)
        except KeyboardInterrupt as exc:
            cert = snapshot(INTERRUPTED, f"interrupted ({exc or 'KeyboardInterrupt'}) in the random sweep")
            emit(cert)
            raise Interrupted(cert) from None
        results += swept.results
        chosen += list(swept.cases.values())
    cert = snapshot(COMPLETE)
    cert.sweep = swept.to_dict() if swept else {}
    add_diagnoses(cert, claims, outputs_runner(claims, stream, spec), chosen)
    emit(cert)
    return cert



def runner(claims: Any, stream: Stream, spec: str) -> Callable[[Case, str, str], CaseResult]:
    """Run and judge one case through ``stream`` (the worker, or this process)."""
    def run(case: Case, device: str, dtype: str) -> CaseResult:
        pending = begin(claims, case, device, dtype, spec=spec)
        return next((finish(p, outcome) for p, outcome in stream([pending])))

    return run


def outputs_runner(claims: Any, stream: Stream, spec: str) -> Runner:
    """The outputs of one case as float64 arrays, run through ``stream``: what a diagnosis probes."""
    def run(case: Case, device: str, dtype: str) -> Outputs:
        pending = begin(claims, case, device, dtype, spec=spec)
        if pending.request is None:
            raise RuntimeError(f"{case.name}: not run ({pending.result.reason})")
        for _, outcome in stream([pending]):
            if outcome is None or outcome.kind != "ok":
                raise RuntimeError(f"{case.name}: {outcome.message if outcome else 'no outcome'}")
            found = [np.asarray(a).astype(np.float64) for a in outcome.found]
            return dict(zip(case.outputs, found, strict=False))
        raise RuntimeError(f"{case.name}: no outcome")

    return run


def add_diagnoses(cert: Certificate, claims: Implementation | Worker, run: Runner,
                  cases: Iterable[Case]) -> None:
    """Give every failed feature of ``cert`` its one-line diagnosis, where one is recognised."""
    if not any(r.status == FAIL for r in cert.results):
        return
    lines = diagnose(cert.results, blame(cert.results), {c.name: c for c in cases}, run,
                     claims.reduced_precision)
    for s in cert.features:
        s.diagnosis = lines.get((s.feature, s.device, s.dtype), "")
