"""The random sweep every certification runs after the catalogue.

For each certified device and dtype and each operation family the implementation claims,
a seeded Hypothesis search (``hypothesis.find``, as ``explore`` uses) draws problems over
the claimed features only and stops at the first failure, which it shrinks to a minimal
problem. Half of the draws are *edge geometries*, where real implementations break: a
(dilated) window that fills or nearly fills the padded input, stride larger than the
kernel, 1-pixel outputs, and pooling windows that reach into the padding under
``ceil_mode``. The other half are the general problems of ``conformance.properties``.

The seed is recorded in the certificate and the same seed draws the same problems. A
shrunk failure enters the certificate as ordinary case results, so it is blamed like a
catalogue case; its name is a problem descriptor that :func:`problem_from_name` reads
back, so ``python -m conformance certify SPEC --case NAME`` reproduces it in one line.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import assume, find, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, FlakyFailure, NoSuchExample

from conformance.catalogue.cases import BACKWARD, FAMILIES, MODES, Case, Problem
from conformance.execution.executor import Claims
from conformance.judging.judge import run_case
from conformance.judging.result import FAIL, CaseResult
from implementations import Implementation
from implementations.contract import OPTIONS

from . import strategies

#: Examples per (device, dtype, family) by default: about 10 s for im2col on a 2-core CPU.
DEFAULT_EXAMPLES = 400
DEFAULT_SEED = 0
#: Wall-clock cap of one sweep in seconds: a slow implementation stops early (the
#: certificate records how many examples ran).
MAX_SECONDS = 30.0



# -- edge geometries -------------------------------------------------------------------
def _axis(draw, allow_dilation: bool) -> tuple[int, int, int, int, int]:
    """(size, kernel, dilation, pad_before, pad_after) where the window fills the padded
    extent or misses it by one pixel."""
    k = draw(st.integers(1, strategies.MAX_KERNEL))
    d = draw(st.integers(1, strategies.MAX_STEP)) if allow_dilation else 1
    before, after = draw(strategies.PADS), draw(strategies.PADS)
    size = (k - 1) * d + 1 + draw(st.integers(0, 1)) - before - after
    assume(size >= 1)
    return size, k, d, before, after


@st.composite
def edge_conv_problems(draw, allowed: frozenset[str] = frozenset(OPTIONS)) -> Problem:
    """Convolutions whose window (nearly) fills the padded input: 1-pixel or 2-pixel outputs,
    with strides up to twice the kernel."""
    (h, r, dh, top, bottom), (w, s, dw, left, right) = (_axis(draw, "dilation" in allowed) for _ in "hw")
    if "asymmetric_padding" not in allowed:
        assume(top == bottom and left == right)
    groups = draw(st.integers(1, strategies.MAX_GROUPS)) if "groups" in allowed else 1
    cg, kg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    stride = (draw(st.integers(1, 2 * r + 1)), draw(st.integers(1, 2 * s + 1))) if "stride" in allowed else 1
    return strategies.valid(Problem(
        "conv2d", (draw(st.integers(1, 2)), cg * groups, h, w), w_shape=(kg * groups, cg, r, s),
        stride=stride, padding=((top, bottom), (left, right)), dilation=(dh, dw), groups=groups,
        bias=draw(st.booleans()), mode=draw(st.sampled_from(MODES))))


@st.composite
def edge_pool_problems(draw, family: str, allowed: frozenset[str] = frozenset(OPTIONS)) -> Problem:
    """Poolings with ceil_mode windows reaching into (or past) the padding, or a window as
    large as the padded input, or a stride larger than the window."""
    kh, kw = draw(strategies.KERNELS), draw(strategies.KERNELS)
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if "pool_dilation" in allowed else (1, 1)
    eh, ew = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1  # the window's span
    pads = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    stride = (draw(st.integers(1, kh + 2)), draw(st.integers(1, kw + 2))) if "stride" in allowed else (kh, kw)
    h = draw(st.integers(max(1, eh - 2 * pads[0]), eh + 2 * stride[0]))
    w = draw(st.integers(max(1, ew - 2 * pads[1]), ew + 2 * stride[1]))
    return strategies.valid(Problem(
        family, (1, draw(st.integers(1, 2)), h, w), kernel=(kh, kw), stride=stride, padding=pads,
        dilation=dilation,
        ceil_mode="ceil_mode" in allowed and draw(st.booleans()),
        count_include_pad=family == "avg_pool2d" and "count_include_pad" in allowed and draw(st.booleans()),
        mode=draw(st.sampled_from(MODES))))


def strategy(family: str, allowed: frozenset[str]) -> st.SearchStrategy[Problem]:
    """Problems of ``family`` using only ``allowed`` options: half edge geometries, half general."""
    general = strategies.conv_problems() if family == "conv2d" else strategies.pool_problems(family)
    edge = edge_conv_problems(allowed) if family == "conv2d" else edge_pool_problems(family, allowed)
    return st.one_of(edge, general).filter(lambda p: p.options <= allowed)


# -- the sweep -------------------------------------------------------------------------
@dataclass
class Sweep:
    """What a sweep did: its seed and budget, the problems it drew, and each shrunk failure."""

    seed: int
    examples: int
    drawn: list[str] = field(default_factory=list)  # every problem tried, in order
    results: list[CaseResult] = field(default_factory=list)  # both cases of each shrunk failure
    cases: dict[str, Case] = field(default_factory=dict)
    seconds: float = 0.0
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        failures = [{"case": r.case, "device": r.device, "dtype": r.dtype, "repro": r.repro,
                     "message": next((c.message for c in r.checks if not c.passed), r.reason)}
                    for r in self.results if r.status == FAIL]
        return {"seed": self.seed, "examples_per_family": self.examples, "problems_tried": len(self.drawn),
                "seconds": round(self.seconds, 2), "stopped_early": self.stopped_early, "failures": failures}


class _OutOfTime(Exception):
    """The sweep's wall-clock cap is reached: stop drawing."""


