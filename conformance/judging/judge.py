"""Run one case on one implementation, device and dtype, and judge it.

The suite builds the geometry, converts inputs at the boundary (``to_device`` /
``to_numpy``), calls the operation once, and checks: no crash, the output shape and
dtype, that the inputs are unchanged, and every output against the float64 reference
under its bound (``tolerance``). A case a declared ``Limit`` covers is not run ("limited",
with the limit's reason); ``Unsupported`` for any other case is an undeclared refusal, a
failure. The worker's "limited" is a claim, checked here: it counts only when a limit the
implementation declared when it was ready (its reason and fields) covers the case; otherwise
the case fails ("refused without a declared limit"). The call itself
(:func:`conformance.call.execute`) runs in this process or in the certifier's worker process
(``conformance.worker``), which judges nothing: :func:`begin` prepares a case, :func:`finish`
judges what the call gave.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from conformance.catalogue.cases import CATALOGUE, Case, Problem
from conformance.execution.call import execute, limit_record
from conformance.execution.executor import Claims
from conformance.execution.protocol import Outcome, ResourceRefused
from implementations import Implementation
from implementations.dtypes import numpy_dtype
from implementations.validation import CHECKS

from . import references
from .compare import behaviour, compare
from .result import FAIL, LIMITED, NOT_CLAIMED, PASS, TOO_LARGE, CaseResult, repro_command
from .tolerance import error_bound, exact_applies

#: Problems with golden data; any other problem (Hypothesis, a user's) is computed on the fly.
CATALOGUED = frozenset(CATALOGUE)


@dataclass(frozen=True)
class Expectation:
    """Reference, bound and comparison kind of one output of one problem in one dtype."""

    expected: np.ndarray
    bound: np.ndarray
    kind: str  # "exact" or "float"


@lru_cache(maxsize=4096)
def prepare(problem: Problem, dtype: str, reduced: tuple[tuple[str, str], ...] = ()) -> tuple[dict, dict]:
    """Inputs rounded to ``dtype`` and the :class:`Expectation` of every output.

    The reference is computed on the *rounded* inputs (golden data where rounding changed
    nothing, else the naive reference on the fly), so the bound covers only arithmetic.
    """
    reduced_map = dict(reduced)
    stored = references.golden(problem) if problem in CATALOGUED else None
    raw = stored[0] if stored else problem.inputs()
    typed = {k: (None if v is None else v.astype(numpy_dtype(dtype))) for k, v in raw.items()}
    rounded = {k: (None if v is None else v.astype(np.float64)) for k, v in typed.items()}
    unchanged = all(v is None or np.array_equal(v, np.asarray(raw[k])) for k, v in rounded.items())
    outputs = stored[1] if stored and unchanged else references.compute(problem, rounded)
    return typed, expectations(problem, dtype, outputs, references.magnitudes(problem, rounded), reduced_map)


def expectations(problem: Problem, dtype: str, outputs: dict[str, np.ndarray], mags: dict[str, np.ndarray],
                 reduced_map: dict[str, str]) -> dict[str, Expectation]:
    """The :class:`Expectation` of each of ``outputs`` (float64 references of ``problem``),
    given the magnitudes (``references.magnitudes``): the one bound model, used by the
    benchmarks' checks too."""
    lengths = references.reduction_lengths(problem)
    result = {}
    for name, ref in outputs.items():
        kind, extra, sums = "float", 0, mags[name]
        if problem.family == "avg_pool2d":
            extra = 2  # the division by the window count (or reciprocal and product)
            sums = mags[name] * np.prod(problem.params.kernel)
        if problem.family == "max_pool2d" and name == "y":
            kind = "exact"  # a selection: always bit for bit
        elif problem.mode == "exact" and not (problem.family == "avg_pool2d" and name == "dx"):
            # (average-pool dx sums the shares dy / count, which are not integers)
            kind = "exact" if exact_applies(dtype, sums, reduced_map) else "float"
        bound = error_bound(dtype, lengths[name], mags[name], ref, reduced_precision=reduced_map,
                            extra_roundings=extra, exact=kind == "exact")
        result[name] = Expectation(ref, bound, kind)
    return result


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def case_inputs(case: Case, typed: dict[str, np.ndarray | None]) -> dict[str, np.ndarray | None]:
    """The inputs ``case.op`` takes (``b`` may be None), checked against the params."""
    used = ("x", "w", "b") if case.op == "conv2d" else ("x", "w", "dy") if case.op == "conv2d_backward" \
        else ("x", "dy") if case.op.endswith("_backward") else ("x",)
    arrays = {k: typed.get(k) for k in used}
    CHECKS[case.op](*arrays.values(), case.problem.params)
    return arrays


@dataclass
class Pending:
    """A case about to run: its result so far and, when the implementation must be called,
    ``request`` (the arguments of ``execute`` after ``impl``)."""

    result: CaseResult
    case: Case
    request: tuple | None = None
    expectations: dict[str, Expectation] = field(default_factory=dict)
    pristine: dict[str, np.ndarray | None] = field(default_factory=dict)
    #: The limits the implementation declared (``call.limit_record``s): what "limited" may cite.
    limits: list[dict] = field(default_factory=list)


