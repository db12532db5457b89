"""The random sweep every certification runs after the catalogue.

For each certified device and dtype and each operation family the implementation claims,
the sweep runs a fixed list of ``examples`` problems (:mod:`conformance.search.draws`),
drawn from the seed, the convcert version and the claims alone, weighted toward the edge
geometries where real kernels break. Neither the clock nor the implementation's answers
change the list: every drawn problem runs, whether or not an earlier one failed, and the
certificate records the list's sha256 (``digest``), so two machines can show that they ran
the same certification. A time budget (``max_seconds``, none by default) that stops the
sweep early says so (``stopped_early``): the certificate is then *incomplete*, never a pass.

The first failing problem of each (device, dtype, family) is run again :data:`RERUNS` times.
A failure that recurs is shrunk (:mod:`conformance.search.shrink`) to a smaller problem that
still fails; one that does not recur stays a failure, marked nondeterministic with how often
it failed. Either enters the certificate as ordinary case results, blamed like a catalogue
case; its name is a problem descriptor that :func:`problem_from_name` reads back, so
``python -m conformance certify SPEC --case NAME`` reproduces it in one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.catalogue.cases import FAMILIES, Case, Problem
from conformance.execution.executor import Claims
from conformance.judging.judge import run_case
from conformance.judging.result import FAIL, CaseResult
from implementations import Implementation
from implementations.contract import OPTIONS

from .draws import Draw, digest, plan
from .shrink import shrink

#: Problems per (device, dtype, family) by default (see README: about 25 s for im2col's four
#: dtypes on a quiet 2-core CPU).
DEFAULT_EXAMPLES = 120
DEFAULT_SEED = 0
#: Times the first failing problem of each (device, dtype, family) is run again.
RERUNS = 3

#: Runs and judges one case on one (device, dtype): the certifier's worker, or ``run_case``.
CaseRunner = Callable[[Case, str, str], CaseResult]
#: Runs and judges many cases in order, yielding one result per case (a worker in batches).
BatchRunner = Callable[[Iterable[tuple[Case, str, str]]], Iterator[CaseResult]]


@dataclass
class Sweep:
    """What a sweep did: its seed, budget and digest, the problems it ran, and each failure kept."""

    seed: int
    examples: int
    digest: str = ""  # sha256 of every planned problem's name (device/dtype/family-descriptor)
    planned: int = 0
    drawn: list[str] = field(default_factory=list)  # every problem run, in order
    results: list[CaseResult] = field(default_factory=list)  # both cases of each failure kept
    cases: dict[str, Case] = field(default_factory=dict)
    failing_problems: int = 0  # drawn problems that failed (before shrinking)
    recurred: dict[str, str] = field(default_factory=dict)  # failing case -> "k of n runs"
    seconds: float = 0.0
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        failures = [{"case": r.case, "device": r.device, "dtype": r.dtype, "repro": r.repro,
                     "failed_runs": self.recurred.get(r.case, ""),
                     "message": next((c.message for c in r.checks if not c.passed), r.reason)}
                    for r in self.results if r.status == FAIL]
        return {"seed": self.seed, "examples_per_family": self.examples, "sha256": self.digest,
                "problems_planned": self.planned, "problems_tried": len(self.drawn),
                "failing_problems": self.failing_problems, "seconds": round(self.seconds, 2),
                "stopped_early": self.stopped_early, "failures": failures}


def _families(impl: Claims) -> list[str]:
    return [f for f in FAMILIES if f in impl.features or f"{f}_backward" in impl.features]


def local_runner(impl: Implementation, spec: str | None = None) -> CaseRunner:
    """A :data:`CaseRunner` calling ``impl`` in this process."""
    return lambda case, device, dtype: run_case(impl, case, device, dtype, spec=spec)


def sweep_plan(impl: Claims, devices: Sequence[str], dtypes: Sequence[str], examples: int = DEFAULT_EXAMPLES,
               seed: int = DEFAULT_SEED) -> list[Draw]:
    """The problems a sweep of ``impl`` runs: a function of the seed, the version and the claims."""
    allowed = frozenset(impl.features) & frozenset(OPTIONS)
    return plan(_families(impl), [d for d in devices if d in impl.devices],
                [t for t in dtypes if t in impl.dtypes], allowed, examples, seed)


class _Sweeper:
    """One sweep: runs the plan, then re-runs and shrinks the first failure of each family."""

    def __init__(self, impl: Claims, run_many: BatchRunner, out: Sweep, deadline: float | None):
        self.impl, self.run_many, self.out, self.deadline = impl, run_many, out, deadline
        self.allowed = frozenset(impl.features) & frozenset(OPTIONS)

    def out_of_time(self) -> bool:
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.out.stopped_early = True
        return self.out.stopped_early

    def cases(self, problem: Problem) -> list[Case]:
        return [c for c in problem.cases() if c.op in self.impl.features]

    def run_problem(self, problem: Problem, device: str, dtype: str) -> list[CaseResult]:
        return list(self.run_many((c, device, dtype) for c in self.cases(problem)))

    def run_plan(self, draws: list[Draw]) -> dict[tuple[str, str, str], tuple[Problem, list[CaseResult]]]:
        """Run every draw (until the deadline); the first failing problem of each (device, dtype, family)."""
        order: list[Draw] = []

        def items() -> Iterator[tuple[Case, str, str]]:
            for draw in draws:
                if self.out_of_time():
                    return
                self.out.drawn.append(draw.name)
                for case in self.cases(draw.problem):
                    order.append(draw)
                    yield case, draw.device, draw.dtype

        first: dict[tuple[str, str, str], tuple[Problem, list[CaseResult]]] = {}
        by_draw: dict[str, list[CaseResult]] = {}
        for i, result in enumerate(self.run_many(items())):
            draw = order[i]
            results = by_draw.setdefault(draw.name, [])
            results.append(result)
            if len(results) < len(self.cases(draw.problem)) or not any(r.status == FAIL for r in results):
                continue
            self.out.failing_problems += 1
            first.setdefault((draw.device, draw.dtype, draw.problem.family), (draw.problem, results))
        return first

    def keep(self, problem: Problem, results: list[CaseResult], device: str, dtype: str) -> None:
        """Re-run a failing problem; shrink it if the failure recurs; record what failed."""
        runs, failed_runs, latest = 1 + RERUNS, 1, results
        for _ in range(RERUNS):
            if self.out_of_time():
                runs = failed_runs = 0  # not counted: the budget ran out
                break
            again = self.run_problem(problem, device, dtype)
            if any(r.status == FAIL for r in again):
                failed_runs, latest = failed_runs + 1, again
        if failed_runs > 1 and not self.out_of_time():
            found: dict[str, list[CaseResult]] = {}

            def fails(candidate: Problem) -> bool:
                if self.out_of_time():
                    return False
                got = self.run_problem(candidate, device, dtype)
                if any(r.status == FAIL for r in got):
                    found[candidate.descriptor] = got
                    return True
                return False

            smallest = shrink(problem, fails, self.allowed)
            if smallest is not problem:
                problem, latest = smallest, found[smallest.descriptor]
        if runs and failed_runs < runs:
            note = (f"nondeterministic: failed in {failed_runs} of {runs} runs of the same problem "
                    "(kept as a failure)")
            latest = [replace(r, reason=note) if r.status == FAIL else r for r in latest]
        for r in latest:
            if r.status == FAIL and runs:
                self.out.recurred[r.case] = f"{failed_runs} of {runs}"
        self.out.results += latest
        self.out.cases.update({c.name: c for c in self.cases(problem)})


def sweep(impl: Claims, devices: Sequence[str], dtypes: Sequence[str], run: CaseRunner | None = None, *,
          examples: int = DEFAULT_EXAMPLES, seed: int = DEFAULT_SEED, max_seconds: float | None = None,
          run_many: BatchRunner | None = None) -> Sweep:
    """Run the planned problems of every claimed family on every claimed (device, dtype); keep
    each family's first failure, shrunk when it recurs (see the module docstring).

    ``impl`` gives the claims (an implementation or the certifier's worker); ``run`` runs one
    case, ``run_many`` many in order (default: ``impl`` called in this process). The problems run
    depend only on ``seed``, the convcert version and the claims; ``max_seconds`` (default: no
    limit) stops the sweep early, which ``stopped_early`` records.
    """
    if run_many is None:
        if run is None:
            if not isinstance(impl, Implementation):
                raise ValueError(f"run=None: needs an Implementation to call in this process, got {impl!r}")
            run = local_runner(impl)
        one = run
        run_many = lambda items: (one(*item) for item in items)  # noqa: E731
    t0 = time.perf_counter()
    draws = sweep_plan(impl, devices, dtypes, examples, seed)
    out = Sweep(seed, examples, digest(d.name for d in draws), len(draws))
    sweeper = _Sweeper(impl, run_many, out, None if max_seconds is None else t0 + max_seconds)
    first = sweeper.run_plan(draws)
    for (device, dtype, _), (problem, results) in first.items():
        sweeper.keep(problem, results, device, dtype)
    out.seconds = time.perf_counter() - t0
    return out
