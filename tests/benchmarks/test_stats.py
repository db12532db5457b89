import math

import numpy as np
import pytest

from benchmarks import stats


def test_summarize_gives_median_and_interquartile_range():
    m = stats.measurement_of([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (m.median_s, m.iqr_s, m.min_s, m.rounds) == (3.0, 2.0, 1.0, 5)


def test_spread_above_ten_percent_of_median_is_flagged_noisy():
    assert stats.measurement_of([1.0, 2.0, 3.0, 4.0, 5.0]).noisy
    assert not stats.measurement_of([1.00, 1.01, 1.02, 1.01, 1.00]).noisy


@pytest.mark.parametrize("times", [[], [1.0, float("nan")], [-1.0], [0.0]])
def test_summarize_rejects_bad_times_naming_the_argument(times):
    with pytest.raises(ValueError, match="times"):
        stats.measurement_of(times)


def test_gflops_and_intensity():
    assert stats.gflops(2e9, 0.5) == 4.0
    assert math.isnan(stats.gflops(1.0, 0.0))
    assert stats.arithmetic_intensity(100, 25) == 4.0


@pytest.mark.parametrize("n", [5, 9, 15, 29])
def test_median_interval_is_the_bootstrap_percentile_interval(n):
    """Odd n: the exact interval equals a many-resample bootstrap's 2.5/97.5 percentiles."""
    rng = np.random.default_rng(n)
    times = rng.lognormal(-4, 0.3, n)
    medians = np.median(times[rng.integers(0, n, (40_000, n))], axis=1)
    low, high = stats.median_interval(times)
    mc_low, mc_high = np.percentile(medians, [2.5, 97.5], method="inverted_cdf")
    assert (low, high) == (mc_low, mc_high)


def test_even_counts_get_an_interval_at_least_as_wide_as_the_bootstrap():
    rng = np.random.default_rng(0)
    times = rng.lognormal(-4, 0.3, 10)
    medians = np.median(times[rng.integers(0, 10, (40_000, 10))], axis=1)
    low, high = stats.median_interval(times)
    mc_low, mc_high = np.percentile(medians, [2.5, 97.5])
    assert low <= mc_low and high >= mc_high and low <= np.median(times) <= high


def test_overlapping_intervals_are_not_separated_and_disjoint_ones_are():
    a = stats.measurement_of([1.0, 1.1, 1.2, 1.3, 1.4])
    b = stats.measurement_of([1.35, 1.5, 1.6, 1.7, 1.8])
    c = stats.measurement_of([2.0, 2.1, 2.2, 2.3, 2.4])
    assert not stats.separated(a.ci_low_s, a.ci_high_s, b.ci_low_s, b.ci_high_s)
    assert stats.separated(a.ci_low_s, a.ci_high_s, c.ci_low_s, c.ci_high_s)
    assert not stats.separated(float("nan"), float("nan"), c.ci_low_s, c.ci_high_s)