def declared_limits(impl: Claims) -> list[dict]:
    """The limits ``impl`` declared up front (a worker's ready message, or an implementation's own)."""
    return [lim if isinstance(lim, dict) else limit_record(lim) for lim in getattr(impl, "limits", ())]


def _declared(limits: list[dict], reason: str, request: tuple) -> bool:
    """True when one of ``limits`` gives ``reason`` and its fields cover the case of ``request``
    (a predicate, which only the worker can evaluate, is taken as the worker evaluated it)."""
    op, uses, _, device, dtype = request[:5]
    return any(lim.get("reason") == reason
               and (not lim.get("ops") or op in lim["ops"])
               and (not lim.get("features") or not set(lim["features"]).isdisjoint(uses))
               and (not lim.get("dtypes") or dtype in lim["dtypes"])
               and (not lim.get("devices") or device in lim["devices"]) for lim in limits)


def begin(impl: Claims, case: Case, device: str, dtype: str, *, spec: str | None = None,
          max_bytes: int | None = None) -> Pending:
    """Decide whether ``case`` runs on ``impl`` and prepare its inputs and expectations
    (none for a problem whose memory estimate exceeds ``max_bytes``: it is "too large")."""
    spec = spec or impl.name
    result = CaseResult(case.name, case.op, device, dtype, NOT_CLAIMED, tuple(sorted(case.filed_under)),
                        case.problem.mode, repro=repro_command(spec, case.name, device, dtype))
    missing = sorted(case.requires - impl.features)
    if device not in impl.devices or dtype not in impl.dtypes or missing:
        reason = f"needs {', '.join(missing)}" if missing else f"{device}/{dtype} not claimed"
        return Pending(replace(result, reason=reason), case)
    needs = case.problem.memory_estimate()
    if max_bytes is not None and needs > max_bytes:
        return Pending(replace(result, status=TOO_LARGE, reason=(
            f"needs about {needs / 2**30:.1f} GiB, above the limit of {max_bytes / 2**30:.1f} GiB "
            "(--max-memory)")), case)
    typed, expectations = prepare(case.problem, dtype, tuple(sorted(impl.reduced_precision.items())))
    pristine = case_inputs(case, typed)
    request = (case.op, case.requires, case.problem.params, device, dtype, pristine)
    return Pending(result, case, request, expectations, pristine, declared_limits(impl))


def finish(pending: Pending, outcome: Outcome | None) -> CaseResult:
    """Judge the ``outcome`` of a pending case (None: it did not need a call)."""
    if outcome is None:
        return pending.result
    result = replace(pending.result, seconds=outcome.seconds)
    if outcome.kind == "refused":  # the machine, not the implementation: no verdict at all
        raise ResourceRefused(f"could not run {result.label}: {outcome.message}")
    if outcome.kind == "limited" and pending.request is not None \
            and _declared(pending.limits, outcome.message, pending.request):
        return replace(result, status=LIMITED, reason=outcome.message)
    if outcome.kind == "limited":
        message = f"refused without a declared limit: {outcome.message}"
        return replace(result, status=FAIL, reason=message,
                       checks=[behaviour(result.label, "refuses only declared limits", False, message)])
    if outcome.kind != "ok":
        refused = outcome.kind == "unsupported"
        message = f"undeclared refusal: {outcome.message}" if refused else outcome.message
        rule = "refuses only declared limits" if refused else "no crash"
        return replace(result, status=FAIL, reason=message, died=outcome.kind == "died",
                       checks=[behaviour(result.label, rule, False, message)])
    return judge(result, pending.case, pending.expectations, outcome, pending.pristine)


def run_case(impl: Implementation, case: Case, device: str, dtype: str, *,
             spec: str | None = None) -> CaseResult:
    """Run ``case`` on ``impl`` in this process and judge it (see the module docstring)."""
    pending = begin(impl, case, device, dtype, spec=spec)
    return finish(pending, None if pending.request is None else execute(impl, *pending.request))


def judge(result: CaseResult, case: Case, expectations: dict[str, Expectation], outcome: Outcome,
          pristine: dict[str, np.ndarray | None]) -> CaseResult:
    """``result`` with the checks of the outputs (count, dtype, values) and of untouched inputs,
    and the status they give."""
    checks, dtype = list(result.checks), result.dtype
    if len(outcome.found) != len(case.outputs):
        checks.append(behaviour(result.label, "outputs", False,
                                f"returned {len(outcome.found)} arrays, expected {len(case.outputs)}"))
    for name, value in zip(case.outputs, outcome.found, strict=False):  # a count mismatch is checked above
        exp = expectations[name]
        got = np.dtype(value.dtype).name
        checks.append(behaviour(result.label, f"{name} dtype", got == dtype, f"{got}, expected {dtype}",
                                found=got, expected=dtype))
        found = value.astype(np.float64) if value.dtype != object else value
        checks.append(compare(result.label, name, found,
                              exp.expected, exp.bound, kind=exp.kind))
    for k, v in outcome.after.items():
        before = pristine[k]
        unmodified = before is not None and _same_bits(v, before)
        checks.append(behaviour(result.label, f"{k} unmodified", unmodified,
                                "the implementation wrote into its input"))
    return replace(result, checks=checks, status=PASS if all(c.passed for c in checks) else FAIL)
