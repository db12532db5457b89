"""Certification: run the catalogue on what an implementation claims and issue a verdict.

Per (feature, device, dtype) the certificate says ``pass``, ``fail``, ``not claimed``,
``unsupported`` (every case refused with ``Unsupported``; for a claimed feature that is a
failure: "claimed, never run") or ``not run`` (every case needs another feature that is
not claimed), with the worst error ratio. Each failure names the case, the feature, the
output, the worst index, found vs expected, the bound, and a command that reproduces it.
"""

from __future__ import annotations

import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from implementations import FEATURES, Implementation, load
from implementations import registry

from . import behaviour
from .blame import IMPLICATED, blame, contract_runner, diagnose
from .sweep import DEFAULT_SEED
from .sweep import sweep as run_sweep
from .cases import Case, all_cases, find_case, quick_cases
from .runner import FAIL, NOT_CLAIMED, PASS, UNSUPPORTED, CaseResult, failure_records, np_dtype, run_case

NOT_RUN = "not run"
DTYPES = ("float64", "float32", "float16", "bfloat16")


@dataclass
class FeatureStatus:
    feature: str
    device: str
    dtype: str
    status: str
    worst_ratio: float = 0.0
    passed: int = 0
    failed: int = 0
    unsupported: int = 0
    reason: str = ""
    diagnosis: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["worst_ratio"] = self.worst_ratio if np.isfinite(self.worst_ratio) else str(self.worst_ratio)
        return d


