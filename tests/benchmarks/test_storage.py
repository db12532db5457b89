import multiprocessing
import os

import pytest

from benchmarks import storage
from benchmarks.storage import ResultFile


def test_every_added_result_is_on_disk_at_once(tmp_path, result_row):
    path = tmp_path / "run.json"
    f = ResultFile(path, {"machine": "m"})
    for i in range(3):
        f.add_result(result_row("im2col", f"w.c{i}", 0.01))
        assert [r.task.workload for r in storage.read(path).results] == [f"w.c{j}" for j in range(i + 1)]


def test_a_write_interrupted_midway_keeps_the_previous_file_and_no_temp(tmp_path, monkeypatch, result_row):
    path = tmp_path / "run.json"
    f = ResultFile(path, {"machine": "m"})
    f.add_result(result_row("im2col", "w.c0", 0.01))

    def die_before_the_rename(fd):  # the new document is written, not yet in place
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", die_before_the_rename)
    with pytest.raises(KeyboardInterrupt):
        f.add_result(result_row("im2col", "w.c1", 0.01))
    monkeypatch.undo()
    assert [r.task.workload for r in storage.read(path).results] == ["w.c0"]
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_reading_a_foreign_json_file_says_what_it_is_not(tmp_path):
    other = tmp_path / "other.json"
    other.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a convcert result file"):
        storage.read(other)


def test_an_empty_file_is_named_and_called_empty(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.json: empty"):
        storage.read(empty)


def _claim(folder, n):
    return [storage.new_result_path(folder, "ci", "smoke").name for _ in range(n)]


def _claim_in_child(args):
    storage.datetime = Frozen  # a spawned child: the test's monkeypatch does not reach it
    return _claim(*args)


class Frozen:
    """One clock reading for everyone: only the pid and the random suffix tell runs apart."""

    @staticmethod
    def now(tz=None):
        import datetime as dt

        return dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_runs_started_in_the_same_second_on_the_same_machine_get_their_own_files(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "datetime", Frozen)
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # fork is unsafe once JAX has threads
        names = [n for chunk in pool.map(_claim_in_child, [(tmp_path, 20), (tmp_path, 20)]) for n in chunk]
    names += _claim(tmp_path, 20)
    assert len(set(names)) == 60 and len(os.listdir(tmp_path)) == 60
    assert all(n.startswith("ci-smoke-20260101T000000.000000Z-") for n in names)


def test_a_name_taken_by_another_run_is_never_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "datetime", Frozen)
    tokens = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(storage.secrets, "token_hex", lambda n: next(tokens))
    first = storage.new_result_path(tmp_path, "m", "cpu")
    second = storage.new_result_path(tmp_path, "m", "cpu")  # "aaaaaa" exists: draws again
    assert first != second and second.name.endswith("-bbbbbb.json")


def test_a_machine_name_with_a_slash_is_refused(tmp_path):
    with pytest.raises(ValueError, match="machine='a/b'"):
        storage.new_result_path(tmp_path, "a/b", "cpu")
