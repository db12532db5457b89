import json
from dataclasses import replace

import numpy as np
import pytest

from reports import __main__ as cli
from reports import data, ranking, render


def test_two_machines_merge_into_one_comparison(tmp_path, result_row, write_run):
    rows = [result_row("im2col", "w.conv", 0.010), result_row("naive", "w.conv", 1.0)]
    a = write_run(tmp_path / "a.json", "laptop", rows)
    b = write_run(tmp_path / "b.json", "server", [result_row("im2col", "w.conv", 0.005)])
    bench = data.load([a, b])
    assert sorted(bench.results["machine"].unique()) == ["laptop", "server"]
    report = cli.build(bench, tmp_path, None)
    table = next(blk for blk in report.blocks
                 if getattr(blk, "caption", "").startswith("cpu float32 forward: median time"))
    assert table.header == ["workload", "im2col @ laptop", "im2col @ server", "naive @ laptop"]


def test_speedup_is_relative_to_the_baseline_on_the_same_machine(tmp_path, result_row, write_run):
    rows = [result_row("im2col", "w.conv", 0.010), result_row("fast", "w.conv", 0.002),
            result_row("liar", "w.conv", 0.001, status="wrong")]
    f = write_run(tmp_path / "a.json", "m", rows)
    res = ranking.rank(ranking.add_speedups(data.load([f]).results, "im2col")).set_index("impl")
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


