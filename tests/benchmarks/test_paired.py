"""Paired comparisons: per-turn ratios cancel the machine's drift; the report shows ratio and interval."""

import json

import numpy as np

from benchmarks import stats
from benchmarks.precision import paired
from reports import __main__ as cli


def _drifting(turns=20, speedup=1.1, seed=1):
    """A machine whose speed halves over the run; A is ``speedup`` times faster than B in every turn."""
    rng = np.random.default_rng(seed)
    slow = np.linspace(1.0, 2.0, turns) * rng.uniform(0.98, 1.02, turns)
    b = 0.010 * slow
    a = b / speedup * rng.uniform(0.99, 1.01, turns)
    return list(a), list(range(turns)), list(b), list(range(turns))


def test_per_turn_ratios_see_a_difference_that_drift_hides_from_the_medians():
    a, ta, b, tb = _drifting()
    ratio = paired.compare(a, ta, b, tb)
    assert ratio.direction == 1 and ratio.low <= 1.1 <= ratio.high and ratio.low > 1.05 and ratio.turns == 20
    ma, mb = stats.measurement_of(a), stats.measurement_of(b)
    assert not stats.separated(ma.ci_low_s, ma.ci_high_s, mb.ci_low_s, mb.ci_high_s)  # unpaired: no verdict


def test_equal_implementations_show_no_clear_difference_and_the_interval_is_reproducible():
    a, ta, b, tb = _drifting(speedup=1.0)
    first, again = paired.compare(a, ta, b, tb), paired.compare(a, ta, b, tb)
    assert first.direction == 0 and first == again
    assert paired.compare(b, tb, a, ta).direction == 0


def test_only_shared_turns_are_paired():
    ratios = paired.per_turn([1.0, 2.0, 4.0], [0, 1, 2], [3.0, 8.0], [1, 2])
    assert list(ratios) == [1.5, 2.0]
    assert paired.compare([1.0, 2.0], [0, 1], [3.0], [1]).direction == 0  # too few turns to decide


def test_the_report_gives_the_paired_speedup_with_its_interval(tmp_path, result_row, write_run):
    a, ta, b, tb = _drifting(turns=10)
    rows = [result_row("im2col", "w.conv", 0.01), result_row("torch", "w.conv", 0.01)]
    path = write_run(tmp_path / "r.json", "m", rows)
    doc = json.loads(path.read_text())
    for r, times, turns in ((doc["results"][0], b, tb), (doc["results"][1], a, ta)):
        r["host_time"]["times_s"], r["settings"]["turns"] = times, turns
    path.write_text(json.dumps(doc))
    assert cli.main(["--results", str(path), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "index.md").read_text()
    expected = paired.compare(a, ta, b, tb)
    cell = f"{expected.median:.3g}x [{expected.low:.3g}-{expected.high:.3g}]"
    assert cell in md


def _paired_run(path, write_run, result_row, speedup):
    a, ta, b, tb = _drifting(turns=10, speedup=speedup)
    write_run(path, "m", [result_row("im2col", "w.conv", 0.01), result_row("torch", "w.conv", 0.01)])
    doc = json.loads(path.read_text())
    for r, times, turns in ((doc["results"][0], b, tb), (doc["results"][1], a, ta)):
        r["host_time"]["times_s"], r["settings"]["turns"] = times, turns
    doc["wall_s"] = 12.0
    path.write_text(json.dumps(doc))
    return path


def test_agreement_counts_the_pairs_two_runs_rank_alike(tmp_path, result_row, write_run, capsys):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    a = _paired_run(tmp_path / "a" / "r.json", write_run, result_row, 1.2)
    b = _paired_run(tmp_path / "b" / "r.json", write_run, result_row, 1.3)
    c = _paired_run(tmp_path / "c" / "r.json", write_run, result_row, 1 / 1.2)
    assert cli.main(["agreement", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "agreement: 1 of the 1 pairs both runs decide rank alike (100.0%)" in out
    assert "wall 12 s" in out and "median_relative_iqr_pct" in out
    assert cli.main(["agreement", str(a), str(c)]) == 0
    assert "agreement: 0 of the 1 pairs both runs decide rank alike (0.0%)" in capsys.readouterr().out
