import math

import pytest

from benchmarks import stats


def test_summarize_gives_median_and_interquartile_range():
    m = stats.summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (m.median_s, m.iqr_s, m.min_s, m.rounds) == (3.0, 2.0, 1.0, 5)


def test_spread_above_ten_percent_of_median_is_flagged_noisy():
    assert stats.summarize([1.0, 2.0, 3.0, 4.0, 5.0]).noisy
    assert not stats.summarize([1.00, 1.01, 1.02, 1.01, 1.00]).noisy


@pytest.mark.parametrize("times", [[], [1.0, float("nan")], [-1.0]])
def test_summarize_rejects_bad_times_naming_the_argument(times):
    with pytest.raises(ValueError, match="times"):
        stats.summarize(times)


def test_gflops_and_intensity():
    assert stats.gflops(2e9, 0.5) == 4.0
    assert math.isnan(stats.gflops(1.0, 0.0))
    assert stats.arithmetic_intensity(100, 25) == 4.0
