"""The regression gate on the issue's cases: slower, newly wrong, missing, moved to skipped,
another machine's rows in the baseline folder, rows dropped on purpose."""

import pytest

from benchmarks import storage
from reports import __main__ as cli
from reports import gate


def _docs(*paths):
    return [storage.read(p) for p in paths]


@pytest.fixture
def baseline(tmp_path, result_row, write_run):
    rows = [result_row("im2col", "w.a", 0.010), result_row("im2col", "w.b", 0.010),
            result_row("torch", "w.a", 0.005, layout="NCHW")]
    return write_run(tmp_path / "base.json", "m", rows)


def test_same_rows_within_threshold_pass(tmp_path, baseline):
    assert gate.compare(_docs(baseline), _docs(baseline), 10).passed


def test_a_slower_row_and_a_newly_wrong_row_are_regressions(tmp_path, baseline, result_row, write_run):
    now = write_run(tmp_path / "now.json", "m", [result_row("im2col", "w.a", 0.015),
                                                 result_row("im2col", "w.b", 0.010, status="wrong"),
                                                 result_row("torch", "w.a", 0.005)])
    found = {r.key[5]: r.why for r in gate.compare(_docs(now), _docs(baseline), 10).regressions}
    assert found == {"w.a": "+50.0% > 10%", "w.b": "answer became wrong"}


def test_a_row_missing_from_the_new_run_is_a_regression(tmp_path, baseline, result_row, write_run):
    rows = [result_row("im2col", "w.a", 0.010), result_row("torch", "w.a", 0.005)]
    now = write_run(tmp_path / "now.json", "m", rows)
    (reg,) = gate.compare(_docs(now), _docs(baseline), 10).regressions
    assert reg.key == ("m", "cpu", "im2col", "float32", "NCHW", "w.b", "forward")
    assert reg.why == "missing from the new run"


def test_a_row_moved_to_skipped_is_a_regression_with_the_reason(tmp_path, baseline, result_row, task,
                                                                 write_run):
    rows = [result_row("im2col", "w.a", 0.010), result_row("torch", "w.a", 0.005)]
    now = write_run(tmp_path / "now.json", "m", rows,
                    skipped=[(task("im2col", "w.b"), "time budget of 60 s would be exceeded")])
    (reg,) = gate.compare(_docs(now), _docs(baseline), 10).regressions
    assert reg.why == "moved to skipped: time budget of 60 s would be exceeded"


def test_rows_listed_as_dropped_are_not_regressions(tmp_path, baseline, result_row, write_run):
    now = write_run(tmp_path / "now.json", "m", [result_row("im2col", "w.a", 0.010)])
    verdict = gate.compare(_docs(now), _docs(baseline), 10, ["m/cpu/im2col/*/w.b/*", "*/torch/*"])
    assert verdict.passed and len(verdict.dropped) == 2


def test_a_layout_is_its_own_row(tmp_path, baseline, result_row, write_run):
    rows = [result_row("im2col", "w.a", 0.010), result_row("im2col", "w.b", 0.010),
            result_row("torch", "w.a", 0.001, layout="channels_last")]
    now = write_run(tmp_path / "now.json", "m", rows)
    (reg,) = gate.compare(_docs(now), _docs(baseline), 10).regressions
    assert reg.key[2:5] == ("torch", "float32", "NCHW") and reg.why == "missing from the new run"


def test_another_machines_rows_in_the_baseline_folder_raise_no_alarm(tmp_path, baseline, result_row,
                                                                      write_run):
    other = [result_row("im2col", "w.a", 0.001), result_row("naive", "w.z", 1.0)]
    write_run(tmp_path / "other.json", "laptop", other)
    now = write_run(tmp_path / "now" / "now.json", "m", [result_row("im2col", "w.a", 0.010),
                                                         result_row("im2col", "w.b", 0.010),
                                                         result_row("torch", "w.a", 0.005)])
    from reports import data

    saved = data.load([tmp_path])  # base.json (m) and other.json (laptop): newest of each machine
    assert sorted(d.machine for d in saved.documents) == ["laptop", "m"]
    verdict = gate.compare(_docs(now), saved.documents, 10)
    assert verdict.passed and verdict.machines_left_aside == ["laptop"]


def test_the_cli_exits_1_on_a_missing_row_and_0_with_a_dropped_file(tmp_path, baseline, result_row, write_run,
                                                                     capsys):
    now = write_run(tmp_path / "now" / "now.json", "m", [result_row("im2col", "w.a", 0.010),
                                                         result_row("torch", "w.a", 0.005)])
    args = ["--results", str(now), "--baseline", str(baseline), "--out", str(tmp_path / "out")]
    assert cli.main(args) == 1
    assert "missing from the new run" in capsys.readouterr().err
    dropped = tmp_path / "dropped.txt"
    dropped.write_text("# retired on purpose\nm/cpu/im2col/float32/NCHW/w.b/forward\n")
    assert cli.main([*args, "--dropped", str(dropped)]) == 0
    assert "dropped on purpose" in (tmp_path / "out" / "index.md").read_text()


def test_a_negative_threshold_and_an_unreadable_dropped_file_are_refused(tmp_path, baseline):
    with pytest.raises(ValueError, match="--threshold -1"):
        gate.compare(_docs(baseline), _docs(baseline), -1)
    with pytest.raises(ValueError, match="--dropped .*nope.txt: cannot be read"):
        gate.read_dropped(tmp_path / "nope.txt")