def test_missing_results_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["--results", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and len(err.strip().splitlines()) == 1, err


def test_a_results_folder_gives_the_newest_run_per_machine_and_profile(tmp_path, result_row, write_run):
    for name, machine, seconds, started in (("old", "m", 0.5, "2026-01-01"), ("new", "m", 0.1, "2026-02-01"),
                                            ("other", "n", 0.2, "2026-01-15")):
        rows = [result_row("im2col", "w.conv", seconds)]
        write_run(tmp_path / f"{name}.json", machine, rows, started=started)
    (tmp_path / "notes.json").write_text("{}")  # not a result file: left out, and said so
    docs, problems = data.find_files([tmp_path])
    assert sorted(d.path.name for d in docs) == ["new.json", "other.json"]
    assert problems == [f"{tmp_path / 'notes.json'}: left out: not a convcert result file (schema 1, 2)"]


def test_a_newest_run_without_results_neither_crashes_nor_hides_the_older_run(tmp_path, result_row, write_run,
                                                                              capsys):
    write_run(tmp_path / "old.json", "m", [result_row("im2col", "w.conv", 0.5)], started="2026-01-01")
    write_run(tmp_path / "died.json", "m", [], started="2026-02-01")
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "torn.json").write_text('{"schema": 2, "resu')
    out = tmp_path / "out"
    assert cli.main(["--results", str(tmp_path), "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{tmp_path / 'died.json'}: left out: no results (the run ended before its first benchmark finished)",
        f"{tmp_path / 'empty.json'}: left out: empty; not a convcert result file",
        f"{tmp_path / 'torn.json'}: left out: not JSON (Unterminated string starting at: line 1 column 15); "
        "not a convcert result file",
    ]
    md = (out / "index.md").read_text()
    assert "`old.json`" in md and "Left out: " in md and "empty.json" in md


def test_an_unreadable_file_named_explicitly_is_reported_and_the_others_render(tmp_path, result_row,
                                                                                write_run, capsys):
    good = write_run(tmp_path / "good.json", "m", [result_row("im2col", "w.conv", 0.5)])
    bad = tmp_path / "bad.json"
    bad.write_text("")
    assert cli.main(["--results", str(bad), str(good), "--out", str(tmp_path / "out")]) == 0
    assert f"{bad}: left out: empty" in capsys.readouterr().err


def test_layouts_are_columns_and_the_best_layout_is_shown(tmp_path, result_row, write_run):
    rows = [result_row("torch", w, t, layout=lay, device="cuda")
            for w, t_nchw, t_cl in (("r.a", 0.004, 0.002), ("r.b", 0.008, 0.005))
            for lay, t in (("NCHW", t_nchw), ("channels_last", t_cl))]
    rows.append(result_row("jax", "r.a", 0.003, device="cuda"))
    report = cli.build(data.load([write_run(tmp_path / "g.json", "h100", rows)]), tmp_path, None)
    (best,) = [b for b in report.blocks if getattr(b, "caption", "").endswith("median ms per layout")]
    assert best.header == ["implementation", "NCHW", "channels_last", "best layout"]
    assert [c.text for c in best.rows[0]] == ["torch", "5.66", "3.16", "channels_last (2 workloads)"]
    captions = [getattr(b, "caption", "") for b in report.blocks]
    time = report.blocks[captions.index("cuda float32 forward: median device time per call, ms "
                                        "[95% CI of the median] · peak memory")]
    assert time.header == ["workload", "torch [NCHW]", "torch [channels_last]", "jax"]  # baseline torch first
    assert any(c.startswith("cuda float32 forward: host latency") for c in captions)
    assert any("JAX on a GPU" in str(b) for b in report.blocks)


def test_a_rate_above_the_gemm_peak_beyond_the_noise_is_stated_as_a_fact(tmp_path, result_row, write_run):
    f = write_run(tmp_path / "a.json", "m", [result_row("torch", "w.conv", 0.001, peak_gflops=500.0)])
    text = render.to_markdown(cli.build(data.load([f]), tmp_path, None))
    assert "faster than this run's best GEMM" in text and "200%" not in text
    assert "Winograd" not in text.split("## How measured")[0]


def test_a_rate_above_the_peak_within_the_noise_or_below_the_end_peak_is_not_called_faster(
        tmp_path, result_row, write_run):
    noisy = _spread(result_row, "torch", 0.001, 0.9)  # 1 GFLOP in 1 ms, interval 0.1-1.9 ms
    f = write_run(tmp_path / "a.json", "m", [replace(noisy, peak_gflops=800.0)])
    assert not data.load([f]).results["above_peak"].any()
    g = write_run(tmp_path / "b.json", "m", [result_row("torch", "w.conv", 0.001, peak_gflops=500.0)])
    doc = json.loads(g.read_text())
    doc["peaks"] = {"cpu/float32": {"gflops": 500.0, "end_gflops": 1500.0, "method": "t", "changed": True}}
    g.write_text(json.dumps(doc))
    bench = data.load([g])
    assert not bench.results["above_peak"].any()  # the end-of-run GEMM was faster than the conv
    text = render.to_markdown(cli.build(bench, tmp_path, None))
    assert "speed changed during the run" in text and "1,500 at the end" in text


def test_a_busy_machine_gets_a_banner_and_the_environment_is_said_once(tmp_path, result_row, write_run):
    from benchmarks import load

    rows = [result_row("im2col", "w.conv", 0.01), result_row("im2col", "w.b", 0.01, pass_="backward")]
    f = write_run(tmp_path / "a.json", "m", rows)
    doc = json.loads(f.read_text())
    sample = {"loadavg_1m": 7.9, "loadavg_5m": 6.0, "others_cpus": 1.8, "window_s": 0.5}
    doc["load"] = load.summary(sample, sample, 1.7, 2)
    doc["environment"]["cpu"] = "Test CPU 9000 with a long brand string"
    f.write_text(json.dumps(doc))
    text = render.to_markdown(cli.build(data.load([f]), tmp_path, None))
    assert "The machine was busy during the run of **m**" in text and "1.70 of 2 usable CPUs" in text
    assert text.count("Test CPU 9000") == 1 and "<sub>" not in text
    captions = [line for line in text.splitlines() if line.startswith("**cpu float32")]
    assert captions and all(len(c) < 110 for c in captions)


def _spread(result_row, impl, median_s, spread, workload="w.conv"):
    from dataclasses import replace

    from benchmarks.records import Timing

    times = tuple(median_s * f for f in (1 - spread, 1 - spread / 2, 1, 1 + spread / 2, 1 + spread))
    return replace(result_row(impl, workload, median_s), host_time=Timing("host clock (test)", times))


def test_no_fastest_and_no_speedup_where_the_intervals_overlap(tmp_path, result_row, write_run):
    rows = [_spread(result_row, "im2col", 0.010, 0.5), _spread(result_row, "a", 0.009, 0.5),
            _spread(result_row, "b", 0.0095, 0.5), _spread(result_row, "c", 0.0105, 0.5)]
    f = write_run(tmp_path / "a.json", "m", rows)
    res = ranking.rank(ranking.add_speedups(data.load([f]).results, "im2col")).set_index("impl")
    assert (res["rank"] == "").all()
    assert res["speedup"].isna().all() and not res["clear"].any()
    text = render.to_markdown(cli.build(data.load([f]), tmp_path, "im2col"))
    assert "no clear difference" in text and "| **" not in text.split("## Comparison")[1].split("## Plots")[0]


def test_a_clear_fastest_is_bold_and_gets_its_speedup(tmp_path, result_row, write_run):
    rows = [_spread(result_row, "im2col", 0.010, 0.05), _spread(result_row, "fast", 0.002, 0.05),
            _spread(result_row, "near", 0.0101, 0.05)]
    f = write_run(tmp_path / "a.json", "m", rows)
    res = ranking.rank(ranking.add_speedups(data.load([f]).results, "im2col")).set_index("impl")
    assert res.loc["fast", "rank"] == "best" and res.loc["fast", "speedup"] == pytest.approx(5.0)
    assert res.loc["near", "rank"] == "" and np.isnan(res.loc["near", "speedup"])  # overlaps im2col


def test_a_report_of_thousands_of_rows_renders_quickly_with_aggregated_plots(tmp_path):
    """At 4,000 rows the per-workload speedup plot alone took 38 s; aggregated, the whole report is
    a few seconds (100,000 rows: see the README's measurement)."""
    import time

    from tests.benchmarks.synthetic_results import write

    path = write(4000, tmp_path / "big.json")
    started = time.perf_counter()
    assert cli.main(["--results", str(path), "--out", str(tmp_path / "out")]) == 0
    assert time.perf_counter() - started < 30
    assert len((tmp_path / "out" / "results.csv").read_text().splitlines()) == 4001


def test_a_busy_run_is_neither_ranked_nor_given_speedups(tmp_path, result_row, write_run):
    # quiet and busy runs of the same pair ranked differently on a real machine (torch best quiet,
    # 12x slower with six busy processes); a busy run ranks nothing, so no ranking flips
    rows = [_spread(result_row, "im2col", 0.010, 0.05), _spread(result_row, "fast", 0.002, 0.05)]
    f = write_run(tmp_path / "a.json", "m", rows, others_cpus=1.6)
    res = ranking.rank(ranking.add_speedups(data.load([f]).results, "im2col")).set_index("impl")
    assert (res["rank"] == "").all() and res["speedup"].isna().all()
    text = render.to_markdown(cli.build(data.load([f]), tmp_path, "im2col"))
    assert "not compared: busy run" in text and "neither ranked nor given speedups" in text


def test_a_busy_run_with_threads_matched_to_the_idle_cores_is_ranked_and_says_why(tmp_path, result_row,
                                                                                  write_run):
    rows = [_spread(result_row, "im2col", 0.010, 0.05), _spread(result_row, "fast", 0.002, 0.05)]
    matched = {"threads": 1, "chosen": "--threads idle: 1 of 2 usable cores; others kept 1.98 CPUs busy"}
    f = write_run(tmp_path / "a.json", "m", rows, others_cpus=1.6, threads=matched)
    res = ranking.rank(ranking.add_speedups(data.load([f]).results, "im2col")).set_index("impl")
    assert res.loc["fast", "rank"] == "best" and res.loc["fast", "speedup"] > 1
    text = render.to_markdown(cli.build(data.load([f]), tmp_path, "im2col"))
    assert "not compared: busy run" not in text and "matched to the cores the load left idle" in text
