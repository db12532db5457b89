"""The one atomic writer and the one JSON spelling of non-finite floats."""

import math
import os

import pytest

from implementations.files import json_float, write_atomic


def test_write_atomic_creates_the_folder_and_writes_text_or_bytes(tmp_path):
    write_atomic(tmp_path / "a" / "t.txt", "text")
    write_atomic(tmp_path / "a" / "b.bin", b"\x00\x01")
    assert (tmp_path / "a" / "t.txt").read_text() == "text"
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a" / "t.txt").stat().st_mode & 0o777 == 0o644 & ~umask  # not mkstemp's 0600


def test_write_atomic_interrupted_keeps_the_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    write_atomic(path, "old")

    def killed(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize("value, spelled",
                         [(1.5, 1.5), (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan")])
def test_json_float_spells_out_what_json_cannot_hold(value, spelled):
    assert json_float(value) == spelled
