"""Statistics of one benchmark's round times, kept apart from timing and rendering.

Modelled on ``torch.utils.benchmark.Measurement``: the median is the headline number,
the interquartile range (IQR) its spread, and a measurement whose IQR is more than
:data:`NOISE_THRESHOLD` of its median carries a noise warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: IQR / median above which a measurement is flagged noisy (torch.utils.benchmark uses 10%).
NOISE_THRESHOLD = 0.10


@dataclass(frozen=True)
class Measurement:
    """Summary of the steady-state round times (seconds) of one benchmark."""

    median_s: float
    iqr_s: float
    min_s: float
    mean_s: float
    rounds: int

    @property
    def relative_iqr(self) -> float:
        return self.iqr_s / self.median_s if self.median_s > 0 else float("inf")

    @property
    def noisy(self) -> bool:
        return self.relative_iqr > NOISE_THRESHOLD

    def as_dict(self) -> dict:
        return {**asdict(self), "relative_iqr": self.relative_iqr, "noisy": self.noisy}


def summarize(times: Sequence[float]) -> Measurement:
    """Median, IQR (25th to 75th percentile, linear interpolation), min, mean of ``times``."""
    data = np.asarray(times, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError(f"times: must be a non-empty sequence of seconds, got {len(data)} values")
    if not np.all(np.isfinite(data)) or np.any(data < 0):
        raise ValueError(f"times={list(data)}: every time must be finite and >= 0")
    q1, median, q3 = np.percentile(data, [25, 50, 75])
    return Measurement(float(median), float(q3 - q1), float(data.min()), float(data.mean()), int(data.size))


def gflops(flops: float, seconds: float) -> float:
    """Throughput in GFLOP/s (NaN for a non-positive time)."""
    return flops / seconds / 1e9 if seconds > 0 else float("nan")


def arithmetic_intensity(flops: float, bytes_moved: float) -> float:
    """FLOPs per byte of compulsory traffic: the x axis of a roofline."""
    return flops / bytes_moved if bytes_moved > 0 else float("nan")
