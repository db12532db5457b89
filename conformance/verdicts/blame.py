"""Which feature is wrong: precise blame of every failing case.

A failing case uses an operation and some options (stride, dilation, ...). An
option is *proven* wrong for an operation when a case using that option alone with the
plain operation fails; the operation itself is proven wrong when a case using no option
fails. An option is only proven where its operation is not (a wrong operation explains every
case that uses it). A failing case is explained by the proven features it uses and blamed on them;
a failing case that nothing proven explains (a bug that needs two options together) is
blamed on every option it uses, or on its operation when it uses none. A feature is
FAILED when some case is blamed on it; a feature merely present in failing cases is
*implicated*. So a wrong max-pool gradient on tied maxima fails ``max_pool2d_backward``
and only implicates ``stride``, ``ceil_mode`` and ``asymmetric_padding``, whose cases fail
for the same reason. Where the certifier has run a failing case again without each option
(:mod:`conformance.verdicts.experiment`), that experiment decides instead, unless the
operation itself is proven wrong: the case is blamed on the options its failure needs, or
on its operation where the experiment could not isolate an option (a failure of rounding
size, every variant refused by a declared limit). An experiment that shows nothing (no
variant runs on the case's data) leaves the case to the rules above. How each failed
feature fails is :mod:`conformance.verdicts.diagnosis`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.judging.result import FAIL, CaseResult

Group = tuple[str, str]  # (device, dtype)


def _options(r: CaseResult) -> frozenset[str]:
    return frozenset(r.filed_under) - {r.op}


@dataclass
class Blame:
    """Failed and implicated features per (device, dtype), and the features each failing case is blamed on."""

    failed: dict[Group, set[str]] = field(default_factory=lambda: defaultdict(set))
    implicated: dict[Group, set[str]] = field(default_factory=lambda: defaultdict(set))
    cases: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)

    def of(self, r: CaseResult) -> tuple[str, ...]:
        """Features the failing result ``r`` is blamed on (its filed-under features if unknown)."""
        return self.cases.get((r.case, r.device, r.dtype), r.filed_under)


def blame(results: Iterable[CaseResult],
          experiments: Mapping[tuple[str, str, str], Any] | None = None) -> Blame:
    """Precise blame of every failing result (see the module docstring); a result with an
    experiment (:mod:`conformance.verdicts.experiment`, keyed by case, device and dtype) is
    blamed on what the experiment showed it needs."""
    experiments = experiments or {}
    failing: dict[Group, list[CaseResult]] = defaultdict(list)
    for r in results:
        if r.status == FAIL:
            failing[(r.device, r.dtype)].append(r)
    out = Blame()
    for group, rs in failing.items():
        ops = {r.op for r in rs if not _options(r)}
        proven = {(op, op) for op in ops}
        proven |= {(r.op, min(_options(r))) for r in rs if len(_options(r)) == 1 and r.op not in ops}
        for r in rs:
            uses = _options(r) | {r.op}
            shown = None if r.op in ops else experiments.get((r.case, r.device, r.dtype))
            excluded = set(shown.excluded) if shown is not None else set()  # the failure does not need them
            blamed = tuple(shown.blamed) if shown is not None and shown.blamed else \
                tuple(sorted(f for op, f in proven if op == r.op and f in uses - excluded)) or \
                tuple(sorted(set(r.filed_under) - excluded)) or (r.op,)
            out.cases[(r.case, r.device, r.dtype)] = blamed
            out.failed[group].update(blamed)
        out.implicated[group] = {f for r in rs for f in _options(r) | {r.op}} - out.failed[group]
    return out
