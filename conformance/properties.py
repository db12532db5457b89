"""Hypothesis strategies: random valid problems, judged against the reference computed on the fly.

Size bounds are module constants so that a failing example shrinks to a small, readable
problem and every example runs in milliseconds. Tests run derandomized (the ``ci``
profile of ``tests/conftest.py``); ``HYPOTHESIS_PROFILE=explore`` explores freely.
"""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from implementations import Implementation
from implementations.geometry import PADDING_MODES

from .cases import MODES, Problem
from .runner import CaseResult, run_case

#: Batch size 1..MAX_BATCH.
MAX_BATCH = 2
#: Channels per group (input and output) 1..MAX_GROUP_CHANNELS, groups 1..MAX_GROUPS.
MAX_GROUP_CHANNELS = 2
MAX_GROUPS = 3
#: Input height and width 1..MAX_SIZE.
MAX_SIZE = 8
#: Kernel (and pooling window) height and width 1..MAX_KERNEL.
MAX_KERNEL = 4
#: Stride and dilation 1..MAX_STEP.
MAX_STEP = 3
#: Explicit padding per side 0..MAX_PAD.
MAX_PAD = 2

_sizes = st.integers(1, MAX_SIZE)
_kernels = st.integers(1, MAX_KERNEL)
_steps = st.tuples(st.integers(1, MAX_STEP), st.integers(1, MAX_STEP))
_pads = st.integers(0, MAX_PAD)
#: Every padding form: a mode string, symmetric (ph, pw), or ((top, bottom), (left, right)).
paddings = st.one_of(
    st.sampled_from(PADDING_MODES),
    st.tuples(_pads, _pads),
    st.tuples(st.tuples(_pads, _pads), st.tuples(_pads, _pads)),
)


def _valid(problem: Problem) -> Problem:
    try:
        _ = problem.params  # resolving the geometry validates it
    except ValueError:
        assume(False)
    return problem


@st.composite
def conv_problems(draw) -> Problem:
    """Valid convolution problems within the size bounds above."""
    groups = draw(st.integers(1, MAX_GROUPS))
    cg, kg = draw(st.integers(1, MAX_GROUP_CHANNELS)), draw(st.integers(1, MAX_GROUP_CHANNELS))
    x = (draw(st.integers(1, MAX_BATCH)), cg * groups, draw(_sizes), draw(_sizes))
    w = (kg * groups, cg, draw(_kernels), draw(_kernels))
    return _valid(Problem("conv2d", x, w_shape=w, stride=draw(_steps), padding=draw(paddings),
                          dilation=draw(_steps), groups=groups, bias=draw(st.booleans()),
                          mode=draw(st.sampled_from(MODES))))


@st.composite
def pool_problems(draw, family: str | None = None) -> Problem:
    """Valid max or average pooling problems within the size bounds above."""
    fam = family or draw(st.sampled_from(("max_pool2d", "avg_pool2d")))
    x = (draw(st.integers(1, MAX_BATCH)), draw(st.integers(1, 2)), draw(_sizes), draw(_sizes))
    return _valid(Problem(fam, x, kernel=(draw(_kernels), draw(_kernels)), stride=draw(_steps),
                          padding=draw(paddings), ceil_mode=draw(st.booleans()),
                          count_include_pad=fam == "avg_pool2d" and draw(st.booleans()),
                          mode=draw(st.sampled_from(MODES))))


def check_problem(impl: Implementation, problem: Problem, dtype: str = "float64",
                  device: str = "cpu") -> list[CaseResult]:
    """Forward and backward results of ``impl`` on ``problem`` (reference on the fly)."""
    return [run_case(impl, case, device, dtype) for case in problem.cases()]


def failures(impl: Implementation, problem: Problem, dtype: str = "float64") -> list[str]:
    """Messages of every failed check (empty when the problem passes or is not claimed)."""
    return [c.message for r in check_problem(impl, problem, dtype) for c in r.checks if not c.passed]


def explore(impl: Implementation, dtype: str = "float32", max_examples: int = 500,
            seed: int | None = None) -> list[tuple[Problem, list[str]]]:
    """Search random problems for a failure of ``impl``; each found one shrinks to a minimal problem.

    One search per family (convolution, max pooling, average pooling); returns
    ``(minimal problem, failure messages)`` for every family that fails. ``seed=None``
    explores freely; an int makes the search reproducible.
    """
    from hypothesis import find, settings
    from hypothesis.errors import NoSuchExample

    strategies = [conv_problems(), pool_problems("max_pool2d"), pool_problems("avg_pool2d")]
    found = []
    for strategy in strategies:
        config = settings(max_examples=max_examples, database=None, derandomize=seed is not None,
                          deadline=None)
        try:
            problem = find(strategy, lambda p: bool(failures(impl, p, dtype)), settings=config,
                           random=None if seed is None else __import__("random").Random(seed))
        except NoSuchExample:
            continue
        found.append((problem, failures(impl, problem, dtype)))
    return found
