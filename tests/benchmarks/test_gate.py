"""The regression gate on the cases it must tell apart: slower, newly wrong, missing, moved to skipped,
another machine's rows in the baseline folder, rows dropped on purpose; a baseline that matches
nothing, argument order, zero/NaN/negative/malformed rows and files, slowdowns within the noise."""

import json

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
    assert found == {"w.a": "+50.0% > 10%; 95% CI 14.8-15.2 ms above 9.9-10.1 ms",
                     "w.b": "answer became wrong"}


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


def _edit(path, change):
    """Rewrite a result file's JSON through ``change(doc)``: crafts rows the writer would refuse."""
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def test_a_baseline_from_another_machine_exits_2_with_one_line_saying_why(tmp_path, baseline, result_row,
                                                                         write_run, capsys):
    now = write_run(tmp_path / "now.json", "laptop", [result_row("im2col", "w.a", 0.100)])
    args = ["--results", str(now), "--baseline", str(baseline), "--out", str(tmp_path / "out")]
    assert cli.main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "baseline was measured on m, the new results on laptop" in line and "nothing was judged" in line


def test_the_verdict_follows_recorded_start_times_not_argument_order(tmp_path, baseline, result_row,
                                                                     write_run):
    """Two new runs of one row: the later run (10x slower) decides, in either argument order."""
    rows = [result_row("im2col", "w.b", 0.010), result_row("torch", "w.a", 0.005)]
    early = write_run(tmp_path / "b-early.json", "m", [result_row("im2col", "w.a", 0.010), *rows],
                      started="2026-03-01T10:00:00+00:00")
    late = write_run(tmp_path / "a-late.json", "m", [result_row("im2col", "w.a", 0.100), *rows],
                     started="2026-03-01T11:00:00+00:00")
    for order in ((early, late), (late, early)):
        (reg,) = gate.compare(_docs(*order), _docs(baseline), 10).regressions
        assert reg.key[5] == "w.a" and reg.why.startswith("+900.0% > 10%")


