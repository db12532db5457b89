"""Interleaved, calibrated, paired samples: the implementations compared on one workload take turns.

Timing one implementation's rounds back to back and then the next one's lets a burst of
other processes' load (a compiler, a test run), or a drift of the machine's speed, land on
one of them only, and a ranking then reports the machine. Here the samples run in *turns*:
turn ``t`` times one sample of every contender that still has samples, back to back, the
order rotating from one turn to the next (A B C, B C A, C A B). The times of one turn are
taken within a few tens of milliseconds of each other, so the ratio of two contenders'
samples in the same turn cancels what the machine did meanwhile; :mod:`benchmarks.precision.paired`
turns these per-turn ratios into "A is x times faster than B" with an interval. Each
sample's turn is recorded (``turns``).

Calibrated samples (as ``timeit``'s autorange and ``torch.utils.benchmark``'s
``blocked_autorange``): a sample runs the call ``inner`` times back to back and counts their
mean, ``inner`` chosen so that a sample lasts at least :data:`MIN_SAMPLE_S`; the timer's
resolution and a single call's dispatch jitter then vanish for sub-millisecond calls.

A lead-in call before each sample of more than one call: the first call after another
implementation ran pays for caches that one evicted and for this one's pool threads waking
up; it is run untimed (a warm-up call), so the sample holds warm calls only. Measured on the
cpu profile's ResNet-50 and AlexNet rows (2-core AVX-512 VM, quiet, five implementations
taking turns): median relative IQR 9.1% and 9.8% without it, 5.7%, 7.0% and 7.5% with it.
A sample of one call (a call of at least ``MIN_SAMPLE_S``) has none: the cold start is small
beside such a call, and a lead-in would double its cost.

Warm-up until the samples settle: the turns are cut into up to :data:`BLOCKS` blocks, and a
cheap contender (``warmup``) opens each block with untimed samples until two consecutive ones
agree within :data:`SETTLE_TOLERANCE` (at most :data:`WARMUP_MAX_SAMPLES`): after another
framework ran, caches are cold and this one's thread pool asleep. Its first warm-up also
calibrates ``inner`` from the fastest of :data:`WARMUP_CALLS` single calls.

pytest-benchmark's ``pedantic`` times one callable's rounds back to back and cannot take
turns, so this loop is convcert's own; the statistics are in :mod:`benchmarks.stats`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The turns are cut into this many blocks; a cheap contender warms up at the start of each.
BLOCKS = 3
#: Single calls that calibrate a cheap contender's ``inner`` count at its first warm-up.
WARMUP_CALLS = 3
#: A sample lasts at least this long: ``inner`` calls back to back (CPU and host latency).
MIN_SAMPLE_S = 0.02
MAX_INNER = 100_000
#: Warm-up samples settle when two consecutive ones differ by at most this share; at most
#: WARMUP_MAX_SAMPLES warm-up samples open a block.
SETTLE_TOLERANCE = 0.05
WARMUP_MAX_SAMPLES = 5


@dataclass
class Contender:
    """One implementation's timed call on the workload, and what timing it gave."""

    name: str
    call: Callable[[], Any]
    rounds: int  # timed samples
    #: untimed samples at the start of each block until they settle (cheap calls: caches and
    #: pools warm again after another contender ran), and ``inner`` calibrated at the first
    warmup: bool = False
    #: calls per sample (recalibrated at the first warm-up of a ``warmup`` contender)
    inner: int = 1
    #: a sample lasts at least this long
    min_sample_s: float = MIN_SAMPLE_S
    #: seconds per call of each sample (the sample's time / ``inner``)
    times: list[float] = field(default_factory=list)
    #: the turn of each sample (samples of one turn were taken back to back)
    turns: list[int] = field(default_factory=list)
    #: seconds of the timed samples (``inner`` calls each)
    sampled_s: float = 0.0
    warmup_s: float = 0.0
    warmup_calls: int = 0
    #: the output of the last timed call (checked against the reference afterwards)
    last: Any = None
    #: what a call raised; the contender then has no more turns, the others go on
    error: Exception | None = None

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds={self.rounds} for {self.name}: must be >= 1")
        if self.inner < 1:
            raise ValueError(f"inner={self.inner} for {self.name}: must be >= 1")


