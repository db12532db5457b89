import os

import pytest

from benchmarks import storage
from benchmarks.storage import ResultFile


def test_every_added_result_is_on_disk_at_once(tmp_path):
    path = tmp_path / "run.json"
    f = ResultFile(path, {"machine": "m"})
    for i in range(3):
        f.add_result({"i": i})
        assert [r["i"] for r in storage.read(path)["results"]] == list(range(i + 1))


def test_a_write_interrupted_midway_keeps_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    f = ResultFile(path, {"machine": "m"})
    f.add_result({"i": 0})

    def die_before_the_rename(fd):  # the new document is written, not yet in place
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", die_before_the_rename)
    with pytest.raises(KeyboardInterrupt):
        f.add_result({"i": 1})
    monkeypatch.undo()
    assert [r["i"] for r in storage.read(path)["results"]] == [0]
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_reading_a_foreign_json_file_says_what_it_is_not(tmp_path):
    other = tmp_path / "other.json"
    other.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a convcert result file"):
        storage.read(other)
