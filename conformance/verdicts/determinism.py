"""Determinism as a property: identical calls, compared.

Every failing case runs again (``RERUNS`` times, for the first ``MAX_FAILING`` failures): a
failure that does not recur stays a failure and is marked nondeterministic, because a wrong
answer that appears only in some calls is wrong whichever call the user makes. Passing cases
are called again until every (operation, device, dtype) had ``MIN_CALLS`` calls, so such a
bug cannot hide in a short (``--quick``) run. A sample of passing cases (every case whose
name hashes into one of ``SAMPLE_EVERY`` buckets, the same on every machine; at least one
per device and dtype) runs twice more and the outputs are compared bit for bit: answers that
differ between identical calls are a finding (a GPU reduction in another order is allowed
to), never a failure while each stays within the bound.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

import numpy as np

from conformance.catalogue.cases import Case
from conformance.judging.result import FAIL, PASS, CaseResult

#: Re-runs of each failing case, and how many failing cases are re-run at most.
RERUNS, MAX_FAILING = 3, 32
#: One passing case in SAMPLE_EVERY (by a hash of its name) is run twice more and compared.
SAMPLE_EVERY = 16
#: Calls of each (operation, device, dtype) a certification makes at least: passing cases are
#: called again, smallest first, until there are this many. A bug that strikes one call in
#: twenty then escapes with probability 0.95**120 = 0.2%.
MIN_CALLS = 120
CaseRunner = Callable[[Case, str, str], CaseResult]
#: Runs many (case, device, dtype) at once through the executor (in batches), results in order.
ManyRunner = Callable[[list[tuple[Case, str, str]]], Iterable[CaseResult]]
Outputs = dict[str, np.ndarray]


def _sampled(name: str) -> bool:
    return hashlib.sha256(name.encode()).digest()[0] % SAMPLE_EVERY == 0


def _size(case: Case) -> int:
    return int(np.prod(case.problem.x_shape))


def call_again(results: list[CaseResult], cases: Mapping[str, Case], run_many: ManyRunner,
               min_calls: int = MIN_CALLS) -> int:
    """Call passing cases again until each (operation, device, dtype) had ``min_calls`` calls;
    a repeat that fails turns its case into a failure marked nondeterministic. Returns the
    number of repeats."""
    calls: dict[tuple[str, str, str], int] = {}
    passing: dict[tuple[str, str, str], list[CaseResult]] = {}
    for r in results:
        if r.status in (PASS, FAIL):
            key = (r.op, r.device, r.dtype)
            calls[key] = calls.get(key, 0) + 1
            if r.status == PASS and r.case in cases:
                passing.setdefault(key, []).append(r)
    plan: list[tuple[Case, str, str]] = []
    owners: list[int] = []  # the index in ``results`` of the result each repeat belongs to
    index = {id(r): i for i, r in enumerate(results)}
    for key, rs in passing.items():
        rs.sort(key=lambda r: (_size(cases[r.case]), r.case))
        for i in range(max(min_calls - calls[key], 0)):
            r = rs[i % len(rs)]
            plan.append((cases[r.case], r.device, r.dtype))
            owners.append(index[id(r)])
    for at, again in zip(owners, run_many(plan), strict=True):
        owner = results[at]
        if again.status == FAIL and owner.status == PASS:
            results[at] = replace(
                owner, status=FAIL, checks=again.checks, repro=again.repro,
                reason=(f"nondeterministic: failed in a repeat of an identical call that had passed; "
                        f"{again.reason}").rstrip("; "))
    return len(plan)


def recheck_failures(results: list[CaseResult], cases: Mapping[str, Case],
                     run: CaseRunner) -> int:
    """Re-run failing results; mark those that did not fail every time. Returns how many were re-run."""
    rerun = 0
    for at, r in enumerate(results):
        if r.status != FAIL or r.died or r.case not in cases or r.reason.startswith("nondeterministic"):
            continue  # (a crash or a timeout is not re-run: each costs a fresh worker or the timeout)
        if rerun >= MAX_FAILING:
            break
        rerun += 1
        again = [run(cases[r.case], r.device, r.dtype).status for _ in range(RERUNS)]
        passed = again.count(PASS)
        if passed:
            note = f"nondeterministic: failed in {RERUNS + 1 - passed} of {RERUNS + 1} identical calls"
            results[at] = replace(r, reason=f"{note}; {r.reason}" if r.reason else note)
    return rerun


def _differs(a: Outputs, b: Outputs) -> str | None:
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b.get(name))
        if x.shape != y.shape or x.tobytes() != y.tobytes():
            diff = float(np.nanmax(np.abs(x - y))) if x.shape == y.shape else float("nan")
            return f"output {name} (max |difference| {diff:.3g})"
    return None


def compare_identical_calls(results: Iterable[CaseResult], cases: Mapping[str, Case],
                            outputs: Callable[[Case, str, str], Outputs]) -> dict[str, str]:
    """Per ``device/dtype``, what twice-run sampled passing cases showed (a finding line)."""
    out: dict[str, str] = {}
    passing: dict[str, list[CaseResult]] = {}
    for r in results:
        if r.status == PASS and r.case in cases:
            passing.setdefault(f"{r.device}/{r.dtype}", []).append(r)
    for group, candidates in passing.items():
        rs = [r for r in candidates if _sampled(r.case)] or candidates[:1]  # at least one
        differing = []
        for r in rs:
            try:
                first, second = (outputs(cases[r.case], r.device, r.dtype) for _ in range(2))
            except RuntimeError:
                continue  # a crash here is not a determinism finding; the case itself passed
            where = _differs(first, second)
            if where:
                differing.append(f"{r.case} {where}")
        out[group] = ("bit-identical in every sampled case run twice" if not differing else
                      f"nondeterministic: {len(differing)} of {len(rs)} sampled cases differ between "
                      f"identical calls (within the bound), e.g. {differing[0]}")
    return out
