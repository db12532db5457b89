"""Interleaved rounds: the implementations compared on one workload take turns.

Timing one implementation's rounds back to back and then the next one's lets a burst of
other processes' load (a compiler, a test run) land on one of them only, and a ranking
then reports the burst. Here each contender's rounds are cut into up to :data:`BLOCKS`
blocks, and the blocks run in turns (block 1 of every contender, then block 2, ...),
the order of the contenders rotating from one turn to the next (A B C, B C A, C A B), so
that a burst, or a slow drift of the machine's speed, falls on all of them alike.

Each block of a cheap call (``warmup``) opens with untimed calls, at least
:data:`WARMUP_CALLS` of them and :data:`WARMUP_S` seconds' worth: after another framework
ran, caches are cold, this one's thread pool is asleep and the other's may still spin
(OpenBLAS spins about 0.1 s after a call). Measured on the cpu profile's small workloads
(2-core VM, 2026-12-07): the first timed call of a block took 1.18x the row's median after
one warm-up call and the calls kept getting faster through a block of six; waiting for the
process's threads to go idle between blocks made the medians 20% slower still (the pools
then had to wake). Three blocks, each opened by 3 calls and 50 ms, gave a median IQR of
14% of the median against 9% back to back (and 26% with five blocks, one warm-up call and
the wait): the price of taking turns. pytest-benchmark's ``pedantic`` times one callable's
rounds back to back and cannot take turns, so this loop is convcert's own; the statistics
are in :mod:`benchmarks.stats`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Each contender's rounds are cut into this many blocks (fewer when it has fewer rounds).
BLOCKS = 3
#: A block of a cheap call opens with at least this many untimed calls, for at least WARMUP_S.
WARMUP_CALLS = 3
WARMUP_S = 0.05


@dataclass
class Contender:
    """One implementation's timed call on the workload, and what timing it gave."""

    name: str
    call: Callable[[], Any]
    rounds: int
    #: untimed calls at the start of each block (cheap calls: caches and pools warm again
    #: after another contender ran; :data:`WARMUP_CALLS`, :data:`WARMUP_S`)
    warmup: bool = False
    times: list[float] = field(default_factory=list)
    warmup_s: float = 0.0
    warmup_calls: int = 0
    #: the output of the last timed call (checked against the reference afterwards)
    last: Any = None
    #: what a call raised; the contender then has no more turns, the others go on
    error: Exception | None = None

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds={self.rounds} for {self.name}: must be >= 1")


def blocks_of(rounds: int, blocks: int = BLOCKS) -> list[int]:
    """``rounds`` cut into ``blocks`` blocks as even as can be, the larger ones first."""
    if rounds < 0 or blocks < 1:
        raise ValueError(f"rounds={rounds}, blocks={blocks}: need rounds >= 0 and blocks >= 1")
    base, extra = divmod(rounds, blocks)
    return [base + (i < extra) for i in range(blocks)]


def schedule(rounds: Sequence[int], blocks: int = BLOCKS) -> list[tuple[int, int]]:
    """The turns: (contender index, rounds in this block), in the order they run.

    Turn ``t`` runs block ``t`` of every contender that still has rounds, starting with
    contender ``t mod n`` (the order rotates, so no contender is always first or last)."""
    n = len(rounds)
    cut = [blocks_of(r, blocks) for r in rounds]
    turns: list[tuple[int, int]] = []
    for t in range(blocks):
        for k in range(n):
            i = (t + k) % n
            if cut[i][t]:
                turns.append((i, cut[i][t]))
    return turns


def run(contenders: Sequence[Contender], *, blocks: int = BLOCKS,
        clock: Callable[[], float] = time.perf_counter) -> None:
    """Time every contender's rounds in interleaved blocks; fills ``times``, ``warmup_s``,
    ``warmup_calls`` and ``last`` (``error`` for one whose call raised)."""
    for i, count in schedule([c.rounds for c in contenders], blocks):
        c = contenders[i]
        if c.error is not None:
            continue
        try:
            _block(c, count, clock)
        except Exception as exc:  # recorded on the contender; the others are still timed
            c.error, c.last = exc, None


def _block(c: Contender, count: int, clock: Callable[[], float]) -> None:
    if c.warmup:
        calls, start = 0, clock()
        while calls < WARMUP_CALLS or clock() - start < WARMUP_S:
            c.last = None
            c.last = c.call()
            calls += 1
        c.warmup_s += clock() - start
        c.warmup_calls += calls
    for _ in range(count):
        c.last = None  # the previous output is freed before the next call
        start = clock()
        c.last = c.call()
        c.times.append(clock() - start)
