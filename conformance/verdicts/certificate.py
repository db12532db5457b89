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
from typing import Any, Final, Literal, get_args

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
    STATUSES,
    TOO_LARGE,
    CaseResult,
    Status,
    failure_records,
    field_of,
    number_of,
)
from conformance.search.draws import digest
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


@dataclass(frozen=True)
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

    @classmethod
    def from_dict(cls, d: Any, where: str = "feature") -> FeatureStatus:
        """A :class:`FeatureStatus` again from its ``to_dict()``."""
        status = field_of(d, "status", str, where=where)
        if status not in STATUSES:
            raise ValueError(f"{where}.status={status!r:.80}: must be one of {', '.join(STATUSES)}")
        return cls(field_of(d, "feature", str, where=where), field_of(d, "device", str, where=where),
                   field_of(d, "dtype", str, where=where), status,
                   number_of(d, "worst_ratio", 0.0, where=where), field_of(d, "passed", int, 0, where=where),
                   field_of(d, "failed", int, 0, where=where), field_of(d, "limited", int, 0, where=where),
                   field_of(d, "reason", str, "", where=where),
                   field_of(d, "diagnosis", str, "", where=where))


@dataclass(frozen=True, kw_only=True)
class Certificate:
    """The verdict on one implementation: data first, rendered by ``conformance.rendering``.

    Built complete, by keyword, and never changed: a later stage makes a new one
    (``dataclasses.replace``). :meth:`from_dict` reads back what :meth:`to_dict` wrote.
    """

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
    attribution: Blame = field(default_factory=Blame)
    #: Blame by experiment: each experimented failing case run again without each option.
    experiments: list[dict[str, Any]] = field(default_factory=list)
    #: Each option judged per operation (``conv2d · stride``); the feature rows summarise them.
    operations: list[FeatureStatus] = field(default_factory=list)
    #: A part of a sharded run (:func:`shard_record`), or empty for a whole certification.
    shard: dict[str, Any] = field(default_factory=dict)
    #: Set when this certificate is reused from the cache (``conformance.verdicts.cache``): when it
    #: was certified (``certified``) and the sha256 of its key (``key``); empty when certified now.
    reused: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Every failed check (``feature``: what it is blamed on), and every claimed feature never run."""
        out = [dict(rec, feature="+".join(self.attribution.of(r))) for r in self.results if r.status == FAIL
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

    @classmethod
    def from_dict(cls, d: Any, where: str = "certificate") -> Certificate:
        """A :class:`Certificate` again from its ``to_dict()`` (a certificate file), every field
        checked for its type (ValueError naming ``where`` and the field). What ``to_dict``
        derives (``passed``, ``counts``, ``failures``) is derived again, not read; the blame is
        computed again from the results and the experiments stored with them."""
        state = field_of(d, "state", str, where=where)
        if state not in get_args(State):
            raise ValueError(f"{where}.state={state!r:.80}: must be one of {', '.join(get_args(State))}")
        results = [CaseResult.from_dict(r, f"{where}.results[{i}]")
                   for i, r in enumerate(field_of(d, "results", list, where=where))]
        experiments = field_of(d, "experiments", list, [], where=where)
        for i, e in enumerate(experiments):
            for key in ("case", "device", "dtype", "op", "blamed"):
                field_of(e, key, str, where=f"{where}.experiments[{i}]")
        shown = {(e["case"], e["device"], e["dtype"]): Shown.of(e) for e in experiments}
        shard = field_of(d, "shard", dict, {}, where=where)
        return cls(
            spec=field_of(d, "spec", str, where=where),
            implementation=field_of(d, "implementation", dict, where=where),
            environment=field_of(d, "environment", dict, where=where),
            devices=_names(d, "devices", where), dtypes=_names(d, "dtypes", where),
            quick=field_of(d, "quick", bool, where=where),
            selection=field_of(d, "selection", str, where=where),
            started=field_of(d, "started", str, where=where), seconds=number_of(d, "seconds", where=where),
            results=results,
            features=[FeatureStatus.from_dict(f, f"{where}.features[{i}]")
                      for i, f in enumerate(field_of(d, "features", list, where=where))],
            findings=field_of(d, "findings", dict, {}, where=where), state=state,
            note=field_of(d, "note", str, "", where=where),
            case_timeout=number_of(d, "case_timeout", CASE_TIMEOUT, where=where),
            sweep=field_of(d, "sweep", dict, {}, where=where),
            coverage=field_of(d, "coverage", dict, {}, where=where),
            attribution=blame(results, shown), experiments=experiments,
            operations=[FeatureStatus.from_dict(f, f"{where}.per_operation[{i}]")
                        for i, f in enumerate(field_of(d, "per_operation", list, [], where=where))],
            shard=shard, reused=field_of(d, "reused", dict, {}, where=where))


@dataclass(frozen=True)
class Shown:
    """What blame needs of an experiment read back from a file: the features it blamed."""

    blamed: tuple[str, ...]
    #: options whose variant still failed: the failure does not need them
    excluded: tuple[str, ...] = ()

    @classmethod
    def of(cls, experiment: dict[str, Any]) -> Shown:
        """What a stored experiment showed (``excluded`` absent from older certificates)."""
        return cls(tuple(experiment["blamed"].split("+")), tuple(experiment.get("excluded", ())))


def _names(d: Any, key: str, where: str) -> tuple[str, ...]:
    names = field_of(d, key, list, where=where)
    if not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where}.{key}={names!r:.80}: must be a list of names")
    return tuple(names)


def shard_record(shard: tuple[int, int] | None, results: int, planned: int, plan: Sequence[str] = (),
                 agreed: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a sharded certificate records to be merged: part ``index`` of ``count``, how many
    of its first results are the catalogue's (``planned``; the rest are the sweep's), the size
    and sha256 of the whole plan (``plan``: ``device/dtype/case`` before sharding), and the
    options every part must share (``agreed``: seed, sweep size, memory limit)."""
    if shard is None:
        return {}
    return {"index": shard[0], "count": shard[1], "planned": min(planned, results), "plan_cases": len(plan),
            "plan_sha256": digest(plan), **(agreed or {})}


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
              dtypes: Iterable[str], attribution: Blame | None = None) -> list[FeatureStatus]:
    """Per (feature, device, dtype) status from the case results filed under each feature.

    A feature with failing cases is ``fail`` only when some failing case is blamed on it
    (``attribution``, :func:`conformance.verdicts.blame.blame` of ``results`` unless given);
    otherwise it is ``implicated``.
    """
    grouped: dict[tuple[str, str, str], list[CaseResult]] = defaultdict(list)
    for r in results:
        for f in set(r.filed_under) | ({r.op} if r.status == FAIL else set()):
            grouped[(f, r.device, r.dtype)].append(r)
    attribution = blame(results) if attribution is None else attribution
    out = []
    for device in devices:
        for dtype in dtypes:
            for feature in FEATURES:
                if device not in impl.devices or dtype not in impl.dtypes:
                    out.append(FeatureStatus(feature, device, dtype, NOT_CLAIMED,
                                             reason=f"{device}/{dtype} not claimed"))
                elif feature not in impl.features:
                    out.append(FeatureStatus(feature, device, dtype, NOT_CLAIMED))
                else:
                    rs = grouped.get((feature, device, dtype), [])
                    blamed = feature in attribution.failed.get((device, dtype), ())
                    out.append(_judge_feature(feature, device, dtype, rs, blamed))
    return out


