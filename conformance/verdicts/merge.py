"""Joining the certificates of a sharded certification (``certify --shard K/N``) into one.

Part K of N ran every N-th case of the plan from the K-th (and part 1 the random sweep),
so the parts interleave back into the plan's order. Everything else is derived again from
the joined results (counts, per-feature statuses, blame, failures), so the merged
certificate equals the one an unsharded run writes, apart from its times. Diagnoses come
from the parts: each is kept for a failed feature that some part diagnosed; so do the
experiments of blame by experiment (each part tried the smallest failing cases it had, so
where a part had no case that proves an operation wrong the choice of cases can differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from conformance.judging.compare import Check
from conformance.judging.result import FAIL, CaseResult
from conformance.search.draws import digest

from .blame import blame
from .certificate import COMPLETE, Certificate, per_operation, summarize


class MergeError(ValueError):
    """The certificates given are not the N complete parts of one sharded certification."""


def _check(d: dict[str, Any]) -> Check:
    passed = d.get("passed", True)  # a passing check is stored in brief: output, kind, ratio
    ratio = float(d.get("ratio", 0.0))  # JSON holds inf and nan as strings
    return Check(d["output"], d["kind"], passed, ratio, tuple(d.get("index", ())),
                 d.get("found"), d.get("expected"), d.get("bound"), d.get("message", ""))


def case_result(d: dict[str, Any]) -> CaseResult:
    """A :class:`CaseResult` again from its ``to_dict()`` (what a certificate file holds)."""
    return CaseResult(d["case"], d["op"], d["device"], d["dtype"], d["status"], tuple(d["filed_under"]),
                      d["mode"], [_check(c) for c in d["checks"]], d.get("reason", ""), d.get("repro", ""),
                      d.get("seconds", 0.0))


def _claims(value: Any) -> Any:
    """What must agree between parts: an implementation's description without its log's path."""
    return {k: v for k, v in value.items() if k != "log"} if isinstance(value, dict) else value


def _parts(documents: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents ordered by part, after checking they are the N complete parts of one run."""
    if not documents:
        raise MergeError("no certificate to merge")
    shards: list[dict[str, int]] = [d.get("shard") or {} for d in documents]
    if any(not s for s in shards):
        raise MergeError("only certificates written with --shard K/N can be merged")
    count = shards[0]["count"]
    indices = sorted(s["index"] for s in shards)
    if any(s["count"] != count for s in shards) or indices != list(range(1, count + 1)):
        raise MergeError(f"need parts 1..{count} of {count} once each; got "
                         + ", ".join(f"{s['index']}/{s['count']}" for s in shards))
    for key in ("spec", "devices", "dtypes", "selection", "quick", "implementation"):
        values = {repr(_claims(d.get(key))) for d in documents}
        if len(values) > 1:
            raise MergeError(f"the parts differ in {key}" + (f": {' / '.join(sorted(values))}"
                                                              if key != "implementation" else ""))
    for d in documents:
        if d.get("state") != COMPLETE:
            raise MergeError(f"part {d['shard']['index']}/{count} is {d.get('state')!r}, not complete: "
                             f"{d.get('note', '')}")
    return sorted(documents, key=lambda d: d["shard"]["index"])


def merge(documents: Sequence[dict[str, Any]]) -> Certificate:
    """One certificate from the N parts (certificate dicts, as written) of a sharded run."""
    parts = _parts(documents)
    count = len(parts)
    catalogue = [[case_result(r) for r in d["results"][: d["shard"]["planned"]]] for d in parts]
    results = [part[i] for i in range(max(map(len, catalogue))) for part in catalogue if i < len(part)]
    first = parts[0]
    results += [case_result(r) for r in first["results"][first["shard"]["planned"]:]]  # the sweep's
    impl = first["implementation"]
    devices, dtypes = tuple(first["devices"]), tuple(first["dtypes"])
    # an operation that fails with no option (in any part) explains its cases: no experiment
    plain = {(r.device, r.dtype, r.op) for r in results if r.status == FAIL and set(r.filed_under) == {r.op}}
    experiments = [e for d in parts for e in d.get("experiments", [])
                   if (e["device"], e["dtype"], e["op"]) not in plain]
    shown = {(e["case"], e["device"], e["dtype"]): SimpleNamespace(blamed=tuple(e["blamed"].split("+")))
             for e in experiments}
    verdict = blame(results, shown)
    claims = SimpleNamespace(devices=impl["devices"], dtypes=impl["dtypes"],
                             features=frozenset(impl["features"]))
    features = summarize(claims, results, devices, dtypes, verdict)
    diagnosed = {(s["feature"], s["device"], s["dtype"]): s["diagnosis"]
                 for d in parts for s in d["features"] if s.get("diagnosis")}
    for s in features:
        if s.status == FAIL:
            s.diagnosis = diagnosed.get((s.feature, s.device, s.dtype), "")
    findings: dict[str, dict[str, str]] = {}
    for d in parts:
        findings.update(d.get("findings", {}))
    cert = Certificate(first["spec"], impl, first["environment"], devices, dtypes, first["quick"],
                       first["selection"], min(d["started"] for d in parts),
                       sum(d["seconds"] for d in parts), results, features, findings, COMPLETE, "",
                       first["case_timeout"], verdict=verdict, experiments=experiments,
                       operations=per_operation(claims, results, devices, dtypes, verdict))
    cert.sweep = first.get("sweep", {})
    order = results[:sum(map(len, catalogue))]  # the catalogue's results, back in the plan's order
    cert.coverage = dict(first.get("coverage", {}), catalogue_cases=len(order),
                         catalogue_sha256=digest(f"{r.device}/{r.dtype}/{r.case}" for r in order))
    if count and any(d.get("sweep") for d in parts[1:]):
        raise MergeError("a random sweep ran in a part other than 1")
    return cert
