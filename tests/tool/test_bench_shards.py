"""``benchmarks run --shard K/N``: the parts time disjoint cases that together make the whole run."""

import os
import subprocess
import sys
from pathlib import Path

from benchmarks import storage

ROOT = Path(__file__).resolve().parents[2]


def _part(out: Path, k: int) -> storage.RunDocument:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "convcert", "bench", "--profile", "smoke", "--impl", "im2col",
         "--impl", "naive", "--shard", f"{k}/2", "--out", str(out / str(k)), "--machine", f"part{k}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = (out / str(k)).glob("*.json")
    return storage.read(path)


def _tasks(doc: storage.RunDocument) -> set[tuple]:
    rows = [*doc.results, *doc.skipped]
    return {(r.task.impl, r.task.dtype, r.task.workload, r.task.pass_) for r in rows}


def test_two_shards_time_disjoint_halves_of_both_implementations(tmp_path):
    one, two = _part(tmp_path, 1), _part(tmp_path, 2)
    assert one.header["shard"] == "1/2" and two.header["shard"] == "2/2"
    assert _tasks(one) and _tasks(two) and not _tasks(one) & _tasks(two)
    assert {t[0] for t in _tasks(one)} == {t[0] for t in _tasks(two)} == {"im2col", "naive"}