def _tally(rs: Sequence[CaseResult]) -> dict[str, Any]:
    """The counts and the worst ratio of the results filed under one status."""
    return {"passed": sum(r.status == PASS for r in rs), "failed": sum(r.status == FAIL for r in rs),
            "limited": sum(r.status == LIMITED for r in rs),
            "worst_ratio": max((r.worst_ratio for r in rs if r.status in (PASS, FAIL)), default=0.0)}


def _judge_feature(feature: str, device: str, dtype: str, rs: Sequence[CaseResult],
                   blamed: bool) -> FeatureStatus:
    tally = _tally(rs)
    reasons = "; ".join(sorted({r.reason for r in rs if r.status == LIMITED}))
    status: Status
    if blamed:
        status, reason = FAIL, ""
    elif tally["failed"]:
        status, reason = IMPLICATED, "fails only in cases that another failed feature explains"
    elif tally["passed"]:
        status, reason = PASS, (f"{tally['limited']} case(s) limited: {reasons}" if tally["limited"] else "")
    elif tally["limited"]:
        status, reason = LIMITED, f"every case is limited: {reasons}"
    else:
        needs = sorted({r.reason for r in rs if r.status in (NOT_CLAIMED, TOO_LARGE)})
        status, reason = NOT_RUN, "; ".join(needs) or "no case selected"
    return FeatureStatus(feature, device, dtype, status, reason=reason, **tally)


#: The options each operation family has (its backward operation has the same).
APPLIES: dict[str, tuple[str, ...]] = {
    "conv2d": ("stride", "dilation", "groups", "asymmetric_padding"),
    "max_pool2d": ("stride", "asymmetric_padding", "ceil_mode", "pool_dilation"),
    "avg_pool2d": ("stride", "asymmetric_padding", "ceil_mode", "pool_dilation", "count_include_pad"),
}


def _judge_option(name: str, device: str, dtype: str, rs: Sequence[CaseResult], option: str,
                  attribution: Blame) -> FeatureStatus:
    tally = _tally(rs)
    status: Status
    reason = ""
    if any(r.status == FAIL and option in attribution.of(r) for r in rs):
        status = FAIL
    elif tally["failed"]:
        status, reason = IMPLICATED, "its failing cases are explained by another feature"
    elif tally["passed"]:
        status = PASS
    elif tally["limited"]:
        status = LIMITED
    else:
        status, reason = NOT_RUN, "no case of it ran"
    return FeatureStatus(name, device, dtype, status, reason=reason, **tally)


def per_operation(impl: Claims, results: Sequence[CaseResult], devices: Iterable[str], dtypes: Iterable[str],
                  attribution: Blame) -> list[FeatureStatus]:
    """Each option judged per operation it applies to (``conv2d · stride``, ``avg_pool2d · stride``):
    ``fail`` when a case of that operation is blamed on the option, ``implicated`` when its
    cases fail for another reason, else ``pass``, ``limited`` or ``not run``."""
    pairs = [(op, option) for family, options in APPLIES.items()
             for op in (family, f"{family}_backward") for option in options]
    out = []
    for device, dtype, (op, option) in itertools.product(devices, dtypes, pairs):
        name = f"{op} · {option}"
        if {op, option} <= impl.features and device in impl.devices and dtype in impl.dtypes:
            out.append(_judge_option(name, device, dtype, [
                r for r in results if r.op == op and option in r.filed_under and r.device == device
                and r.dtype == dtype], option, attribution))
        else:
            out.append(FeatureStatus(name, device, dtype, NOT_CLAIMED))
    return out
