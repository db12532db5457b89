"""Blame by experiment: which option a failure needs, shown by running the case without it.

A failing case uses an operation and some options. Each option it uses is turned off where
the geometry allows (stride 1, or the window for pooling; dilation 1; groups 1 with the
weights widened to every channel; symmetric padding, the larger of each pair; ceil_mode
off; count_include_pad off) and the variant runs on the implementation. A variant must keep
every other option in effect: where turning one off silences another (no stride, and
ceil_mode no longer changes the output), the input grows by up to three rows and columns
until it does not, and where no nearby shape helps, that option cannot be separated. The failure
*needs* an option when the variant without it passes: that pair of cases (failing with the
option, passing without) is the evidence the certificate records. Options the failure needs
are blamed, together when there are several (``ceil_mode+count_include_pad``, which cannot
be separated); when it needs none and still fails with every option off, the operation is
to blame; when no single option can be shown necessary but the plain case passes, the
combination of its options is.

An operation that fails in a case using no option is wrong itself and explains every case
that uses it (:mod:`conformance.verdicts.blame`): its cases are not experimented on, which
also keeps statistical failures (rounding that misses the bound by chance) from being pinned
on whichever option a variant happened to drop. Experiments are costly (each variant is a
call and a reference computed on the fly), so only the smallest failing cases of each
(device, dtype, operation, options) group are experimented on (``PER_GROUP``); the rest of
the group shares their blame.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.catalogue.cases import Case, Problem
from conformance.judging.result import FAIL, PASS, CaseResult
from implementations.geometry import PoolParams

#: Failing cases experimented on per (device, dtype, operation, options) group.
PER_GROUP = 2
#: Runs and judges one case on one (device, dtype) through the executor.
CaseRunner = Callable[[Case, str, str], CaseResult]


@dataclass
class Experiment:
    """What running a failing case without each of its options showed."""

    case: str
    op: str
    device: str
    dtype: str
    blamed: tuple[str, ...]
    #: option -> (variant case without it, its status), "-" where the geometry does not allow it
    variants: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: the case of the same group whose experiment this one shares ("" when run on this case)
    shared_from: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "op": self.op, "device": self.device, "dtype": self.dtype,
                "blamed": "+".join(self.blamed), "shared_from": self.shared_from,
                "variants": {o: {"case": c, "status": s} for o, (c, s) in self.variants.items()}}


def _symmetric(problem: Problem) -> Problem:
    (t, b), (lo, r) = problem.params.padding
    return dataclasses.replace(problem, padding=((max(t, b),) * 2, (max(lo, r),) * 2))


def _ungrouped(problem: Problem) -> Problem:
    assert problem.w_shape is not None  # groups are an option of convolutions only
    k, _, r, s = problem.w_shape
    return dataclasses.replace(problem, groups=1, w_shape=(k, problem.x_shape[1], r, s))


def _unstrided(problem: Problem) -> Problem:
    params = problem.params
    stride = params.kernel if isinstance(params, PoolParams) else 1
    return dataclasses.replace(problem, stride=stride)


#: How each option is turned off; the variant must be a valid problem that no longer uses it.
OFF: dict[str, Callable[[Problem], Problem]] = {
    "stride": _unstrided,
    "dilation": lambda p: dataclasses.replace(p, dilation=1),
    "pool_dilation": lambda p: dataclasses.replace(p, dilation=1),
    "groups": _ungrouped,
    "asymmetric_padding": _symmetric,
    "ceil_mode": lambda p: dataclasses.replace(p, ceil_mode=False),
    "count_include_pad": lambda p: dataclasses.replace(p, count_include_pad=False),
}


@dataclass(frozen=True)
class Variant(Problem):
    """A problem drawn from another's seed: an input whose shape the variant keeps keeps its
    values, so a failure that hangs on the data (tied maxima, say) is not lost by a reshuffle."""

    origin_seed: int = 0

    @property
    def seed(self) -> int:
        return self.origin_seed


def _ceil_matters(problem: Problem) -> bool:
    """ceil_mode changes this pooling's output (else it is on, but does nothing)."""
    params = problem.params
    if not isinstance(params, PoolParams) or not params.ceil_mode:
        return True
    floor = dataclasses.replace(problem, ceil_mode=False).params
    return floor.out_hw != params.out_hw