#: Runs and judges one case on one (device, dtype): the certifier's worker, or ``run_case``.
CaseRunner = Callable[[Case, str, str], CaseResult]


def _families(impl: Claims) -> list[str]:
    return [f for f in FAMILIES if f in impl.features or BACKWARD[f] in impl.features]


def _run(impl: Claims, run: CaseRunner, problem: Problem, device: str, dtype: str) -> list[CaseResult]:
    return [run(case, device, dtype) for case in problem.cases() if case.op in impl.features]


def local_runner(impl: Implementation, spec: str | None = None) -> CaseRunner:
    """A :data:`CaseRunner` calling ``impl`` in this process."""
    return lambda case, device, dtype: run_case(impl, case, device, dtype, spec=spec)


def sweep(impl: Claims, devices: Sequence[str], dtypes: Sequence[str], run: CaseRunner | None = None, *,
          examples: int = DEFAULT_EXAMPLES, seed: int = DEFAULT_SEED, max_seconds: float = MAX_SECONDS,
          on_draw: Callable[[Problem], None] | None = None) -> Sweep:
    """Search every claimed family on every claimed (device, dtype) for a failure; shrink each.

    ``impl`` gives the claims (an implementation or the certifier's worker); ``run`` runs a
    case (default: ``impl`` called in this process, ``local_runner``). Deterministic for a given ``seed``
    (unless ``max_seconds`` cuts it short). A problem that fails once and passes when run
    again (a nondeterministic implementation) is kept as it failed.
    """
    if run is None:
        if not isinstance(impl, Implementation):
            raise ValueError(f"run=None: needs an Implementation to call in this process, got {impl!r}")
        run = local_runner(impl)
    out = Sweep(seed, examples)
    allowed = frozenset(impl.features) & frozenset(OPTIONS)
    deadline = time.perf_counter() + max_seconds
    plan = [(device, dtype, family) for device in devices if device in impl.devices
            for dtype in dtypes if dtype in impl.dtypes for family in _families(impl)]
    try:
        for device, dtype, family in plan:
            found = _search(impl, run, (device, dtype, family), allowed, out, deadline, on_draw)
            if found:
                problem, results = found
                out.results += results
                out.cases.update({c.name: c for c in problem.cases() if c.op in impl.features})
    except _OutOfTime:
        out.stopped_early = True
    out.seconds = max_seconds - (deadline - time.perf_counter())
    return out


def _search(impl: Claims, run: CaseRunner, where: tuple[str, str, str], allowed: frozenset[str],
            out: Sweep, deadline: float, on_draw: Callable[[Problem], None] | None,
            ) -> tuple[Problem, list[CaseResult]] | None:
    """The shrunk failing problem of one family on one (device, dtype) and its results, or None
    (``where``: device, dtype, family).

    When the time cap strikes while shrinking, the smallest failure seen so far is kept
    (``out.stopped_early`` says the sweep was cut short)."""
    device, dtype, family = where
    first: list[tuple[Problem, list[CaseResult]]] = []
    latest: list[tuple[Problem, list[CaseResult]]] = []  # Hypothesis tries smaller problems as it shrinks

    def fails(problem: Problem) -> bool:
        if time.perf_counter() > deadline:
            raise _OutOfTime
        out.drawn.append(f"{problem.family}-{problem.descriptor}")
        if on_draw:
            on_draw(problem)
        results = _run(impl, run, problem, device, dtype)
        failed = any(r.status == FAIL for r in results)
        if failed:
            latest[:] = [(problem, results)]
            if not first:
                first.append((problem, results))
        return failed

    config = settings(max_examples=out.examples, database=None, deadline=None, derandomize=False)
    rng = random.Random(f"{out.seed}-{device}-{dtype}-{family}")
    try:
        problem = find(strategy(family, allowed), fails, settings=config, random=rng)
    except NoSuchExample:
        return None
    except (Flaky, FlakyFailure):  # failed once, passed when run again: keep what failed, say so
        for r in first[0][1]:
            if r.status == FAIL:
                r.reason = "nondeterministic: failed once, passed when the sweep ran it again"
        return first[0]
    except _OutOfTime:
        if not latest:
            raise
        out.stopped_early = True
        return latest[0]
    return problem, _run(impl, run, problem, device, dtype)
