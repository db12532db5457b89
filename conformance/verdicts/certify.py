"""Certification: run the catalogue on what an implementation claims and issue a verdict.

The certificate (:mod:`conformance.verdicts.certificate`) gives per (feature, device,
dtype) a status with the worst error ratio; each failed feature may carry a one-line
diagnosis (:mod:`conformance.verdicts.diagnosis`); each failure names the case, the
feature it is blamed on, the output, the worst index, found vs expected, the bound, and a
command that reproduces it.

The implementation runs through an :class:`~conformance.execution.executor.Executor`: in a
worker process (``conformance.execution.worker``) unless ``isolate=False``. The golden data
are verified before it is judged (``references.verify_golden``). ``on_checkpoint`` receives
snapshots while cases run (state ``running``), so the file on disk is never an older
verdict, then the final certificate (``complete``, ``interrupted`` or ``could not run``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NoReturn

import numpy as np

from conformance.catalogue.cases import Case
from conformance.catalogue.selection import all_cases, quick_cases
from conformance.execution.executor import Claims, Executor, InProcess
from conformance.execution.pool import Slots, WorkerPool
from conformance.execution.protocol import ResourceRefused
from conformance.execution.worker import CASE_TIMEOUT, LoadError, Worker
from conformance.judging import references
from conformance.judging.judge import CATALOGUED, Pending, begin, finish
from conformance.judging.result import FAIL, CaseResult
from conformance.search.draws import digest, version
from conformance.search.sweep import DEFAULT_SEED, BatchRunner, Sweep, sweep_plan
from conformance.search.sweep import sweep as run_sweep
from implementations import Implementation, load, registry
from implementations.arguments import shard_of
from implementations.contract import check_implementation
from implementations.dtypes import DTYPES

from .blame import blame
from .certificate import (
    COMPLETE,
    COULD_NOT_RUN,
    INCOMPLETE,
    INTERRUPTED,
    RUNNING,
    Certificate,
    environment,
    per_operation,
    shard_record,
    summarize,
)
from .determinism import (
    MAX_FAILING,
    MIN_CALLS,
    RERUNS,
    CaseRunner,
    call_again,
    compare_identical_calls,
    recheck_failures,
)
from .diagnosis import Outputs, Runner, diagnose
from .experiment import Experiment, experiments
from .progress import StageProgress

#: Seconds between two snapshots handed to ``on_checkpoint`` while cases run.
CHECKPOINT_EVERY = 2.0


@dataclass(frozen=True)
class CertifyOptions:
    """What a certification runs and how (every field has a default).

    ``devices`` defaults to ``("cpu",)`` when claimed, else the claimed devices;
    ``dtypes`` to the claimed dtypes. A requested device or dtype that is not claimed is
    reported "not claimed" (with ``require_claimed``: ``NotClaimed`` is raised). ``quick``
    runs a representative subset (one case per operation and feature); ``cases`` runs
    exactly those cases, and ``selection`` says in the certificate where they came from
    (default "given cases"). ``sweep_examples`` > 0 runs the random sweep
    (``conformance.search.sweep``, seeded by ``seed``) after the catalogue, with that many
    examples per family, device and dtype (never with ``cases``). ``max_seconds`` (default
    None: no limit) is a time budget for the whole run: when it stops the catalogue or the
    sweep early the certificate is ``incomplete``, never a pass. A case running past
    ``case_timeout`` seconds in the worker fails. ``progress``: True for a progress line on
    stderr, or a function called with each case result. ``on_checkpoint`` receives the
    certificate as it grows, when the run cannot go on once the implementation is loaded
    (``could not run``), and at the end. ``max_memory``: bytes one problem may need before
    it is refused unrun as "too large" (default: the worker's memory limit).
    """

    devices: Sequence[str] | None = None
    dtypes: Sequence[str] | None = None
    quick: bool = False
    cases: Sequence[Case] | None = None
    selection: str | None = None
    case_timeout: float = CASE_TIMEOUT
    require_claimed: bool = False
    sweep_examples: int = 0
    seed: int = DEFAULT_SEED
    max_seconds: float | None = None
    progress: bool | Callable[[CaseResult], None] = False
    on_checkpoint: Callable[[Certificate], object] | None = None
    #: Bytes one problem may need (``Problem.memory_estimate``); larger ones are "too large".
    max_memory: int | None = None
    #: ``(K, N)``: run only part K of N of the plan (``implementations.arguments.shard_of``);
    #: the random sweep runs in part 1. ``conformance.verdicts.merge`` joins the N certificates.
    shard: tuple[int, int] | None = None
    #: Calls of each (operation, device, dtype) the determinism stage makes at least (passing
    #: cases called again); None: ``determinism.MIN_CALLS``. Fewer calls, a weaker guarantee
    #: against a wrong answer that appears at random; the certificate's coverage records it.
    min_calls: int | None = None
    #: Catalogue results already judged, by (case, device, dtype) (``pytest --convcert``'s case
    #: tests, maybe in other processes): taken as they are in the catalogue stage, not run again.
    judged: Mapping[tuple[str, str, str], CaseResult] | None = None


def spec_of(impl: Implementation) -> str:
    """A spec that loads ``impl`` again: its registered name, else ``module:Class``."""
    spec = registry.class_spec(type(impl))
    return impl.name if registry.registered_spec(impl.name) == spec else spec


class DeviceUnavailable(RuntimeError):
    """A claimed device cannot be used here (no CUDA, say): nothing is certified on it."""


class NotClaimed(ValueError):
    """A device or dtype asked for explicitly is not one the implementation claims."""


class CertifierError(RuntimeError):
    """The certifier itself failed (not the plug-in): the certificate says ``could not run``."""


class Interrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C, SIGTERM); ``certificate`` records what finished."""

    def __init__(self, certificate: Certificate):
        super().__init__(certificate.note)
        self.certificate = certificate


def _claimed(described: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "devices", "dtypes", "features", "reduced_precision")
    limits = [lim["reason"] for lim in described.get("limits", [])]
    return {k: described.get(k) for k in keys} | {"limits": limits}


def _check_recreated(impl: Implementation, worker: Worker | WorkerPool) -> None:
    """The worker re-creates ``impl`` from its class: refuse when that changes what it claims
    (an instance built with arguments, or changed after construction)."""
    here, there = _claimed(impl.describe()), _claimed(worker.claims["describe"])
    if here != there:
        differ = sorted(k for k in here if here[k] != there[k])
        raise ValueError(f"impl={impl!r}: a fresh {worker.spec} in the worker claims different "
                         f"{', '.join(differ)}; certify by a spec that builds this instance, or pass "
                         "isolate=False")


def selection_of(claims: Claims, devices: Sequence[str] | None, dtypes: Sequence[str] | None,
                 require_claimed: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The devices and dtypes to certify: those asked for, else cpu (or the claimed devices) and
    every claimed dtype; ``require_claimed``: ``NotClaimed`` for one asked for but not claimed."""
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


def certify(impl_or_spec: Implementation | str, options: CertifyOptions | None = None, *,
            isolate: bool = True, worker: Worker | WorkerPool | None = None, workers: int | Slots = 1,
            **changes: Any) -> Certificate:
    """Certify an implementation (instance, registered name or ``module:Class``).

    ``options`` (a :class:`CertifyOptions`) says what runs; ``changes`` replace its fields
    by name (``certify("im2col", dtypes=["float32"], quick=True)``). With ``isolate`` (the
    default) the implementation is loaded by its spec in a worker process (an instance is
    re-created from its class there): a crash or a case running past ``case_timeout``
    seconds fails that case and the run goes on. A ``worker`` (or a
    :class:`~conformance.execution.pool.WorkerPool`) already started for the same spec may be
    passed in (the caller closes it). ``workers`` > 1 (or :class:`~conformance.execution.pool.Slots`)
    spreads the cases over that many worker processes, with the same certificate. Raises
    ``LoadError``, ``GoldenError``,
    ``DeviceUnavailable`` or ``NotClaimed`` before any case runs, and ``Interrupted`` (a
    ``KeyboardInterrupt``) when interrupted.
    """
    opts = dataclasses.replace(options or CertifyOptions(), **changes)
    if opts.sweep_examples < 0:
        raise ValueError(f"sweep_examples={opts.sweep_examples}: must be >= 0")
    if opts.min_calls is not None and opts.min_calls < 0:
        raise ValueError(f"min_calls={opts.min_calls}: must be >= 0")
    spec = impl_or_spec if isinstance(impl_or_spec, str) else spec_of(impl_or_spec)
    owned = worker is None and isolate
    if owned:
        worker = Worker(spec, opts.case_timeout)
    if worker is not None and not isinstance(worker, WorkerPool) and workers != 1:
        worker = WorkerPool(worker, workers)
    try:
        executor: Executor
        if worker is not None:
            if not isinstance(impl_or_spec, str):
                _check_recreated(impl_or_spec, worker)
            executor = worker
            opts = dataclasses.replace(opts, max_memory=opts.max_memory or worker.max_memory)
        else:
            impl = load(impl_or_spec) if isinstance(impl_or_spec, str) else impl_or_spec
            check_implementation(impl)
            executor = InProcess(impl)
        run = _Certification(spec, executor, opts)
        try:
            return run.run()
        except (KeyboardInterrupt, LoadError, DeviceUnavailable, references.GoldenError, ValueError):
            raise  # already recorded (interrupted, could not run), or nothing loaded to record
        except ResourceRefused as exc:  # the machine refused a case twice: no verdict
            _release(run.executor)
            run.emit(run.snapshot(COULD_NOT_RUN, str(exc)))
            raise
        except Exception as exc:  # the certifier itself failed: never a verdict on the plug-in
            _release(run.executor)
            run.emit(run.snapshot(COULD_NOT_RUN, f"the certifier failed: {type(exc).__name__}: {exc}"))
            raise CertifierError(f"the certifier failed while judging {spec}: {type(exc).__name__}: "
                                 f"{exc}") from exc
    finally:
        if owned and worker is not None:
            worker.shutdown()


class _Certification:
    """One run of :func:`certify`: the plan, the results so far, and their snapshots.

    :meth:`run` reads as the stages in order: the catalogue, the random sweep, the determinism
    calls, the experiments of blame by experiment, the certificate, its diagnoses."""

    def __init__(self, spec: str, executor: Executor, opts: CertifyOptions):
        self.spec, self.executor, self.opts = spec, executor, opts
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.t0 = time.perf_counter()
        self.selection = opts.selection or (
            "given cases" if opts.cases is not None else ("quick" if opts.quick else "full"))
        self.results: list[CaseResult] = []
        self.findings: dict[str, dict[str, str]] = {}
        self.devices, self.dtypes = tuple(opts.devices or ("cpu",)), tuple(opts.dtypes or ())
        self.emit = opts.on_checkpoint or (lambda cert: None)
        self.experiments: dict[tuple[str, str, str], Experiment] = {}
        self.planned = 0  # catalogue cases in the plan (results past them are the sweep's)
        self.plan_names: list[str] = []  # the whole plan, before sharding (a shard records its digest)
        self.ran = 0  # catalogue cases judged (fewer than planned when the time budget ran out)
        self.deadline = None if opts.max_seconds is None else self.t0 + opts.max_seconds
        self.progress = StageProgress(f"certify {executor.name}", opts.progress is True)

    def snapshot(self, state: Any, note: str = "", **complete: Any) -> Certificate:
        """The certificate of the results so far; ``complete`` gives the fields only the end of
        the run knows (``sweep``, ``coverage``)."""
        claims, results = self.executor, list(self.results)
        attribution = blame(results, self.experiments)
        opts = self.opts
        agreed = {"seed": opts.seed, "sweep_examples": opts.sweep_examples, "max_memory": opts.max_memory}
        return Certificate(
            spec=self.spec, implementation=claims.describe(), environment=environment(claims),
            devices=self.devices, dtypes=self.dtypes, quick=opts.quick, selection=self.selection,
            started=self.started, seconds=time.perf_counter() - self.t0, results=results,
            features=summarize(claims, results, self.devices, self.dtypes, attribution),
            findings=dict(self.findings), state=state, note=note, case_timeout=opts.case_timeout,
            attribution=attribution, experiments=[e.to_dict() for e in self.experiments.values()],
            operations=per_operation(claims, results, self.devices, self.dtypes, attribution),
            shard=shard_record(opts.shard, len(self.results), self.planned, self.plan_names, agreed),
            **complete)

    def _prepare(self, chosen: list[Case]) -> None:
        """Verify the golden data, the selection and the devices (``could not run`` otherwise)."""
        opts, executor = self.opts, self.executor
        golden_error = None
        try:  # while the worker loads the implementation
            if any(c.problem in CATALOGUED for c in chosen):
                references.verify_golden()
        except references.GoldenError as exc:
            golden_error = exc
        try:
            self.devices, self.dtypes = selection_of(executor, opts.devices, opts.dtypes,
                                                     opts.require_claimed)
            if golden_error is not None:
                raise golden_error
            for device in self.devices:
                problem = executor.device_problem(device) if device in executor.devices else None
                if problem:
                    raise DeviceUnavailable(
                        f"device={device!r}: {executor.name} cannot place a tensor there ({problem})")
        except (DeviceUnavailable, references.GoldenError, ValueError) as exc:
            _release(self.executor)
            self.emit(self.snapshot(COULD_NOT_RUN, f"{type(exc).__name__}: {exc}"))
            raise

    def run(self) -> Certificate:
        """The stages, in order; the final certificate is handed to ``on_checkpoint`` and returned."""
        opts = self.opts
        chosen = list(opts.cases) if opts.cases is not None else quick_cases() if opts.quick else all_cases()
        try:
            self._prepare(chosen)
            plan = [(c, dev, dt) for dev in self.devices for dt in self.dtypes for c in chosen]
            self.plan_names = [f"{d}/{t}/{c.name}" for c, d, t in plan]
            plan = shard_of(plan, opts.shard)
            self.planned = len(plan)
            self.catalogue(plan)
            swept = self.sweep()
            cases = {c.name: c for c in [*chosen, *(swept.cases.values() if swept else ())]}
            min_calls = self.determinism(cases)
            self.experiment(cases)
            cert = self.certificate(plan, swept, min_calls)
            cert = self.diagnose(cert, cases)
        finally:
            self.progress.close()
        _release(self.executor)  # every plug-in process gone before the final certificate is written
        self.emit(cert)
        return cert

    # -- the stages ---------------------------------------------------------------------
    def catalogue(self, plan: list[tuple[Case, str, str]]) -> None:
        """Every planned (case, device, dtype), judged (until the time budget), then the NaN/Inf findings."""
        opts, executor = self.opts, self.executor
        self.progress.begin("catalogue", len(plan))
        self.emit(self.snapshot(RUNNING))
        last = time.perf_counter()
        judged = opts.judged or {}
        pendings = (begin(executor, case, device, dtype, spec=self.spec, max_bytes=opts.max_memory)
                    for case, device, dtype in plan
                    if (case.name, device, dtype) not in judged and not self._out_of_time())
        fresh = executor.stream(pendings, _request)
        try:
            for case, device, dtype in plan:
                r = judged.get((case.name, device, dtype))
                if r is None:
                    got = next(fresh, None)
                    if got is None:
                        break  # the time budget ran out
                    r = finish(*got)
                self.results.append(r)
                self.progress.advance(failed=r.status == FAIL, status=r.label)
                if callable(opts.progress):
                    opts.progress(r)
                if opts.on_checkpoint and time.perf_counter() - last > CHECKPOINT_EVERY:
                    self.emit(self.snapshot(RUNNING))
                    last = time.perf_counter()
            next(fresh, None)  # (the stream ends once every fresh case is answered)
            for device in self.devices:
                for dtype in self.dtypes:
                    if device in executor.devices and dtype in executor.dtypes:
                        self.findings[f"{device}/{dtype}"] = executor.findings(device, dtype)
        except KeyboardInterrupt as exc:
            why = str(exc) or "KeyboardInterrupt"
            self._interrupted(f"interrupted ({why}) after {len(self.results)} of {len(plan)} cases")
        self.ran = len(self.results)

    def sweep(self) -> Sweep | None:
        """The random sweep (in part 1 of a sharded run; never with given cases): its results join
        the catalogue's."""
        opts, executor = self.opts, self.executor
        first_part = opts.shard is None or opts.shard[0] == 1
        if not opts.sweep_examples or opts.cases is not None or not first_part:
            return None
        draws = sweep_plan(executor, self.devices, self.dtypes, opts.sweep_examples, opts.seed)
        self.progress.begin("sweep", sum(c.op in executor.features for d in draws for c in d.problem.cases()))
        try:
            left = None if self.deadline is None else max(self.deadline - time.perf_counter(), 0.0)
            swept = run_sweep(executor, self.devices, self.dtypes, examples=opts.sweep_examples,
                              seed=opts.seed, max_seconds=left,
                              run_many=self._counted(batch_runner(executor, self.spec)))
        except KeyboardInterrupt as exc:
            self._interrupted(f"interrupted ({exc or 'KeyboardInterrupt'}) in the random sweep")
        self.results += swept.results
        return swept

    def determinism(self, cases: dict[str, Case]) -> int:
        """Failures again, passing cases again up to the minimum calls, and a sample of passing cases
        twice compared bit for bit (:mod:`conformance.verdicts.determinism`). Returns the minimum calls."""
        executor, progress = self.executor, self.progress
        again = [r for r in self.results if r.status == FAIL and not r.died and r.case in cases]
        if again:
            progress.begin("determinism: failures again", min(len(again), MAX_FAILING) * RERUNS, "calls")
            recheck_failures(self.results, cases, self._counted_one(runner(executor, self.spec)))
        min_calls = MIN_CALLS if self.opts.min_calls is None else self.opts.min_calls
        progress.begin("determinism: repeated calls", None, "calls")
        call_again(self.results, cases, self._counted(batch_runner(executor, self.spec)), min_calls)
        progress.begin("determinism: identical calls", None, "calls")
        twice = compare_identical_calls(self.results, cases, self._counted_outputs())
        for group, line in twice.items():
            self.findings.setdefault(group, {})["identical calls"] = line
        return min_calls

    def experiment(self, cases: dict[str, Case]) -> None:
        """Blame by experiment: failing cases again without each option they use."""
        if any(r.status == FAIL for r in self.results):
            self.progress.begin("experiments", None, "calls")
        run_one = self._counted_one(runner(self.executor, self.spec))
        self.experiments = experiments(self.results, cases, run_one)

    def certificate(self, plan: list[tuple[Case, str, str]], swept: Sweep | None,
                    min_calls: int) -> Certificate:
        """The certificate of everything run: complete, or incomplete when the time budget stopped a stage."""
        self.progress.end()
        note = ""
        if self.ran < len(plan) or (swept is not None and swept.stopped_early):
            note = (f"incomplete: the time budget of {self.opts.max_seconds:g} s stopped the run after "
                    f"{self.ran} of {len(plan)} catalogue cases")
            note += f" and {len(swept.drawn)} of {swept.planned} sweep problems" if swept else ""
        coverage = {"convcert": version(), "catalogue_cases": len(plan),
                    "catalogue_sha256": digest(f"{d}/{t}/{c.name}" for c, d, t in plan),
                    "sweep_problems": swept.planned if swept else 0,
                    "sweep_sha256": swept.digest if swept else digest([]), "calls_per_operation": min_calls}
        cert = self.snapshot(INCOMPLETE if note else COMPLETE, note, sweep=swept.to_dict() if swept else {},
                             coverage=coverage)
        return cert

    def diagnose(self, cert: Certificate, cases: dict[str, Case]) -> Certificate:
        """``cert`` with a one-line diagnosis for each failed feature, where one is recognised."""
        if any(r.status == FAIL for r in cert.results):
            self.progress.begin("diagnoses", None, "calls")
        return add_diagnoses(cert, self.executor, self._counted_outputs(), cases.values())

    # -- helpers ------------------------------------------------------------------------
    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def _counted(self, run_many: BatchRunner) -> BatchRunner:
        """``run_many`` reporting each result to the progress (a list given plans the stage's total)."""
        def counted(items: Iterable[tuple[Case, str, str]]) -> Iterator[CaseResult]:
            if isinstance(items, list):
                self.progress.plan(len(items))
            for r in run_many(items):
                self.progress.advance(failed=r.status == FAIL, status=r.label)
                yield r
        return counted

    def _counted_one(self, run: CaseRunner) -> CaseRunner:
        def counted(case: Case, device: str, dtype: str) -> CaseResult:
            r = run(case, device, dtype)
            self.progress.advance(failed=r.status == FAIL, status=r.label)
            return r
        return counted

    def _counted_outputs(self) -> Runner:
        run = outputs_runner(self.executor, self.spec)

        def counted(case: Case, device: str, dtype: str) -> Outputs:
            try:
                return run(case, device, dtype)
            finally:
                self.progress.advance(status=case.name)
        return counted

    def _interrupted(self, note: str) -> NoReturn:
        cert = self.snapshot(INTERRUPTED, note)
        _release(self.executor)
        self.emit(cert)
        raise Interrupted(cert) from None


def _release(executor: Executor) -> None:
    """End every process of the implementation before its certificate is written (a worker's
    daemon could otherwise rewrite the file); a later call would start a fresh worker."""
    close = getattr(executor, "close", None)
    if close is not None:
        close()


def _request(pending: Pending) -> tuple | None:
    return pending.request


def runner(executor: Executor, spec: str,
           max_bytes: int | None = None) -> Callable[[Case, str, str], CaseResult]:
    """Run and judge one case through ``executor`` (a worker, or this process); a problem needing more
    than ``max_bytes`` is refused unrun ("too large")."""
    def run(case: Case, device: str, dtype: str) -> CaseResult:
        pending = begin(executor, case, device, dtype, spec=spec, max_bytes=max_bytes)
        return next((finish(p, outcome) for p, outcome in executor.stream([pending], _request)))

    return run


def batch_runner(executor: Executor, spec: str) -> BatchRunner:
    """Run and judge many cases in order through ``executor`` (a worker takes them in batches)."""
    def run_many(items: Iterable[tuple[Case, str, str]]) -> Iterator[CaseResult]:
        pendings = (begin(executor, case, device, dtype, spec=spec) for case, device, dtype in items)
        return (finish(p, outcome) for p, outcome in executor.stream(pendings, _request))

    return run_many


def outputs_runner(executor: Executor, spec: str) -> Runner:
    """The outputs of one case as float64 arrays, run through ``executor``: what a diagnosis probes."""
    def run(case: Case, device: str, dtype: str) -> Outputs:
        pending = begin(executor, case, device, dtype, spec=spec)
        if pending.request is None:
            raise RuntimeError(f"{case.name}: not run ({pending.result.reason})")
        for _, outcome in executor.stream([pending], _request):
            if outcome is None or outcome.kind != "ok":
                raise RuntimeError(f"{case.name}: {outcome.message if outcome else 'no outcome'}")
            found = [np.asarray(a).astype(np.float64) for a in outcome.found]
            return dict(zip(case.outputs, found, strict=False))
        raise RuntimeError(f"{case.name}: no outcome")

    return run


def add_diagnoses(cert: Certificate, claims: Claims, run: Runner, cases: Iterable[Case]) -> Certificate:
    """``cert`` with every failed feature given its one-line diagnosis, where one is recognised."""
    if not any(r.status == FAIL for r in cert.results):
        return cert
    lines = diagnose(cert.results, cert.attribution, {c.name: c for c in cases}, run,
                     claims.reduced_precision)
    return dataclasses.replace(cert, features=[dataclasses.replace(s, diagnosis=lines.get(
        (s.feature, s.device, s.dtype), "")) for s in cert.features])
