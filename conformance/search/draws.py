"""The sweep's random problems: a fixed list drawn from (seed, convcert version, claims) alone.

A plain :class:`random.Random`, seeded by a string naming the seed, the convcert version, the
device, the dtype, the family and the claimed options, draws ``examples`` problems per
family; nothing else enters, neither the clock nor the implementation's answers, so the same
certification draws the same problems on any machine at any speed (:func:`digest` proves it).
The bounds are those of :mod:`conformance.search.strategies`, widened where real kernels break.

Each axis (height, width) of a problem is drawn as one of four *shapes*, independently:

- ``fill``: the (dilated) window exactly fills the padded input: one output row or column;
- ``one``: one output row or column, the stride often larger than the window or the input;
- ``two``: two outputs, the second window reaching the end of the padded input or not;
- ``general``: any size within the bounds.

So about two draws in three have an edge on some axis, and one in three or more has a single
output column whatever its rows. Strides are drawn larger than the window in one draw of three where
``stride`` is claimed; channel and batch counts are 1 in one draw of three, else 2 or a prime
(3, 5, 7); every claimed option (stride, dilation, groups, asymmetric padding, padding modes,
bias, ceil_mode, count_include_pad, pool dilation, exact inputs) is turned on independently
of the axis shapes, so edges are crossed with every option.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from conformance.catalogue.cases import Problem
from implementations.geometry import PADDING_MODES

from . import strategies

#: Batch and channel counts: 1, 2 and primes, 1 weighted up.
COUNTS = (1, 1, 1, 2, 3, 5, 7)
#: Axis shapes, drawn uniformly from this tuple per axis (see the module docstring).
AXIS_SHAPES = ("fill", "one", "two", "general", "general")
#: Largest input height or width of a ``general`` axis.
MAX_GENERAL_SIZE = strategies.MAX_SIZE + 4
#: Tries per problem before a draw that keeps giving invalid or unclaimed geometry gives up.
TRIES = 50


@cache
def version() -> str:
    """convcert's version: the draws change with it (installed metadata, else pyproject.toml)."""
    try:
        from importlib.metadata import version as installed

        return installed("convcert")
    except Exception:
        import tomllib

        path = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return str(tomllib.loads(path.read_text())["project"]["version"])


@dataclass(frozen=True)
class Draw:
    """One drawn problem and where it runs."""

    device: str
    dtype: str
    problem: Problem

    @property
    def name(self) -> str:
        return f"{self.device}/{self.dtype}/{self.problem.family}-{self.problem.descriptor}"


def digest(names: Iterable[str]) -> str:
    """sha256 of ``names``, one a line: equal digests, equal coverage."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\n")
    return h.hexdigest()


def rng_for(seed: int, device: str, dtype: str, family: str, allowed: frozenset[str]) -> random.Random:
    """The generator of one (device, dtype, family); string seeds hash with SHA-512, so they do
    not depend on the interpreter's hash randomisation."""
    key = f"convcert-sweep|{version()}|{seed}|{device}|{dtype}|{family}|{','.join(sorted(allowed))}"
    return random.Random(key)


def draw_problems(rng: random.Random, family: str, allowed: frozenset[str], count: int) -> list[Problem]:
    """``count`` distinct valid problems of ``family`` using only ``allowed`` options."""
    out: list[Problem] = []
    seen: set[str] = set()
    for _ in range(count):
        for _ in range(TRIES):
            problem = _one(rng, family, allowed)
            if problem is not None and problem.descriptor not in seen:
                seen.add(problem.descriptor)
                out.append(problem)
                break
    return out


def plan(families: Sequence[str], devices: Sequence[str], dtypes: Sequence[str], allowed: frozenset[str],
         examples: int, seed: int) -> list[Draw]:
    """Every problem the sweep runs, in order: ``examples`` per (device, dtype, family)."""
    return [Draw(device, dtype, problem) for device in devices for dtype in dtypes for family in families
            for problem in draw_problems(rng_for(seed, device, dtype, family, allowed), family, allowed,
                                         examples)]


# -- one problem --------------------------------------------------------------------------
def _axis(rng: random.Random, eff: int, stride: int) -> tuple[int, int, int]:
    """(size, pad_before, pad_after) of one axis for a window spanning ``eff`` pixels."""
    shape = rng.choice(AXIS_SHAPES)
    if shape == "general":
        padded = rng.randint(1, MAX_GENERAL_SIZE)
    else:
        outputs = 2 if shape == "two" else 1
        leftover = 0 if shape == "fill" else rng.randint(0, stride - 1)
        padded = eff + (outputs - 1) * stride + leftover
    padded = max(padded, eff)
    before, after = (0, 0) if rng.random() < 0.5 else (rng.randint(0, strategies.MAX_PAD),
                                                      rng.randint(0, strategies.MAX_PAD))
    if before + after >= padded:
        before = after = 0
    return padded - before - after, before, after


def _stride(rng: random.Random, eff: int, allowed: bool, default: int) -> int:
    if not allowed or rng.random() < 0.3:
        return default
    if rng.random() < 0.5:
        return rng.randint(eff + 1, eff + 3)  # larger than the window
    return rng.randint(1, strategies.MAX_STEP)


def _padding(rng: random.Random, pads: list[tuple[int, int]], allowed: frozenset[str]):
    if rng.random() < 0.2:
        return rng.choice(PADDING_MODES)
    if "asymmetric_padding" not in allowed:
        pads = [(a, a) for a, _ in pads]
    return tuple(pads) if any(map(any, pads)) else 0


def _one(rng: random.Random, family: str, allowed: frozenset[str]) -> Problem | None:
    mode = "exact" if rng.random() < 0.25 else "float"
    n, c = rng.choice(COUNTS), rng.choice(COUNTS)
    kernel = (rng.randint(1, strategies.MAX_KERNEL), rng.randint(1, strategies.MAX_KERNEL))
    dilation_option = "dilation" if family == "conv2d" else "pool_dilation"
    dilated = dilation_option in allowed and rng.random() < 0.4
    dilation = tuple(rng.randint(1, strategies.MAX_STEP) if dilated else 1 for _ in range(2))
    effs = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    stride = tuple(_stride(rng, eff, "stride" in allowed, 1 if family == "conv2d" else k)
                   for eff, k in zip(effs, kernel, strict=True))
    axes = [_axis(rng, eff, s) for eff, s in zip(effs, stride, strict=True)]
    padding = _padding(rng, [(a, b) for _, a, b in axes], allowed)
    x_shape = (n, c, axes[0][0], axes[1][0])
    if family == "conv2d":
        groups = rng.choice((2, 3)) if "groups" in allowed and rng.random() < 0.3 else 1
        k = rng.choice(COUNTS) * groups
        problem = Problem("conv2d", (n, c * groups, *x_shape[2:]), w_shape=(k, c, *kernel), stride=stride,
                          padding=padding, dilation=dilation, groups=groups, bias=rng.random() < 0.5,
                          mode=mode)
    else:
        problem = Problem(family, x_shape, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                          ceil_mode="ceil_mode" in allowed and rng.random() < 0.5,
                          count_include_pad=family == "avg_pool2d" and "count_include_pad" in allowed
                          and rng.random() < 0.5, mode=mode)
    try:
        if problem.options <= allowed:
            return problem
    except ValueError:  # invalid geometry (an empty output, a window wholly in the padding, ...)
        pass
    return None
