"""Hypothesis strategies: random valid problems, judged against the reference computed on the fly.

Size bounds are module constants so that a failing example shrinks to a small, readable
problem and every example runs in milliseconds. Tests run derandomized (the ``ci``
profile of ``tests/conftest.py``); ``HYPOTHESIS_PROFILE=explore`` explores freely.
"""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from conformance.catalogue.cases import MODES, Problem
from implementations.geometry import PADDING_MODES

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

SIZES = st.integers(1, MAX_SIZE)
KERNELS = st.integers(1, MAX_KERNEL)
STEPS = st.tuples(st.integers(1, MAX_STEP), st.integers(1, MAX_STEP))
PADS = st.integers(0, MAX_PAD)
#: Every padding form: a mode string, symmetric (ph, pw), or ((top, bottom), (left, right)).
paddings = st.one_of(
    st.sampled_from(PADDING_MODES),
    st.tuples(PADS, PADS),
    st.tuples(st.tuples(PADS, PADS), st.tuples(PADS, PADS)),
)


def valid(problem: Problem) -> Problem:
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
    x = (draw(st.integers(1, MAX_BATCH)), cg * groups, draw(SIZES), draw(SIZES))
    w = (kg * groups, cg, draw(KERNELS), draw(KERNELS))
    return valid(Problem("conv2d", x, w_shape=w, stride=draw(STEPS), padding=draw(paddings),
                          dilation=draw(STEPS), groups=groups, bias=draw(st.booleans()),
                          mode=draw(st.sampled_from(MODES))))


@st.composite
def pool_problems(draw, family: str | None = None) -> Problem:
    """Valid max or average pooling problems within the size bounds above."""
    fam = family or draw(st.sampled_from(("max_pool2d", "avg_pool2d")))
    x = (draw(st.integers(1, MAX_BATCH)), draw(st.integers(1, 2)), draw(SIZES), draw(SIZES))
    return valid(Problem(fam, x, kernel=(draw(KERNELS), draw(KERNELS)), stride=draw(STEPS),
                          padding=draw(paddings), ceil_mode=draw(st.booleans()),
                          count_include_pad=fam == "avg_pool2d" and draw(st.booleans()),
                          mode=draw(st.sampled_from(MODES))))
