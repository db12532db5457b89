import json

import pytest

from reports import __main__ as cli
from reports import compare, data


def test_two_machines_merge_into_one_comparison(tmp_path, result_row, write_run):
    a = write_run(tmp_path / "a.json", "laptop", [result_row("im2col", "w.conv", 0.010), result_row("naive", "w.conv", 1.0)])
    b = write_run(tmp_path / "b.json", "server", [result_row("im2col", "w.conv", 0.005)])
    bench = data.load([a, b])
    assert sorted(bench.results["machine"].unique()) == ["laptop", "server"]
    report = cli.build(bench, tmp_path, None)
    table = next(blk for blk in report.blocks if getattr(blk, "caption", "").startswith("cpu float32 forward: median"))
    assert table.header == ["workload", "im2col @ laptop", "im2col @ server", "naive @ laptop"]


def test_speedup_is_relative_to_the_baseline_on_the_same_machine(tmp_path, result_row, write_run):
    f = write_run(tmp_path / "a.json", "m", [result_row("im2col", "w.conv", 0.010), result_row("fast", "w.conv", 0.002),
                                             result_row("liar", "w.conv", 0.001, status="wrong")])
    res = compare.rank(compare.add_speedups(data.load([f]).results, "im2col")).set_index("impl")
    assert res.loc["fast", "speedup"] == pytest.approx(5.0)
    assert res.loc["fast", "rank"] == "best" and res.loc["im2col", "rank"] == "worst"
    assert res.loc["liar", "rank"] == "" and res.loc["liar", "speedup"] != res.loc["liar", "speedup"]  # NaN


@pytest.fixture
def pair(tmp_path, result_row, write_run):
    return lambda now_s: _pair(tmp_path, now_s, result_row, write_run)


def _pair(tmp_path, now_s, result_row, write_run):
    base = write_run(tmp_path / "base.json", "m", [result_row("im2col", "w.conv", 0.010)])
    (tmp_path / "now").mkdir()
    now = write_run(tmp_path / "now" / "now.json", "m", [result_row("im2col", "w.conv", now_s)])
    return base, now


def test_regression_beyond_threshold_exits_nonzero(tmp_path, capsys, pair):
    base, now = pair(0.015)
    args = ["--results", str(now), "--baseline", str(base), "--out", str(tmp_path / "out")]
    assert cli.main(args + ["--threshold", "20"]) == 1
    assert "+50.0% > 20%" in capsys.readouterr().err
    assert cli.main(args + ["--threshold", "60"]) == 0


def test_conformance_matrix_is_linked_when_present(tmp_path, pair):
    _, now = pair(0.01)
    out = tmp_path / "out"
    (out / "conformance").mkdir(parents=True)
    (out / "conformance" / "matrix.md").write_text("# matrix\n")
    assert cli.main(["--results", str(now), "--out", str(out)]) == 0
    assert "(conformance/matrix.md)" in (out / "index.md").read_text()


def test_missing_results_is_a_clear_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--results", str(tmp_path / "nope")])
    assert exc.value.code == 2


def test_a_results_folder_gives_the_newest_run_per_machine_and_profile(tmp_path, result_row, write_run):
    old = write_run(tmp_path / "old.json", "m", [result_row("im2col", "w.conv", 0.5)])
    new = write_run(tmp_path / "new.json", "m", [result_row("im2col", "w.conv", 0.1)])
    other = write_run(tmp_path / "other.json", "n", [result_row("im2col", "w.conv", 0.2)])
    for path, started in ((old, "2026-01-01T00:00:00"), (new, "2026-02-01T00:00:00"), (other, "2026-01-15T00:00:00")):
        doc = json.loads(path.read_text())
        doc["started"] = started
        path.write_text(json.dumps(doc))
    (tmp_path / "notes.json").write_text("{}")  # not a result file: ignored in a folder
    assert sorted(p.name for p in data.find_files([tmp_path])) == ["new.json", "other.json"]
