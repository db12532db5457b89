"""Joining the certificates of a sharded certification (``certify --shard K/N``) into one.

Part K of N ran every N-th case of the plan from the K-th (and part 1 the random sweep),
so the parts interleave back into the plan's order. Nothing a part says about its verdict is
taken on trust: each part is read back field by field (:meth:`Certificate.from_dict`), must
come from the same spec, claims, convcert version, seed, options and ``--min-calls`` as the
others, and the parts must be parts 1 to N once each, their cases together exactly the plan
each recorded (and, for the quick or full catalogue, the plan this convcert makes). Every
case's status is judged again from its stored evidence (each check's error and bound:
:func:`conformance.judging.result.rejudge`); counts, per-feature statuses, blame and
failures are derived again from the joined results, so the merged certificate equals the one
an unsharded run writes, apart from its times. Diagnoses come from the parts: each is kept
for a failed feature that some part diagnosed; so do the experiments of blame by experiment
(each part tried the smallest failing cases it had, so where a part had no case that proves
an operation wrong the choice of cases can differ).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from conformance.catalogue.cases import problem_from_name
from conformance.catalogue.selection import all_cases, quick_cases
from conformance.judging.result import FAIL, NOT_CLAIMED, CaseResult, field_of, rejudge
from conformance.search.draws import digest, version

from .blame import blame
from .certificate import COMPLETE, Certificate, Shown, per_operation, summarize


class MergeError(ValueError):
    """The certificates given are not the N complete parts of one sharded certification."""


#: Shard fields every part must hold, with their types (``max_memory`` may be None).
SHARD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "index": int, "count": int, "planned": int, "plan_cases": int, "plan_sha256": str, "seed": int,
    "sweep_examples": int, "max_memory": (int, type(None))}


def _claims(value: Any) -> Any:
    """What must agree between parts: an implementation's description without its log's path."""
    return {k: v for k, v in value.items() if k != "log"} if isinstance(value, dict) else value


def _read(document: Any, name: str) -> Certificate:
    """One part, read back and checked for the fields a merge needs (MergeError naming it)."""
    try:
        cert = Certificate.from_dict(document, where=name)
        shard = field_of(document, "shard", dict, where=name)
        for key, kind in SHARD_FIELDS.items():
            field_of(shard, key, kind, where=f"{name}.shard")
        for key, kind in (("convcert", str), ("calls_per_operation", int)):
            field_of(cert.coverage, key, kind, where=f"{name}.coverage")
        for key in ("features", "devices", "dtypes"):
            values = field_of(cert.implementation, key, list, where=f"{name}.implementation")
            if not all(isinstance(v, str) for v in values):
                raise ValueError(f"{name}.implementation.{key}={values!r:.80}: must be a list of names")
    except ValueError as exc:  # every message names the part and the field
        raise MergeError(str(exc)) from None
    if cert.sweep and cert.sweep.get("seed") != shard["seed"]:
        raise MergeError(f"{name}: its sweep ran with seed {cert.sweep.get('seed')!r:.40}, its shard says "
                         f"{shard['seed']}")
    if not 1 <= shard["index"] <= shard["count"] or not 0 <= shard["planned"] <= len(cert.results):
        raise MergeError(f"{name}: shard {shard['index']}/{shard['count']} with {shard['planned']} catalogue "
                         f"results of {len(cert.results)}: not a part of a sharded run")
    return cert


def _agreed(cert: Certificate) -> dict[str, Any]:
    """What every part of one sharded run has in common."""
    keep = ("count", "plan_cases", "plan_sha256", "seed", "sweep_examples", "max_memory")
    return {"spec": cert.spec, "implementation": _claims(cert.implementation), "devices": cert.devices,
            "dtypes": cert.dtypes, "quick": cert.quick, "selection": cert.selection,
            "case timeout": cert.case_timeout, "convcert version": cert.coverage["convcert"],
            "--min-calls": cert.coverage["calls_per_operation"], **{k: cert.shard[k] for k in keep}}


def _parts(documents: Sequence[Any], names: Sequence[str]) -> list[tuple[str, Certificate]]:
    """The parts ordered by index, after checking they are the N complete parts of one run."""
    if not documents:
        raise MergeError("no certificate to merge")
    parts = [(name, _read(d, name)) for d, name in zip(documents, names, strict=True)]
    first_name, first = parts[0]
    expected = _agreed(first)
    for name, cert in parts[1:]:
        for key, value in _agreed(cert).items():
            if value != expected[key]:
                shown = "" if key == "implementation" else f": {value!r:.120} vs {expected[key]!r:.120}"
                raise MergeError(f"{name}: differs from {first_name} in {key}{shown}")
    count = first.shard["count"]
    seen: dict[int, str] = {}
    for name, cert in parts:
        index = cert.shard["index"]
        if index in seen:
            raise MergeError(f"{name}: part {index}/{count} again (also {seen[index]}); "
                             f"need parts 1..{count} of {count} once each")
        seen[index] = name
    if sorted(seen) != list(range(1, count + 1)):
        raise MergeError(f"need parts 1..{count} of {count} once each; got "
                         + ", ".join(f"{i}/{count}" for i in sorted(seen)))
    for name, cert in parts:
        if cert.state != COMPLETE:
            raise MergeError(f"{name}: part {cert.shard['index']}/{count} is {cert.state!r}, not complete: "
                             f"{cert.note}")
    if first.coverage["convcert"] != version():
        raise MergeError(f"{first_name}: made by convcert {first.coverage['convcert']}; this is convcert "
                         f"{version()}, which would judge it by other rules")
    return sorted(parts, key=lambda part: part[1].shard["index"])


def _rejudge(name: str, cert: Certificate) -> None:
    """Every result's status again from its evidence, and "not claimed" against the claims."""
    impl = cert.implementation
    claimed = set(impl.get("features") or ()), set(impl.get("devices") or ()), set(impl.get("dtypes") or ())
    for r in cert.results:
        why = rejudge(r)
        if not why and r.status == NOT_CLAIMED and r.device in claimed[1] and r.dtype in claimed[2]:
            try:
                needs = problem_from_name(r.case).requires
            except ValueError:  # a shapes-file problem that is no descriptor
                needs = None
            if needs is not None and needs <= claimed[0]:
                why = f"{r.label}: status not claimed stored, but {cert.spec} claims all it needs"
        if why:
            raise MergeError(f"{name}: {why}")


