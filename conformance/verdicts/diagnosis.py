"""How a failed feature fails: a one-line diagnosis, where the pattern is recognisable.

Tied maxima, a flipped kernel, gradients averaged over the batch, the odd ``same``
pixel on the wrong side, max pooling padded with zeros, TF32 or float16 rounding,
results wrong only past a number of output pixels or channels (a lost partial tile), or
only for sums longer than some length (a lost reduction tail or split-K chunk), and a
window-fit check that refuses dilated windows that fit. A diagnosis names a mechanism only
when a check confirms it (the outputs match the alternative hypothesis, a probe shows it, or
the crash message says it); otherwise it describes the failing geometry. Recognisers run the
implementation again on the smallest failing case (or on a tiny probe) and compare the
outputs with the reference under the alternative hypotheses, computed by ``naive``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from conformance.catalogue.cases import Case, Problem
from conformance.judging.judge import prepare
from conformance.judging.references import compute, magnitudes, reduction_lengths
from conformance.judging.result import FAIL, PASS, CaseResult
from conformance.judging.tolerance import SIGNIFICAND_BITS, UNIT_ROUNDOFF
from implementations import naive
from implementations.geometry import ConvParams, PoolParams

from .blame import Blame

#: Smallest tile a "wrong only past element m" diagnosis names (below it, rounding noise).
MIN_TILE = 8

Outputs = dict[str, np.ndarray]
#: Runs one case on the implementation and returns its outputs as float64 NumPy arrays.
Runner = Callable[[Case, str, str], Outputs]


@dataclass(frozen=True)
class Evidence:
    """What a recogniser sees: the feature, its results, the smallest failing case and its outputs."""

    feature: str
    device: str
    dtype: str
    results: Sequence[CaseResult]  # every result on this (device, dtype) using the feature
    case: Case
    found: Outputs
    expected: Mapping[str, np.ndarray]
    bound: Mapping[str, np.ndarray]
    run: Runner
    reduced: tuple[tuple[str, str], ...]
    cases: Mapping[str, Case]  # case name -> Case, for every result


def _fits(found: np.ndarray, expected: np.ndarray, bound: np.ndarray) -> bool:
    return found.shape == expected.shape and bool(np.all(np.abs(found - expected) <= bound))


def _alternative(ev: Evidence, problem: Problem) -> Outputs:
    """Reference outputs of ``problem`` on the inputs the failing case used (rounded to its dtype)."""
    typed, _ = prepare(ev.case.problem, ev.dtype, ev.reduced)
    inputs = {k: None if v is None else v.astype(np.float64) for k, v in typed.items()}
    return compute(problem, inputs)


def _matches(ev: Evidence, alt: Outputs) -> bool:
    """The failing outputs equal ``alt`` (within the case's bound) where they differ from the reference."""
    wrong = [k for k in ev.found if not _fits(ev.found[k], ev.expected[k], ev.bound[k])]
    slack = {k: ev.bound[k] + 1e-12 * np.abs(alt[k]) for k in wrong}
    return bool(wrong) and all(_fits(ev.found[k], alt[k], slack[k]) for k in wrong)


def _kernel_flipped(ev: Evidence) -> str | None:
    if ev.case.problem.family != "conv2d" or ev.case.op != "conv2d":
        return None
    typed, _ = prepare(ev.case.problem, ev.dtype, ev.reduced)
    w = typed["w"].astype(np.float64)[:, :, ::-1, ::-1]
    b = None if typed.get("b") is None else typed["b"].astype(np.float64)
    params = ev.case.problem.params
    assert isinstance(params, ConvParams)
    alt = {"y": naive.conv2d(typed["x"].astype(np.float64), w, b, params)}
    return "kernel flipped: computes true convolution, not cross-correlation" if _matches(ev, alt) else None


def _batch_averaged(ev: Evidence) -> str | None:
    n = ev.case.problem.x_shape[0]
    if ev.case.op != "conv2d_backward" or n == 1:
        return None
    alt = {k: v / n if k in ("dw", "db") else v for k, v in ev.expected.items()}
    if not _matches(ev, alt):
        return None
    return f"gradients averaged over the batch (divided by N = {n}) instead of summed"


def _same_wrong_side(ev: Evidence) -> str | None:
    problem = ev.case.problem
    if problem.padding not in ("same", "same_lower"):
        return None
    other = "same_lower" if problem.padding == "same" else "same"
    flipped = dataclasses.replace(problem, padding=other)
    if flipped.params.y_shape != problem.params.y_shape or not _matches(ev, _alternative(ev, flipped)):
        return None
    right = "bottom/right" if problem.padding == "same" else "top/left"
    return f"the odd '{problem.padding}' padding pixel goes on the wrong side (it belongs {right})"


def _max_pool_zero_padding(ev: Evidence) -> str | None:
    problem = ev.case.problem
    if ev.case.op != "max_pool2d" or not any(map(any, problem.params.padding)):
        return None
    typed, _ = prepare(problem, ev.dtype, ev.reduced)
    p = problem.params
    assert isinstance(p, PoolParams)
    xp = naive._pad(typed["x"].astype(np.float64), p.padding, p.padded_extent, value=0.0)
    unpadded = dataclasses.replace(p, x_shape=xp.shape, padding=((0, 0), (0, 0)))
    y = naive.max_pool2d(xp, unpadded)[:, :, : p.out_hw[0], : p.out_hw[1]]
    return "max pooling pads with zeros instead of -inf" if _matches(ev, {"y": y}) else None


#: Where a window's gradient lands for the probe window [[0, 1], [1, 1]] (three tied maxima).
_TIE_RULES = {(0, 1, 0, 0): None, (0, 0, 0, 1): "the last of the", (0, 1, 1, 1): "every one of the",
              (0, 0, 1, 0): "the first in column-major order of the"}


def _ties(ev: Evidence) -> str | None:
    if ev.case.op != "max_pool2d_backward":
        return None
    probe = Case(Problem("max_pool2d", (1, 1, 2, 2), kernel=2), "max_pool2d_backward")
    tied = {"x": np.array([0.0, 1.0, 1.0, 1.0]).reshape(1, 1, 2, 2), "dy": np.ones((1, 1, 1, 1))}
    try:
        dx = ev.run(Case(_Pinned.of(probe.problem, tied), probe.op), ev.device, ev.dtype)["dx"].reshape(-1)
    except Exception:  # a crash here says nothing about ties
        return None
    key = tuple(int(v) for v in dx) if np.all(dx == np.round(dx)) else None
    if key == (0, 1, 0, 0):
        return None
    where = (_TIE_RULES.get(key) if key and len(key) == 4 else None) or f"{dx.tolist()} over the"
    return f"ties: the gradient of a window goes to {where} tied maxima, not to the first in row-major order"


class _Pinned(Problem):
    """A problem whose inputs are given rather than drawn (for probes)."""

    @classmethod
    def of(cls, problem: Problem, inputs: dict[str, np.ndarray]) -> _Pinned:
        fields = {f.name: getattr(problem, f.name) for f in dataclasses.fields(problem)}
        pinned = cls(**fields)
        object.__setattr__(pinned, "_given", {k: np.asarray(v, np.float64) for k, v in inputs.items()})
        return pinned

    def inputs(self) -> dict[str, np.ndarray | None]:
        return dict(self._given)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return other is self


def _precision(ev: Evidence) -> str | None:
    """Every error fits arithmetic at a lower precision, and no case failed that such arithmetic
    computes exactly (small integers whose sums fit its significand): rounding, not a wrong term."""
    lower = {"float32": "tf32", "float16": "float16", "bfloat16": "bfloat16"}.get(ev.dtype)
    if lower is None or any(k == ev.dtype for k, _ in ev.reduced) or ev.case.op == "max_pool2d":
        return None  # (a maximum is selected, never computed: no rounding can explain it)
    own = [c for r in ev.results if r.case == ev.case.name and r.status == FAIL for c in r.checks
           if not c.passed]
    if not own or any(c.kind == "behaviour" for c in own):
        return None  # a crash, a timeout, a wrong dtype or shape, a modified input: not arithmetic
    if all(_fits(ev.found[k], ev.expected[k], ev.bound[k]) for k in ev.found):
        return None  # the values it gave now are right: nothing for rounding to explain
    _, loose = prepare(ev.case.problem, ev.dtype, ((ev.dtype, lower),))
    if not all(_fits(ev.found[k], loose[k].expected, loose[k].bound) for k in ev.found):
        return None
    if any(_exact_at(r, ev, SIGNIFICAND_BITS[lower]) for r in ev.results if r.status == FAIL):
        return None
    name = "TF32 (or float16)" if ev.dtype == "float32" else ev.dtype
    exponent = int(np.log2(UNIT_ROUNDOFF[lower]))
    return (f"{name} rounding: every error fits arithmetic at unit roundoff 2^{exponent}; "
            f"declare reduced_precision = {{{ev.dtype!r}: {lower!r}}} if that is intended")


def _exact_at(r: CaseResult, ev: Evidence, bits: int) -> bool:
    """``r`` is an exact-mode case whose every failing output sums to at most 2**bits in magnitude."""
    case = ev.cases.get(r.case)
    if case is None or case.problem.mode != "exact":
        return False
    typed, _ = prepare(case.problem, ev.dtype, ev.reduced)
    rounded = {k: v.astype(np.float64) for k, v in typed.items() if v is not None}
    mags = magnitudes(case.problem, rounded)  # a missing bias reads as None
    wrong = [c.output for c in r.checks if not c.passed and c.output in mags]
    return bool(wrong) and all(mags[o].max(initial=0.0) <= 2.0**bits for o in wrong)


def _first_wrong(ev: Evidence, axis: str) -> str | None:
    """'wrong only past output pixel/channel m of T': a lost partial tile."""
    name = next((k for k in ev.found if not _fits(ev.found[k], ev.expected[k], ev.bound[k])), None)
    if name is None or ev.found[name].ndim != 4 or name not in ("y",):
        return None
    bad = np.abs(ev.found[name] - ev.expected[name]) > ev.bound[name]
    if axis == "pixel":  # (n, i, j) flattened, as a GEMM's columns
        flat = bad.transpose(1, 0, 2, 3).reshape(bad.shape[1], -1).any(axis=0)
        what = "output pixel (N*OH*OW order)"
    else:
        flat = bad.transpose(1, 0, 2, 3).reshape(bad.shape[1], -1).any(axis=1)
        what = "output channel"
    first = int(np.argmax(flat))
    if first < MIN_TILE or not flat[first:].all():  # a tile: everything past its start is wrong
        return None
    kind = "a lost or misread partial tile" if axis == "pixel" else "a channel tile reading the wrong weights"
    return f"wrong only from {what} {first} on (of {flat.size}), right before it: {kind}"


def _reduction_threshold(ev: Evidence) -> str | None:
    """'passes every sum up to L terms, fails from M': a lost reduction tail or split-K chunk."""
    lengths: dict[str, list[int]] = {PASS: [], FAIL: []}
    for r in ev.results:
        if r.status not in lengths or r.op != ev.case.op:
            continue
        if r.case not in ev.cases:
            continue
        problem = ev.cases[r.case].problem
        outputs = [c.output for c in r.checks if c.kind != "behaviour" and (r.status == PASS or not c.passed)]
        if outputs:
            lens = reduction_lengths(problem)
            lengths[r.status].append(max(lens[o] for o in outputs if o in lens))
    if not lengths[PASS] or not lengths[FAIL]:
        return None
    longest_pass, shortest_fail = max(lengths[PASS]), min(lengths[FAIL])
    if longest_pass >= shortest_fail or shortest_fail <= 64:
        return None
    return (f"wrong only for sums of more than {longest_pass} terms (fails from {shortest_fail}): "
            "a lost reduction tail or split-K chunk")


#: What a window-fit check says when it refuses a window (a message must match to name one).
WINDOW_FIT_MESSAGE = re.compile(
    r"does not fit|doesn't fit|(can ?not|can't|cannot) be (greater|larger|bigger) than|"
    r"(larger|greater|bigger) than (the )?(padded )?input|exceeds? (the )?(padded )?input", re.IGNORECASE)


def _window_fit(ev: Evidence) -> str | None:
    """Crashes where ``k * d`` exceeds the padded input though the dilated window fits. The
    mechanism (a window-fit check on ``k * d``) is named only when the crash message says so;
    otherwise the diagnosis describes the failing geometry and quotes the message."""
    crashes = [(r, c) for r in ev.results if r.status == FAIL for c in r.checks
               if c.output == "no crash" and not c.passed]
    if not crashes or ev.case.problem.family != "conv2d":
        return None
    p = ev.case.problem.params
    assert isinstance(p, ConvParams)
    padded = [n + a + z for n, (a, z) in zip(p.x_shape[2:], p.padding, strict=False)]
    if not any(k * d > n for k, d, n in zip(p.kernel, p.dilation, padded, strict=False)):
        return None
    own = [c.message for r, c in crashes if r.case == ev.case.name] or [c.message for _, c in crashes]
    if any(WINDOW_FIT_MESSAGE.search(m or "") for m in own):
        return ("crashes on dilated windows that fit: the window spans (k - 1) * d + 1 pixels, "
                "a window-fit check on k * d refuses it")
    said = next((m for m in own if m), "").strip().splitlines()
    quoted = f": {said[-1].split('no crash: ', 1)[-1][:160]}" if said else ""  # (without the case's label)
    return (f"crashes where k * d exceeds the padded input {padded[0]}x{padded[1]} though the dilated "
            f"window ((k - 1) * d + 1) fits (kernel {p.kernel[0]}x{p.kernel[1]}, dilation "
            f"{p.dilation[0]}x{p.dilation[1]}){quoted}")


#: Recognisers in the order they are tried; the first that recognises the failure speaks.
RECOGNISERS: tuple[Callable[[Evidence], str | None], ...] = (
    _window_fit, _ties, _kernel_flipped, _batch_averaged, _same_wrong_side, _max_pool_zero_padding,
    lambda ev: _first_wrong(ev, "pixel"), lambda ev: _first_wrong(ev, "channel"), _reduction_threshold,
    _precision,
)


def _size(case: Case) -> int:
    return int(np.prod(case.problem.x_shape)) + int(np.prod(case.problem.params.y_shape))


def diagnose(results: Sequence[CaseResult], attribution: Blame, cases: Mapping[str, Case], run: Runner,
             reduced: Mapping[str, str] | None = None) -> dict[tuple[str, str, str], str]:
    """One line per failed (feature, device, dtype) that a recogniser explains.

    ``cases`` maps a result's case name to its :class:`Case` (catalogue, scale and sweep);
    ``run`` reruns a case on the implementation (``conformance.verdicts.certify.outputs_runner``:
    through the executor).
    """
    red = tuple(sorted((reduced or {}).items()))
    out = {}
    for (device, dtype), features in attribution.failed.items():
        group = [r for r in results if r.device == device and r.dtype == dtype]
        for feature in sorted(features):
            blamed = [r for r in group
                      if r.status == FAIL and feature in attribution.of(r) and r.case in cases]
            if not blamed:
                continue
            smallest = min(blamed, key=lambda r: (_size(cases[r.case]), r.case))
            case = cases[smallest.case]
            line = _first_recognised(case, feature, device, dtype, group, run, red, cases)
            if line:
                out[(feature, device, dtype)] = line
    return out


def _first_recognised(case: Case, feature: str, device: str, dtype: str, group: Sequence[CaseResult],
                      run: Runner, reduced: tuple[tuple[str, str], ...],
                      cases: Mapping[str, Case]) -> str | None:
    _, expectations = prepare(case.problem, dtype, reduced)
    try:
        found = run(case, device, dtype)
    except Exception:
        found = {}
    uses = [r for r in group if feature in r.filed_under or feature == r.op]
    ev = Evidence(feature, device, dtype, uses, case, found,
                  {k: e.expected for k, e in expectations.items()},
                  {k: e.bound for k, e in expectations.items()}, run, reduced, cases)
    for recognise in RECOGNISERS:
        if not found and recognise is not _window_fit:
            continue
        try:
            line = recognise(ev)
        except Exception:  # a recogniser that cannot apply to this case says nothing
            line = None
        if line:
            return line
    return None