def _keeps_the_rest(problem: Problem, variant: Problem, off: frozenset[str]) -> bool:
    """The variant still uses every option of ``problem`` but ``off``, each with an effect."""
    kept = problem.options - off
    return variant.options == kept and ("ceil_mode" not in kept or _ceil_matters(variant))


def _nearby(problem: Problem) -> list[Problem]:
    """``problem`` itself, then the same with the input grown by one to three rows and columns:
    the nearby shapes an experiment may use when turning an option off silences another."""
    n, c, h, w = problem.x_shape
    return [problem] + [dataclasses.replace(problem, x_shape=(n, c, h + dh, w + dw))
                        for dh in range(4) for dw in range(4) if dh or dw]


def without(problem: Problem, options: Iterable[str]) -> Problem | None:
    """``problem`` with ``options`` turned off, every other option it uses still in effect (on
    the same shape, else on a nearby one); None where the geometry does not allow it."""
    off = frozenset(options)
    for shape in _nearby(problem):
        try:  # padding as the pairs it resolved to, so that a new stride keeps the same pads
            out = dataclasses.replace(shape, padding=shape.params.padding)
            for option in sorted(off):
                out = OFF[option](out)
            _ = out.params.y_shape  # validates
            if not _keeps_the_rest(problem, out, off):
                continue
        except (ValueError, KeyError, TypeError):
            continue
        fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(Problem)}
        return Variant(**fields, origin_seed=problem.seed)
    return None


def _options(r: CaseResult) -> frozenset[str]:
    return frozenset(r.filed_under) - {r.op}


def experiment(result: CaseResult, case: Case, run: CaseRunner) -> Experiment:
    """Run ``case`` (which failed as ``result``) without each option it uses; what it needs."""
    options = sorted(_options(result))
    variants: dict[str, tuple[str, str]] = {}
    needed, unknown = [], []
    for option in options:
        variant = without(case.problem, [option])
        if variant is None:
            variants[option] = ("-", "not possible")
            unknown.append(option)
            continue
        other = Case(variant, case.op)
        status = run(other, result.device, result.dtype).status
        variants[option] = (other.name, status)
        if status == PASS:
            needed.append(option)
    blamed: tuple[str, ...]
    if needed:  # only what the evidence shows the failure needs
        blamed = tuple(needed)
    elif not options:
        blamed = (case.op,)
    else:
        plain = without(case.problem, options)
        plain_status = "-" if plain is None else run(Case(plain, case.op), result.device, result.dtype).status
        if plain is not None:
            variants["all options"] = (Case(plain, case.op).name, plain_status)
        blamed = (case.op,) if plain_status == FAIL and not unknown else tuple(options)
    return Experiment(result.case, result.op, result.device, result.dtype, blamed, variants)


def _size(case: Case) -> int:
    return int(np.prod(case.problem.x_shape)) + int(np.prod(case.problem.params.y_shape))


def experiments(results: Iterable[CaseResult], cases: Mapping[str, Case], run: CaseRunner,
                per_group: int = PER_GROUP) -> dict[tuple[str, str, str], Experiment]:
    """Experiments on the smallest ``per_group`` failing cases of each (device, dtype, op,
    options) group, keyed by (case, device, dtype); each other failing case of the group
    shares the blame of the group's first experiment."""
    failing = [r for r in results if r.status == FAIL]
    # an operation that fails with no option at all explains its cases (blame's rule): no experiment
    plain = {(r.device, r.dtype, r.op) for r in failing if not _options(r)}
    groups: dict[tuple, list[CaseResult]] = defaultdict(list)
    for r in failing:  # (not a crash or a hang: each variant would cost a fresh worker or a timeout)
        if r.case in cases and _options(r) and (r.device, r.dtype, r.op) not in plain and not r.died:
            groups[(r.device, r.dtype, r.op, _options(r))].append(r)
    out: dict[tuple[str, str, str], Experiment] = {}
    for rs in groups.values():
        rs.sort(key=lambda r: (_size(cases[r.case]), r.case))
        done = [experiment(r, cases[r.case], run) for r in rs[:per_group]]
        for r, e in zip(rs, done + [done[0]] * (len(rs) - len(done)), strict=True):
            out[(r.case, r.device, r.dtype)] = e if e.case == r.case else dataclasses.replace(
                e, case=r.case, variants={}, shared_from=e.case)
    return out
