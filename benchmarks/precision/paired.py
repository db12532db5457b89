"""Paired comparisons: "A is x times faster than B" from samples taken back to back.

The harness times the implementations compared on a workload in turns, one sample of each
per turn (:mod:`benchmarks.interleave`), and records each sample's turn. The ratio of B's
sample to A's in the same turn cancels what the machine did at that moment (a burst of
other load, a drift of its speed over minutes), which a ratio of two medians taken minutes
apart cannot (the paired designs of Kalibera and Jones, "Rigorous benchmarking in reasonable
time"). "A is x times faster than B" is the median of the per-turn ratios, with a bootstrap
95% interval of that median (NumPy, a fixed seed, so a report is reproducible); there is a
clear difference only where the whole interval lies beyond 1 by more than :data:`MARGIN`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: A ratio whose interval reaches within this share of 1 is "no clear difference".
MARGIN = 0.02
CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
#: Fewer shared turns than this: no paired direction.
MIN_TURNS = 3


@dataclass(frozen=True)
class PairedRatio:
    """How many times faster A is than B (B's time / A's), over the turns both were timed in."""

    median: float
    low: float
    high: float
    turns: int

    @property
    def direction(self) -> int:
        """+1: A clearly faster; -1: B clearly faster; 0: no clear difference (within :data:`MARGIN`)."""
        if self.turns < MIN_TURNS:
            return 0
        if self.low > 1 + MARGIN:
            return 1
        if self.high < 1 / (1 + MARGIN):
            return -1
        return 0


def per_turn(a_times: Sequence[float], a_turns: Sequence[int], b_times: Sequence[float],
             b_turns: Sequence[int]) -> np.ndarray:
    """B's time / A's time in every turn both were timed in."""
    if len(a_times) != len(a_turns) or len(b_times) != len(b_turns):
        raise ValueError("times and turns must have the same length")
    b = dict(zip(b_turns, b_times, strict=True))
    return np.array([b[t] / x for t, x in zip(a_turns, a_times, strict=True) if t in b and x > 0])


def median_interval(ratios: np.ndarray, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                    seed: int = SEED) -> tuple[float, float, float]:
    """Median of ``ratios`` and the bootstrap percentile interval of that median."""
    data = np.asarray(ratios, dtype=np.float64)
    if data.size == 0:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(0, data.size, size=(resamples, data.size))], axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(np.median(data)), float(low), float(high)


def compare(a_times: Sequence[float], a_turns: Sequence[int], b_times: Sequence[float],
            b_turns: Sequence[int]) -> PairedRatio:
    """How many times faster A is than B, paired by turn."""
    ratios = per_turn(a_times, a_turns, b_times, b_turns)
    return PairedRatio(*median_interval(ratios), turns=int(ratios.size))
