"""The smoke profile through ``python -m benchmarks run`` and ``python -m reports``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import storage

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(__file__).parent)])}
    env.pop("PYTEST_CURRENT_TEST", None)  # a command line, as a user runs it
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "--profile", "smoke", "--impl", "naive", "im2col",
         "bench_wrong_impl:FlippedKernel", "--out", str(out), "--machine", "ci"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = out.glob("*.json")
    return path, storage.read(path), proc


def test_smoke_profile_times_every_case_with_stats_and_environment(smoke_run):
    _, doc, _ = smoke_run
    right = [r for r in doc.results if r.task.impl in ("naive", "im2col")]
    assert len(right) == 16 and all(r.status == "ok" for r in right)
    for r in right:
        m = r.timing.summary
        assert m.rounds >= 3 and m.median_s > 0 and r.first_call_s > 0 and r.gflops > 0
        assert r.device_time is None and r.task.layout == "NCHW" and len(r.host_time.times_s) == m.rounds
    head = doc.header
    assert head["threads"]["before_libraries_loaded"] is True  # restarted with the thread settings
    assert all(r.settings["threads"] == head["threads"]["threads"] and r.settings["inner_calls"] >= 1
               and len(r.settings["turns"]) == len(r.host_time.times_s) for r in right)
    assert head["machine"] == "ci" and head["environment"]["cpu"]
    assert head["peaks"]["cpu/float32"]["gflops"] > 0
    assert head["implementations"]["im2col"]["environment"]["numpy"]


def test_the_result_file_satisfies_the_shipped_schema(smoke_run):
    from tests.docs.test_reference_pages import _results_errors

    path, _, _ = smoke_run
    assert _results_errors(json.loads(path.read_text())) == []


def test_a_fast_wrong_answer_is_marked_wrong(smoke_run):
    _, doc, proc = smoke_run
    flipped = {r.task.workload: r.status for r in doc.results
               if r.task.impl == "flipped" and r.task.pass_ == "forward"}
    assert flipped["lenet5.c3@b2"] == "wrong" and flipped["simpleconvnet.conv1@b2"] == "wrong"
    assert flipped["lenet5.s4@b2"] == "ok"  # pooling is untouched by the bug
    assert "wrong answers: " in proc.stderr + proc.stdout


def test_report_renders_and_a_wrong_answer_never_ranks_best(smoke_run, tmp_path):
    path, doc, _ = smoke_run
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "reports", "--results", str(path), "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = {p.name for p in tmp_path.iterdir()}
    expected = {"index.md", "index.html", "results.csv", "roofline.png", "memory_vs_time.png"}
    assert expected <= names
    # a run on a busy machine (a loaded CI runner) gives no speedups, so no speedup plot
    assert ("speedups.png" in names) == (not doc.header["load"]["busy"])
    html = (tmp_path / "index.html").read_text()
    assert "data:image/png;base64," in html and "<link" not in html  # self-contained
    assert "class='best'>WRONG" not in html and "class='wrong'>WRONG" in html
    md = (tmp_path / "index.md").read_text()
    assert "each time is the median of N rounds" in md and "How measured" in md and "best of 6 probes" in md
    assert "at the end" in md  # the peak measured again after the last benchmark
