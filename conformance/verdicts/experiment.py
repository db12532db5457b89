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

A variant that passes is evidence only when it ran on the case's data: inputs whose shape it
keeps keep their values (:class:`Variant`), so a variant that changes the shape of an input
the operation reads (``dy`` of a gradient whose output shape changes, the weights of an
ungrouped convolution, an input grown to keep another option in effect) and passes is *not
comparable* and no blame rests on it (it may have passed on luckier data). One that fails
still shows that the failure does not need the option, whatever its data. A variant that a
declared limit refuses is *limited*; when every variant is limited or not comparable the
experiment shows nothing about the options: a failure of rounding size stays with the
operation, another falls back to the catalogue's evidence
(:mod:`conformance.verdicts.blame`), and the experiment says why.

Rounding cannot fool it. A failure *of rounding size* (its worst error within
``ROUNDING_FACTOR`` times the bound, or fitting arithmetic at the dtype's lower precision at
its worst element, the diagnosis's rounding test) is data-dependent: its variant may pass
only because its data happen to round well. So an option is blamed for it only when, on
``INDEPENDENT_INPUTS`` fresh inputs, the failing case fails every time and its variant passes
every time; otherwise the failure stays with the operation, marked *not isolated*.

An operation that fails in a case using no option is wrong itself and explains every case
that uses it (:mod:`conformance.verdicts.blame`): its cases are not experimented on.
Experiments are costly (each variant is a call and a reference computed on the fly), so
only the smallest failing cases of each (device, dtype, operation, options) group are
experimented on (``PER_GROUP``); the rest of the group shares their blame.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.catalogue.cases import Case, Problem
from conformance.judging.judge import prepare
from conformance.judging.result import FAIL, LIMITED, NOT_CLAIMED, PASS, CaseResult
from implementations.geometry import PoolParams

#: Failing cases experimented on per (device, dtype, operation, options) group.
PER_GROUP = 2
#: A failure whose worst error is within this many bounds is of rounding size.
ROUNDING_FACTOR = 4.0
#: Fresh inputs on which a failure of rounding size must fail, and its variant pass, to blame an option.
INDEPENDENT_INPUTS = 3
#: The lower precision whose rounding a failure in each dtype may be (as the diagnosis tests).
LOWER_PRECISION = {"float32": "tf32", "float16": "float16", "bfloat16": "bfloat16"}
#: Variant statuses that mean a declared limit (or a missing claim) refused it.
BLOCKED = (LIMITED, NOT_CLAIMED)
NOT_COMPARABLE = "not comparable"
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
    #: why the blame is what it is where the variants could not decide ("" when they did)
    note: str = ""
    #: options whose variant still fails: the failure does not need them
    excluded: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "op": self.op, "device": self.device, "dtype": self.dtype,
                "blamed": "+".join(self.blamed), "excluded": list(self.excluded),
                "shared_from": self.shared_from, "note": self.note,
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


def comparable(case: Case, variant: Problem) -> bool:
    """The variant reads the case's data: every input ``case.op`` reads keeps its shape (and so
    its values): ``x``, the weights of a convolution, ``dy`` of a gradient."""
    problem = case.problem
    if variant.x_shape != problem.x_shape or variant.w_shape != problem.w_shape:
        return False
    return not case.op.endswith("_backward") or variant.params.y_shape == problem.params.y_shape


def of_rounding_size(result: CaseResult, case: Case) -> bool:
    """The failure is no larger than rounding: its worst error within ``ROUNDING_FACTOR`` bounds,
    or every failing output's worst element within the bound of arithmetic at the dtype's lower
    precision (``LOWER_PRECISION``). A crash, a wrong shape or a modified input is not rounding."""
    failed = [c for c in result.checks if not c.passed]
    if not failed or any(c.kind == "behaviour" for c in failed):
        return False
    if max(c.ratio for c in failed) <= ROUNDING_FACTOR:
        return True
    lower = LOWER_PRECISION.get(result.dtype)
    if lower is None or case.op == "max_pool2d":  # (a maximum is selected, never rounded)
        return False
    try:
        _, loose = prepare(case.problem, result.dtype, ((result.dtype, lower),))
        return all(abs(float(c.found) - float(c.expected)) <= float(loose[c.output].bound[c.index])
                   for c in failed)
    except (KeyError, IndexError, TypeError, ValueError):  # a check without a worst element to test
        return False


def _fresh(problem: Problem, i: int) -> Variant:
    """``problem`` on the ``i``-th fresh input drawn from its seed (the same for a case and its variant)."""
    seed = int.from_bytes(hashlib.sha256(f"{problem.seed}/{i}".encode()).digest()[:4], "little")
    fields = {f.name: getattr(problem, f.name) for f in dataclasses.fields(Problem)}
    return Variant(**fields, origin_seed=seed)


def isolated(case: Case, variant: Problem, result: CaseResult, run: CaseRunner) -> tuple[bool, str]:
    """Whether on ``INDEPENDENT_INPUTS`` fresh inputs the case fails every time and the variant
    passes every time (the same inputs for both where shapes allow); and what was seen."""
    for i in range(INDEPENDENT_INPUTS):  # (a variant draws from its case's seed: the same fresh inputs)
        failing = run(Case(_fresh(case.problem, i), case.op), result.device, result.dtype).status
        if failing != FAIL:
            return False, f"the case itself passed on fresh input {i + 1} of {INDEPENDENT_INPUTS}"
        passing = run(Case(_fresh(variant, i), case.op), result.device, result.dtype).status
        if passing != PASS:
            return False, f"the variant did not pass on fresh input {i + 1} of {INDEPENDENT_INPUTS}"
    return True, ""


def experiment(result: CaseResult, case: Case, run: CaseRunner) -> Experiment:
    """Run ``case`` (which failed as ``result``) without each option it uses; what it needs.
    ``blamed`` is empty where the variants show nothing (blame then falls back on the catalogue)."""
    options = sorted(_options(result))
    rounding = of_rounding_size(result, case)
    variants: dict[str, tuple[str, str]] = {}
    needed, unknown, limited, seen, impossible = [], [], [], [], []
    for option in options:
        variant = without(case.problem, [option])
        if variant is None:
            variants[option] = ("-", "not possible")
            unknown.append(option)
            impossible.append(option)
            continue
        other = Case(variant, case.op)
        ran = run(other, result.device, result.dtype)
        variants[option] = (other.name, ran.status)
        if ran.status in BLOCKED:
            limited.append(ran.reason)
            unknown.append(option)
        elif ran.status == PASS and not comparable(case, variant):
            # a pass on other data shows nothing (a failure there still shows the option is not needed)
            variants[option] = (other.name, f"pass, {NOT_COMPARABLE}")
            unknown.append(option)
        elif ran.status == PASS and rounding:
            shown, why = isolated(case, variant, result, run)
            if shown:
                needed.append(option)
            else:
                variants[option] = (other.name, f"pass, not isolated: {why}")
                seen.append(why)
        elif ran.status == PASS:
            needed.append(option)
    blamed: tuple[str, ...]
    note = ""
    if needed:  # only what the evidence shows the failure needs
        blamed = tuple(needed)
    elif not options:
        blamed = (case.op,)
    else:
        plain = without(case.problem, options)
        plain_status: str = "-" if plain is None else \
            run(Case(plain, case.op), result.device, result.dtype).status
        if plain is not None and plain_status == PASS and not comparable(case, plain):
            plain_status = f"pass, {NOT_COMPARABLE}"
        if plain is not None:
            variants["all options"] = (Case(plain, case.op).name, plain_status)
        if limited and len(limited) + len(impossible) == len(options):
            blamed = (case.op,)
            note = (f"every variant is refused by a declared limit ({limited[0]})"
                    + (" or not possible" if impossible else "") + ": nothing shows an option wrong")
        elif plain_status == FAIL:  # it fails with no option at all, whatever the data
            blamed = (case.op,)
        elif rounding:
            blamed = (case.op,)
            note = ("not isolated: a failure of rounding size that no option's variant separates on "
                    f"{INDEPENDENT_INPUTS} fresh inputs" + (f" ({seen[0]})" if seen else ""))
        elif plain_status == PASS and not unknown:
            blamed = tuple(options)
        elif impossible and len(impossible) == len(unknown):
            # the failure persists without every option that could be turned off: what is left
            blamed = tuple(impossible)
            left = "+".join(impossible)
            note = f"{left} cannot be turned off here" if len(impossible) == len(options) else \
                f"the failure persists without every other option; {left} cannot be turned off"
        else:
            blamed = ()
            note = "no comparable variant decides: blamed on the catalogue's evidence"
    excluded = tuple(o for o in options if variants[o][1] == FAIL)
    return Experiment(result.case, result.op, result.device, result.dtype, blamed, variants, note=note,
                      excluded=excluded)


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
