"""The certificate: the verdict on one implementation, as data (rendered by ``conformance.rendering``).

Per (feature, device, dtype) it says ``pass``, ``fail``, ``not claimed``, ``limited``
(every case covered by a declared limit; for a claimed feature that is a failure: "claimed,
never passed"), ``implicated`` (it fails only in cases that another failed feature
explains, :mod:`conformance.verdicts.blame`) or ``not run`` (every case needs another
feature that is not claimed), with the worst error ratio and the number of limited cases.
A certificate has a *state*: ``running`` while cases run, then ``complete``,
``incomplete`` (a time budget stopped it), ``interrupted`` or ``could not run``; only a
complete certificate can pass. ``coverage`` holds sha256 digests of the catalogue cases and
the sweep's problems planned: equal digests, the same certification.
"""

from __future__ import annotations

import platform
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from conformance.execution.executor import Claims
from conformance.execution.worker import CASE_TIMEOUT
from conformance.judging.result import (
    FAIL,
    IMPLICATED,
    LIMITED,
    NOT_CLAIMED,
    NOT_RUN,
    PASS,
    CaseResult,
    Status,
    failure_records,
)
from implementations import FEATURES
from implementations.files import json_float

from .blame import Blame, blame

#: Certificate states; only a complete certificate can pass.
State = Literal["running", "complete", "incomplete", "interrupted", "could not run"]
RUNNING: Final = "running"
COMPLETE: Final = "complete"
#: A time budget (``max_seconds``) stopped the run before its planned coverage: never a pass.
INCOMPLETE: Final = "incomplete"
INTERRUPTED: Final = "interrupted"
COULD_NOT_RUN: Final = "could not run"


@dataclass
class FeatureStatus:
    feature: str
    device: str
    dtype: str
    status: Status
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
    """The verdict on one implementation: data first, rendered by ``conformance.rendering``."""

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
    state: State = COMPLETE
    note: str = ""
    case_timeout: float = CASE_TIMEOUT

    sweep: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)
    #: Blame of the failing results, computed once with them (see :func:`summarize`).
    verdict: Blame = field(default_factory=Blame)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Every failed check (``feature``: what it is blamed on), and every claimed feature never run."""
        out = [dict(rec, feature="+".join(self.verdict.of(r))) for r in self.results if r.status == FAIL
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
            "coverage": self.coverage,
            "results": [r.to_dict() for r in self.results],
        }


def environment(impl: Claims) -> dict[str, Any]:
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


def summarize(impl: Claims, results: Sequence[CaseResult], devices: Iterable[str],
              dtypes: Iterable[str], verdict: Blame | None = None) -> list[FeatureStatus]:
    """Per (feature, device, dtype) status from the case results filed under each feature.

    A feature with failing cases is ``fail`` only when some failing case is blamed on it
    (``verdict``, :func:`conformance.verdicts.blame.blame` of ``results`` unless given);
    otherwise it is ``implicated``.
    """
    grouped: dict[tuple[str, str, str], list[CaseResult]] = defaultdict(list)
    for r in results:
        for f in set(r.filed_under) | ({r.op} if r.status == FAIL else set()):
            grouped[(f, r.device, r.dtype)].append(r)
    verdict = blame(results) if verdict is None else verdict
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