def _names(results: Sequence[CaseResult]) -> list[str]:
    return [f"{r.device}/{r.dtype}/{r.case}" for r in results]


def _check_plan(parts: Sequence[tuple[str, Certificate]]) -> list[CaseResult]:
    """The catalogue's results, interleaved back into the plan's order, after checking that
    together they are the plan every part recorded: each part exactly its share, in order."""
    first = parts[0][1]
    count, total = first.shard["count"], first.shard["plan_cases"]
    plan: list[str] | None = None
    if first.selection in ("quick", "full"):  # this convcert's plan: what the parts must have run
        chosen = quick_cases() if first.selection == "quick" else all_cases()
        plan = [f"{d}/{t}/{c.name}" for d in first.devices for t in first.dtypes for c in chosen]
        if digest(plan) != first.shard["plan_sha256"]:
            raise MergeError(f"{parts[0][0]}: the plan it records ({total} cases) is not the "
                             f"{first.selection} plan of {', '.join(first.devices)} x "
                             f"{', '.join(first.dtypes)} ({len(plan)} cases)")
    owner: dict[str, str] = {}
    catalogue = []
    for name, cert in parts:
        k = cert.shard["index"]
        mine = cert.results[: cert.shard["planned"]]
        names = _names(mine)
        for n in names:
            if n in owner:
                raise MergeError(f"{name}: case {n} again (also in {owner[n]})")
            owner[n] = name
        share = len(range(k - 1, total, count))
        if plan is not None and names != plan[k - 1::count]:
            at = next((i for i, (a, b) in enumerate(zip(names, plan[k - 1::count], strict=False)) if a != b),
                      min(len(names), share))
            got = names[at] if at < len(names) else "nothing"
            want = plan[k - 1::count][at] if at < share else "nothing"
            raise MergeError(f"{name}: its cases are not part {k} of {count} of the plan: result {at + 1} is "
                             f"{got}, the plan has {want} there")
        if len(mine) != share:
            raise MergeError(f"{name}: holds {len(mine)} catalogue results; part {k} of {count} of a plan of "
                             f"{total} cases has {share}")
        if k != 1 and (len(cert.results) > len(mine) or cert.sweep):
            raise MergeError(f"{name}: a random sweep ran in part {k}; it runs in part 1 only")
        catalogue.append(mine)
    order = [part[i] for i in range(max(map(len, catalogue))) for part in catalogue if i < len(part)]
    if digest(_names(order)) != first.shard["plan_sha256"]:
        raise MergeError(f"the parts' cases together are not the plan they record ({total} cases, "
                         f"sha256 {first.shard['plan_sha256'][:12]}...)")
    return order


def merge(documents: Sequence[Any], names: Sequence[str] | None = None) -> Certificate:
    """One certificate from the N parts (certificate dicts, as written) of a sharded run;
    ``names`` (the files they came from) name a part in a MergeError."""
    names = list(names) if names is not None else [f"part file {i + 1}" for i in range(len(documents))]
    parts = _parts(documents, names)
    for name, cert in parts:
        _rejudge(name, cert)
    order = _check_plan(parts)
    first = parts[0][1]
    results = order + first.results[first.shard["planned"]:]  # the sweep's, from part 1
    impl = first.implementation
    devices, dtypes = first.devices, first.dtypes
    # an operation that fails with no option (in any part) explains its cases: no experiment
    plain = {(r.device, r.dtype, r.op) for r in results if r.status == FAIL and set(r.filed_under) == {r.op}}
    experiments = [e for _, cert in parts for e in cert.experiments
                   if (e["device"], e["dtype"], e["op"]) not in plain]
    shown = {(e["case"], e["device"], e["dtype"]): Shown.of(e) for e in experiments}
    attribution = blame(results, shown)
    claims = SimpleNamespace(devices=impl["devices"], dtypes=impl["dtypes"],
                             features=frozenset(impl["features"]))
    diagnosed = {(s.feature, s.device, s.dtype): s.diagnosis for _, cert in parts for s in cert.features
                 if s.diagnosis}
    features = [dataclasses.replace(s, diagnosis=diagnosed.get((s.feature, s.device, s.dtype), ""))
                if s.status == FAIL else s for s in summarize(claims, results, devices, dtypes, attribution)]
    findings: dict[str, dict[str, str]] = {}
    for _, cert in parts:
        findings.update(cert.findings)
    coverage = dict(first.coverage, catalogue_cases=len(order), catalogue_sha256=digest(_names(order)))
    return Certificate(
        spec=first.spec, implementation=impl, environment=first.environment, devices=devices, dtypes=dtypes,
        quick=first.quick, selection=first.selection, started=min(cert.started for _, cert in parts),
        seconds=sum(cert.seconds for _, cert in parts), results=results, features=features, findings=findings,
        state=COMPLETE, note="", case_timeout=first.case_timeout, sweep=first.sweep, coverage=coverage,
        attribution=attribution, experiments=experiments,
        operations=per_operation(claims, results, devices, dtypes, attribution))