@dataclass
class Certificate:
    """The verdict on one implementation: data first, rendered by ``reports.conformance_render``."""

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
    sweep: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Every failed check (``feature``: what it is blamed on), and every claimed feature never run."""
        verdict = blame(self.results)
        out = [dict(rec, feature="+".join(verdict.of(r))) for r in self.results if r.status == FAIL
               for rec in failure_records(r)]
        for s in self.features:
            if s.status == UNSUPPORTED:
                out.append({"case": "-", "feature": s.feature, "device": s.device, "dtype": s.dtype,
                            "output": "-", "message": f"{s.feature} is claimed but never ran: {s.reason}",
                            "repro": ""})
        return out

    @property
    def failed_features(self) -> set[str]:
        return {s.feature for s in self.features if s.status in (FAIL, UNSUPPORTED)}

    @property
    def implicated_features(self) -> set[str]:
        """Features present in failing cases that another failed feature explains."""
        return {s.feature for s in self.features if s.status == IMPLICATED}

    @property
    def passed(self) -> bool:
        """True only when everything claimed passes (and something ran)."""
        ran = any(r.status == PASS for r in self.results)
        return ran and not self.failed_features

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = defaultdict(int)
        for r in self.results:
            c[r.status] += 1
        return dict(c)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "passed": self.passed,
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


def environment(impl: Implementation) -> dict[str, Any]:
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


def summarize(impl: Implementation, results: Sequence[CaseResult], devices: Iterable[str],
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
                s.unsupported = sum(r.status == UNSUPPORTED for r in rs)
                s.worst_ratio = max((r.worst_ratio for r in rs if r.status in (PASS, FAIL)), default=0.0)
                reasons = sorted({r.reason for r in rs if r.status == UNSUPPORTED})
                if feature in verdict.failed.get((device, dtype), ()):
                    s.status = FAIL
                elif s.failed:
                    s.status = IMPLICATED
                    s.reason = "fails only in cases that another failed feature explains"
                elif s.passed:
                    s.status = PASS
                    s.reason = f"{s.unsupported} case(s) unsupported: {'; '.join(reasons)}" if s.unsupported else ""
                elif s.unsupported:
                    s.status, s.reason = UNSUPPORTED, "; ".join(reasons)
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
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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


def _check_device(impl: Implementation, device: str) -> None:
    try:
        impl.to_numpy(impl.to_device(np.zeros((1, 1, 1, 1), np.float32), device))
    except Exception as exc:
        raise DeviceUnavailable(f"device={device!r}: {impl.name} cannot place a tensor there "
                                f"({type(exc).__name__}: {exc})") from exc


def certify(
    impl_or_spec: Implementation | str,
    *,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    quick: bool = False,
    progress: bool | Callable[[CaseResult], None] = False,
    cases: Sequence[Case] | None = None,
    sweep_examples: int = 0,
    seed: int = DEFAULT_SEED,
) -> Certificate:
    """Certify an implementation (instance, registered name or ``module:Class``).

    ``devices`` defaults to ``("cpu",)`` when claimed, else the claimed devices;
    ``dtypes`` to the claimed dtypes. A requested device or dtype that is not claimed is
    reported "not claimed". ``quick`` runs a representative subset (one case per
    operation and feature); ``cases`` runs exactly those cases. ``sweep_examples`` > 0
    runs the random sweep (``conformance.sweep``, seeded by ``seed``) after the catalogue,
    with that many examples per family, device and dtype (the command line's default is
    ``sweep.DEFAULT_EXAMPLES``; never with ``cases``).
    """
    if sweep_examples < 0:
        raise ValueError(f"sweep_examples={sweep_examples}: must be >= 0")
    if isinstance(impl_or_spec, str):
        spec, impl = impl_or_spec, load(impl_or_spec)
    else:
        impl, spec = impl_or_spec, spec_of(impl_or_spec)
    devices = tuple(devices) if devices else (("cpu",) if "cpu" in impl.devices else tuple(impl.devices))
    dtypes = tuple(dtypes) if dtypes else tuple(d for d in DTYPES if d in impl.dtypes)
    for d in dtypes:
        if d not in DTYPES:
            raise ValueError(f"dtype={d!r}: must be one of {DTYPES}")
    for device in devices:
        if device in impl.devices:
            _check_device(impl, device)
    selection = "given cases" if cases is not None else ("quick" if quick else "full")
    chosen = list(cases) if cases is not None else (quick_cases() if quick else all_cases())
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    plan = [(c, dev, dt) for dev in devices for dt in dtypes for c in chosen]
    bar = _Progress(len(plan), f"certify {impl.name}", progress is True)
    results = []
    try:
        for case, device, dtype in plan:
            r = run_case(impl, case, device, dtype, spec=spec)
            results.append(r)
            bar.update(r)
            if callable(progress):
                progress(r)
    finally:
        bar.close()
    swept = None
    if sweep_examples and cases is None:
        swept = run_sweep(impl, devices, dtypes, examples=sweep_examples, seed=seed, spec=spec)
        results += swept.results
        chosen += list(swept.cases.values())
    cert = Certificate(spec, impl.describe(), environment(impl), devices, dtypes, quick, selection,
                       started, 0.0, results, summarize(impl, results, devices, dtypes))
    for device in devices:
        for dtype in dtypes:
            if device in impl.devices and dtype in impl.dtypes:
                cert.findings[f"{device}/{dtype}"] = behaviour.findings(impl, device, np_dtype(dtype))
    cert.sweep = swept.to_dict() if swept else {}
    add_diagnoses(cert, impl, chosen)
    cert.seconds = time.perf_counter() - t0
    return cert


def add_diagnoses(cert: Certificate, impl: Implementation, cases: Iterable[Case]) -> None:
    """Give every failed feature of ``cert`` its one-line diagnosis, where one is recognised."""
    if not any(r.status == FAIL for r in cert.results):
        return
    lines = diagnose(cert.results, blame(cert.results), {c.name: c for c in cases}, contract_runner(impl),
                     impl.reduced_precision)
    for s in cert.features:
        s.diagnosis = lines.get((s.feature, s.device, s.dtype), "")


def certify_case(impl_or_spec: Implementation | str, name: str, **kw) -> Certificate:
    """Certify one catalogue case by name (what a failure's repro command runs)."""
    return certify(impl_or_spec, cases=[find_case(name)], **kw)
