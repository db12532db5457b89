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

import hashlib
import itertools
import platform
import re
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
    TOO_LARGE,
    CaseResult,
    Status,
    failure_records,
)
from implementations import FEATURES
from implementations.contract import NAME_PATTERN
from implementations.files import json_float

from .blame import Blame, blame


def certificate_stem(spec: str, devices: Sequence[str] = ("cpu",)) -> str:
    """The file name (without suffix) of the certificate of ``spec``: unique per spec.

    A registered or entry-point name is its own stem (``im2col``); any other spec
    (``module:Class``, a file) is a slug of it plus a digest of the whole spec, so two
    plug-ins never share a file and none takes a built-in's."""
    stem = spec if NAME_PATTERN.fullmatch(spec) else \
        f"{_slug(spec)[:40]}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}"
    return stem + ("-" + _slug("-".join(devices)) if tuple(devices) != ("cpu",) else "")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-") or "implementation"  # never a hidden file


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
    #: Blame by experiment: each experimented failing case run again without each option.
    experiments: list[dict[str, Any]] = field(default_factory=list)
    #: Each option judged per operation (``conv2d · stride``); the feature rows summarise them.
    operations: list[FeatureStatus] = field(default_factory=list)
    #: A part of a sharded run (:func:`shard_record`), or empty for a whole certification.
    shard: dict[str, int] = field(default_factory=dict)
    #: Set when this certificate is reused from the cache (``conformance.verdicts.cache``): when it
    #: was certified (``certified``) and the sha256 of its key (``key``); empty when certified now.
    reused: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Every failed check (``feature``: what it is blamed on), and every claimed feature never run."""
        out = [dict(rec, feature="+".join(self.verdict.of(r))) for r in self.results if r.status == FAIL
               for rec in failure_records(r)]
        for s in self.features:
            if s.status == LIMITED and not self.shard:  # another shard may hold its passing case
                out.append({"case": "-", "feature": s.feature, "device": s.device, "dtype": s.dtype,
                            "output": "-",
                            "message": f"{s.feature} is claimed but no case passed: {s.reason}",
                            "repro": ""})
        return out

    @property
    def failed_features(self) -> set[str]:
        failing = (FAIL,) if self.shard else (FAIL, LIMITED)
        return {s.feature for s in self.features if s.status in failing}

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
            "per_operation": [s.to_dict() for s in self.operations if s.status != NOT_CLAIMED],
            "failures": self.failures,
            "findings": self.findings,
            "sweep": self.sweep,
            "experiments": self.experiments,
            "coverage": self.coverage,
            "results": [r.to_dict() for r in self.results],
            **({"shard": self.shard} if self.shard else {}),
            **({"reused": self.reused} if self.reused else {}),
        }


def shard_record(shard: tuple[int, int] | None, results: int, planned: int) -> dict[str, int]:
    """What a sharded certificate records to be merged: part ``index`` of ``count``, and how
    many of its first results are the catalogue's (``planned``; the rest are the sweep's)."""
    if shard is None:
        return {}
    return {"index": shard[0], "count": shard[1], "planned": min(planned, results)}


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
                    needs = sorted({r.reason for r in rs if r.status in (NOT_CLAIMED, TOO_LARGE)})
                    s.reason = "; ".join(needs) or "no case selected"
    return out


#: The options each operation family has (its backward operation has the same).
APPLIES: dict[str, tuple[str, ...]] = {
    "conv2d": ("stride", "dilation", "groups", "asymmetric_padding"),
    "max_pool2d": ("stride", "asymmetric_padding", "ceil_mode", "pool_dilation"),
    "avg_pool2d": ("stride", "asymmetric_padding", "ceil_mode", "pool_dilation", "count_include_pad"),
}


def _judge_option(s: FeatureStatus, rs: Sequence[CaseResult], option: str, verdict: Blame) -> None:
    s.passed = sum(r.status == PASS for r in rs)
    s.failed = sum(r.status == FAIL for r in rs)
    s.limited = sum(r.status == LIMITED for r in rs)
    s.worst_ratio = max((r.worst_ratio for r in rs if r.status in (PASS, FAIL)), default=0.0)
    if any(r.status == FAIL and option in verdict.of(r) for r in rs):
        s.status = FAIL
    elif s.failed:
        s.status, s.reason = IMPLICATED, "its failing cases are explained by another feature"
    elif s.passed:
        s.status = PASS
    elif s.limited:
        s.status = LIMITED
    else:
        s.status, s.reason = NOT_RUN, "no case of it ran"


def per_operation(impl: Claims, results: Sequence[CaseResult], devices: Iterable[str], dtypes: Iterable[str],
                  verdict: Blame) -> list[FeatureStatus]:
    """Each option judged per operation it applies to (``conv2d · stride``, ``avg_pool2d · stride``):
    ``fail`` when a case of that operation is blamed on the option, ``implicated`` when its
    cases fail for another reason, else ``pass``, ``limited`` or ``not run``."""
    pairs = [(op, option) for family, options in APPLIES.items()
             for op in (family, f"{family}_backward") for option in options]
    out = []
    for device, dtype, (op, option) in itertools.product(devices, dtypes, pairs):
        s = FeatureStatus(f"{op} · {option}", device, dtype, NOT_CLAIMED)
        out.append(s)
        if {op, option} <= impl.features and device in impl.devices and dtype in impl.dtypes:
            _judge_option(s, [r for r in results if r.op == op and option in r.filed_under
                              and r.device == device and r.dtype == dtype], option, verdict)
    return out