def test_a_zero_time_in_the_baseline_is_named_left_out_and_the_rest_judged(tmp_path, baseline, result_row,
                                                                            write_run, capsys):
    def zero(doc):
        doc["results"][0]["host_time"]["times_s"] = [0.0] * 5

    _edit(baseline, zero)
    now = write_run(tmp_path / "now" / "now.json", "m", [result_row("im2col", "w.a", 0.010),
                                                         result_row("im2col", "w.b", 0.050),
                                                         result_row("torch", "w.a", 0.005)])
    code = cli.main(["--results", str(now), "--baseline", str(baseline), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1  # w.b's slowdown is still judged
    named = f"{baseline}: results[0] (im2col/cpu/float32/w.a/forward) left out: ValueError: times_s holds 0.0"
    assert named in err
    assert "w.b" in err and "Traceback" not in err


@pytest.mark.parametrize(("field", "value", "says"), [
    ("times", float("nan"), "times_s holds nan"),
    ("times", -0.01, "times_s holds -0.01"),
    ("flops", "1e9", "flops='1e9': must be a number"),
    ("task", None, "missing field 'task'"),
])
def test_a_bad_row_is_named_and_left_out_and_the_report_renders(tmp_path, result_row, write_run, capsys,
                                                                field, value, says):
    good = write_run(tmp_path / "now.json", "m", [result_row("im2col", "w.a", 0.010),
                                                  result_row("torch", "w.a", 0.005)])

    def spoil(doc):
        r = doc["results"][1]
        if field == "times":
            r["host_time"]["times_s"][2] = value
        elif field == "task":
            del r["task"]
        else:
            r[field] = value

    _edit(good, spoil)
    out = tmp_path / "out"
    assert cli.main(["--results", str(good), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{good}: results[1] (" in err and says in err
    assert "im2col" in (out / "results.csv").read_text() and "torch" not in (out / "results.csv").read_text()


def test_a_machine_given_as_a_dict_leaves_that_file_out_by_name(tmp_path, result_row, write_run, capsys):
    bad = _edit(write_run(tmp_path / "bad.json", "m", [result_row("im2col", "w.a", 0.01)]),
                lambda doc: doc.update(machine={"name": "m"}))
    good = write_run(tmp_path / "good.json", "n", [result_row("im2col", "w.a", 0.01)])
    assert cli.main(["--results", str(bad), str(good), "--out", str(tmp_path / "out")]) == 0
    assert f"{bad}: left out: 'machine' is a dict, not a string" in capsys.readouterr().err


def _noisy_row(result_row, impl, median_s, spread):
    """A right result whose five rounds spread ``spread`` around ``median_s``."""
    from dataclasses import replace

    from benchmarks.records import Timing

    r = result_row(impl, "w.a", median_s)
    times = tuple(median_s * f for f in (1 - spread, 1 - spread / 2, 1, 1 + spread / 2, 1 + spread))
    return replace(r, host_time=Timing("host clock (test)", times))


def test_a_slowdown_beyond_the_threshold_but_within_the_noise_is_not_a_regression(tmp_path, result_row,
                                                                                   write_run):
    old = write_run(tmp_path / "old.json", "m", [_noisy_row(result_row, "im2col", 0.010, 0.5)])
    within = write_run(tmp_path / "within.json", "m", [_noisy_row(result_row, "im2col", 0.012, 0.5)])
    beyond = write_run(tmp_path / "beyond.json", "m", [_noisy_row(result_row, "im2col", 0.030, 0.1)])
    verdict = gate.compare(_docs(within), _docs(old), 10)
    assert verdict.passed and verdict.within_noise == 1 and verdict.compared == 1
    (reg,) = gate.compare(_docs(beyond), _docs(old), 10).regressions
    assert reg.why.startswith("+200.0% > 10%; 95% CI")


def test_a_busy_new_run_judges_answers_but_not_slowdowns(tmp_path, baseline, result_row, task, write_run):
    # six busy processes on two cores made every row of a real run "regress" (224 of 232)
    now = write_run(tmp_path / "now.json", "m", [result_row("im2col", "w.a", 0.100),
                                                 result_row("torch", "w.a", 0.005, status="wrong")],
                    skipped=[(task("im2col", "w.b"), "time budget of 60 s for im2col/cpu/float32 spent")],
                    others_cpus=1.6)
    verdict = gate.compare(_docs(now), _docs(baseline), 10)
    assert [r.why for r in verdict.regressions] == ["answer became wrong"]
    assert {r.key[5] for r in verdict.not_judged} == {"w.a", "w.b"}
    assert verdict.busy[0].startswith("new run now.json: other processes kept 1.60 of 2 usable CPUs")
    assert not verdict.passed


def test_a_busy_new_run_that_is_not_slower_passes(tmp_path, baseline, result_row, write_run):
    rows = [result_row("im2col", "w.a", 0.010), result_row("im2col", "w.b", 0.010),
            result_row("torch", "w.a", 0.005)]
    now = write_run(tmp_path / "now.json", "m", rows, others_cpus=1.6)
    verdict = gate.compare(_docs(now), _docs(baseline), 10)
    assert verdict.passed and verdict.busy and not verdict.not_judged


def test_a_busy_baseline_judges_no_time_at_all(tmp_path, result_row, write_run):
    busy = write_run(tmp_path / "base.json", "m", [result_row("im2col", "w.a", 0.050)], others_cpus=1.6)
    now = write_run(tmp_path / "now.json", "m", [result_row("im2col", "w.a", 0.050)])
    verdict = gate.compare(_docs(now), _docs(busy), 10)
    assert not verdict.regressions and not verdict.passed
    assert verdict.not_judged[0].why == "the baseline was measured on a busy machine"


def test_the_command_exits_2_naming_the_busy_run_when_slowdowns_were_not_judged(tmp_path, baseline,
                                                                                 result_row, write_run,
                                                                                 capsys):
    folder = tmp_path / "new"
    folder.mkdir()
    rows = [result_row("im2col", "w.a", 0.100), result_row("im2col", "w.b", 0.010),
            result_row("torch", "w.a", 0.005)]
    write_run(folder / "now.json", "m", rows, others_cpus=1.6)
    code = cli.main(["--results", str(folder), "--baseline", str(baseline), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "1 row(s) slower or skipped for time were not judged: new run now.json" in err
    assert "regression" not in err