def calls_per_sample(seconds_per_call: float, min_sample_s: float = MIN_SAMPLE_S) -> int:
    """Calls that make a sample last at least ``min_sample_s``."""
    return max(1, min(MAX_INNER, math.ceil(min_sample_s / max(seconds_per_call, 1e-9))))


def blocks_of(rounds: int, blocks: int = BLOCKS) -> list[int]:
    """``rounds`` cut into ``blocks`` blocks as even as can be, the larger ones first."""
    if rounds < 0 or blocks < 1:
        raise ValueError(f"rounds={rounds}, blocks={blocks}: need rounds >= 0 and blocks >= 1")
    base, extra = divmod(rounds, blocks)
    return [base + (i < extra) for i in range(blocks)]


def schedule(rounds: Sequence[int]) -> list[tuple[int, int]]:
    """The samples in the order they run: (turn, contender index).

    Turn ``t`` times one sample of every contender with more than ``t`` samples, starting
    with contender ``t mod n`` (the order rotates, so no contender is always first or last)."""
    n = len(rounds)
    return [(t, (t + k) % n) for t in range(max(rounds, default=0)) for k in range(n)
            if rounds[(t + k) % n] > t]


def block_starts(rounds: Sequence[int], blocks: int = BLOCKS) -> set[int]:
    """The turns that open a block (a cheap contender warms up before its sample there)."""
    cut = blocks_of(max(rounds, default=0), blocks)
    return {sum(cut[:b]) for b in range(blocks) if cut[b]}


def run(contenders: Sequence[Contender], *, blocks: int = BLOCKS,
        clock: Callable[[], float] = time.perf_counter) -> None:
    """Time every contender's samples in turns; fills ``times``, ``turns``, ``inner``,
    ``sampled_s``, ``warmup_s``, ``warmup_calls`` and ``last`` (``error`` for one whose call raised)."""
    rounds = [c.rounds for c in contenders]
    starts = block_starts(rounds, blocks)
    calibrated: set[int] = set()
    for turn, i in schedule(rounds):
        c = contenders[i]
        if c.error is not None:
            continue
        try:
            if c.warmup and turn in starts:
                _warm_up(c, clock, calibrate=i not in calibrated)
                calibrated.add(i)
            _sample(c, turn, clock)
        except Exception as exc:  # recorded on the contender; the others are still timed
            c.error, c.last = exc, None


def _sample(c: Contender, turn: int, clock: Callable[[], float]) -> float:
    """One timed sample: ``inner`` calls back to back; returns its seconds."""
    call = c.call
    c.last = None  # the previous output is freed before the next call
    if c.inner > 1:  # the lead-in call: untimed
        t0 = clock()
        call()
        c.warmup_s += clock() - t0
        c.warmup_calls += 1
    start = clock()
    for _ in range(c.inner - 1):
        call()
    c.last = call()
    took = clock() - start
    c.times.append(took / c.inner)
    c.turns.append(turn)
    c.sampled_s += took
    return took


def _warm_up(c: Contender, clock: Callable[[], float], calibrate: bool) -> None:
    start = clock()
    if calibrate:
        single = []
        for _ in range(WARMUP_CALLS):
            t0 = clock()
            c.last = None
            c.last = c.call()
            single.append(clock() - t0)
        c.warmup_calls += WARMUP_CALLS
        c.inner = calls_per_sample(min(single), c.min_sample_s)
    previous = math.nan
    for _ in range(WARMUP_MAX_SAMPLES):
        t0 = clock()
        for _ in range(c.inner):
            c.last = None
            c.last = c.call()
        took = clock() - t0
        c.warmup_calls += c.inner
        if abs(took - previous) <= SETTLE_TOLERANCE * max(took, previous):
            break
        previous = took
    c.warmup_s += clock() - start
