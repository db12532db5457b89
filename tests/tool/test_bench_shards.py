"""``benchmarks run --shard K/N``: the parts time disjoint cases that together make the whole run."""

import os
import subprocess
import sys
from pathlib import Path

from benchmarks import storage

ROOT = Path(__file__).resolve().parents[2]


def _parts(out: Path, count: int) -> list[storage.RunDocument]:
    """Parts 1..count of one smoke run, run side by side (as CI jobs would)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "convcert", "bench", "--profile", "smoke", "--impl", "im2col",
         "--impl", "naive", "--shard", f"{k}/{count}", "--out", str(out / str(k)), "--machine", f"part{k}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) for k in range(1, count + 1)]
    docs = []
    for k, proc in enumerate(procs, 1):
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output[-6000:]
        (path,) = (out / str(k)).glob("*.json")
        docs.append(storage.read(path))
    return docs


def _tasks(doc: storage.RunDocument) -> set[tuple]:
    rows = [*doc.results, *doc.skipped]
    return {(r.task.impl, r.task.dtype, r.task.workload, r.task.pass_) for r in rows}


def test_two_shards_time_disjoint_halves_of_both_implementations(tmp_path):
    one, two = _parts(tmp_path, 2)
    assert one.header["shard"] == "1/2" and two.header["shard"] == "2/2"
    assert _tasks(one) and _tasks(two) and not _tasks(one) & _tasks(two)
    assert {t[0] for t in _tasks(one)} == {t[0] for t in _tasks(two)} == {"im2col", "naive"}
