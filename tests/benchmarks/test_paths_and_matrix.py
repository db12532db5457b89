"""Bad paths are one line and exit 2 in every command; the report says plainly when the
conformance matrix is missing, older than the results, or incomplete."""

from __future__ import annotations

import json

import pytest

from benchmarks.__main__ import main as bench_main
from reports import __main__ as report_cli


@pytest.mark.parametrize("extra,says", [
    (("--machine", "a/b"), "--machine='a/b': must be a name"),
    (("--machine", "../x"), "--machine='../x': must be a name"),
])
def test_a_machine_name_that_reaches_outside_the_folder_is_one_line_and_exit_2(extra, says, tmp_path, capsys):
    assert bench_main(["run", "--profile", "smoke", "--impl", "im2col", "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err


def test_benchmarks_out_naming_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("")
    assert bench_main(["run", "--profile", "smoke", "--impl", "im2col", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1, err


def test_report_out_naming_a_file_is_one_line_and_exit_2(tmp_path, capsys, result_row, write_run):
    results = write_run(tmp_path / "r.json", "m", [result_row("im2col", "w.conv", 0.1)])
    target = tmp_path / "file"
    target.write_text("")
    assert report_cli.main(["--results", str(results), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1, err


def _matrix(out, generated, **entry):
    (out / "conformance").mkdir(parents=True, exist_ok=True)
    (out / "conformance" / "matrix.json").write_text(json.dumps(
        {"generated": generated, "implementations": [{"name": "torch", **entry}]}))


def test_the_report_says_when_the_matrix_is_missing_older_or_incomplete(tmp_path):
    assert "No conformance matrix" in report_cli.matrix_note(tmp_path / "m.json", ["2026-12-01T00:00:00"])
    _matrix(tmp_path, "2026-11-30T00:00:00+00:00")
    path = tmp_path / "conformance" / "matrix.json"
    assert "older than these results" in report_cli.matrix_note(path, ["2026-12-01T00:00:00+00:00"])
    # nox certifies first and times after: the same run's matrix is minutes older, and current
    _matrix(tmp_path, "2026-12-01T00:00:00+00:00")
    assert report_cli.matrix_note(path, ["2026-12-01T00:05:00+00:00"]) == ""
    _matrix(tmp_path, "2026-12-02T00:00:00+00:00", could_not_run=True)
    note = report_cli.matrix_note(path, ["2026-12-01T00:00:00+00:00"])
    assert "older" not in note and "could not judge torch" in note
    _matrix(tmp_path, "2026-12-02T00:00:00+00:00")
    assert report_cli.matrix_note(path, ["2026-12-01T00:00:00+00:00"]) == ""
