"""Statistics of one benchmark's round times, kept apart from timing and rendering.

Modelled on ``torch.utils.benchmark.Measurement``: the median is the headline number,
the interquartile range (IQR) its spread, and a measurement whose IQR is more than
:data:`NOISE_THRESHOLD` of its median carries a noise warning.

Comparisons use a confidence interval of the median (:func:`median_interval`), as pyperf
and asv decide "not significant": two medians differ only where their intervals do not
overlap (:func:`separated`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np

#: IQR / median above which a measurement is flagged noisy (torch.utils.benchmark uses 10%).
NOISE_THRESHOLD = 0.10
#: Coverage of the median's confidence interval.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Measurement:
    """Summary of the steady-state round times (seconds) of one benchmark."""

    median_s: float
    iqr_s: float
    min_s: float
    mean_s: float
    rounds: int
    #: Bootstrap confidence interval of the median (:func:`median_interval`); NaN when unknown
    #: (files that kept only a summary).
    ci_low_s: float = math.nan
    ci_high_s: float = math.nan

    @property
    def relative_iqr(self) -> float:
        return self.iqr_s / self.median_s if self.median_s > 0 else float("inf")

    @property
    def noisy(self) -> bool:
        return self.relative_iqr > NOISE_THRESHOLD

    def as_dict(self) -> dict:
        return {**asdict(self), "relative_iqr": self.relative_iqr, "noisy": self.noisy}


def measurement_of(times: Sequence[float]) -> Measurement:
    """Median, IQR (25th to 75th percentile, linear interpolation), min, mean of ``times``,
    and the median's confidence interval."""
    data = np.asarray(times, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError(f"times: must be a non-empty sequence of seconds, got {len(data)} values")
    if not np.all(np.isfinite(data)) or np.any(data <= 0):
        raise ValueError(f"times={list(data)}: every time must be finite and > 0")
    q1, median, q3 = np.percentile(data, [25, 50, 75])
    low, high = median_interval(data)
    return Measurement(float(median), float(q3 - q1), float(data.min()), float(data.mean()), int(data.size),
                       low, high)


@cache
def _interval_ranks(n: int, confidence: float) -> tuple[int, int]:
    """0-based order statistics bounding the bootstrap percentile interval of the median of ``n``.

    A bootstrap resample's median is at most the k-th smallest value x_(k) exactly when at
    least m of the n resampled values are (m = the median's rank), and the count of
    resampled values <= x_(k) is Binomial(n, k/n). So the bootstrap distribution of the
    median is known exactly (no random resampling, no Monte Carlo noise), and its
    (1 - confidence)/2 and (1 + confidence)/2 quantiles are order statistics. For even n
    the median averages ranks n/2 and n/2 + 1: the lower bound comes from the lower rank,
    the upper bound from the upper rank (slightly conservative).
    """
    tail = (1 - confidence) / 2
    j = np.arange(n + 1)
    log_choose = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in j])

    def at_least(m: int, p: float) -> float:
        """P(Binomial(n, p) >= m)."""
        if p >= 1.0:
            return 1.0
        terms = log_choose[m:] + j[m:] * math.log(p) + (n - j[m:]) * math.log1p(-p)
        return float(np.exp(terms).sum())

    def quantile(m: int, q: float) -> int:
        at_most = np.array([at_least(m, k / n) for k in range(1, n + 1)])  # P(resampled median <= x_(k))
        return int(np.argmax(at_most >= q - 1e-12))

    m_low, m_high = (n + 1) // 2, n // 2 + 1
    return quantile(m_low, tail), quantile(m_high, 1 - tail)


def median_interval(times: Sequence[float] | np.ndarray,
                    confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Bootstrap percentile confidence interval of the median of ``times`` (exact, see
    :func:`_interval_ranks`). With one or two values it spans them all."""
    data = np.sort(np.asarray(times, dtype=np.float64))
    lo, hi = _interval_ranks(int(data.size), confidence)
    return float(data[lo]), float(data[hi])


def measurement_columns(times: Sequence[Sequence[float]]) -> dict[str, np.ndarray]:
    """:func:`measurement_of` of many series at once (vectorised per series length): arrays of
    ``median_s``, ``iqr_s``, ``min_s``, ``mean_s``, ``rounds``, ``ci_low_s``, ``ci_high_s``.
    The times must already be valid (as :class:`benchmarks.records.Timing` ensures); an
    empty series gives NaN."""
    count = len(times)
    keys = ("median_s", "iqr_s", "min_s", "mean_s", "ci_low_s", "ci_high_s")
    out = {k: np.full(count, np.nan) for k in keys}
    lengths = np.fromiter((len(t) for t in times), dtype=np.int64, count=count)
    out["rounds"] = lengths.astype(np.float64)
    for n in np.unique(lengths):
        if n == 0:
            continue
        rows = np.flatnonzero(lengths == n)
        data = np.sort(np.array([times[int(i)] for i in rows], dtype=np.float64), axis=1)
        q1, median, q3 = np.percentile(data, [25, 50, 75], axis=1)
        lo, hi = _interval_ranks(int(n), CONFIDENCE)
        for key, values in (("median_s", median), ("iqr_s", q3 - q1), ("min_s", data[:, 0]),
                            ("mean_s", data.mean(axis=1)), ("ci_low_s", data[:, lo]),
                            ("ci_high_s", data[:, hi])):
            out[key][rows] = values
    return out


def separated(a_low: float, a_high: float, b_low: float, b_high: float) -> bool:
    """Do two intervals not overlap? (NaN bounds: unknown, so not separated.)"""
    return bool(a_high < b_low or b_high < a_low)


def gflops(flops: float, seconds: float) -> float:
    """Throughput in GFLOP/s (NaN for a non-positive time)."""
    return flops / seconds / 1e9 if seconds > 0 else float("nan")


def arithmetic_intensity(flops: float, bytes_moved: float) -> float:
    """FLOPs per byte of compulsory traffic: the x axis of a roofline."""
    return flops / bytes_moved if bytes_moved > 0 else float("nan")
