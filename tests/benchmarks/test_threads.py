"""One thread setting for every library, yielding idle pools, and the anchor's table."""

import pytest

from benchmarks.precision import anchor, threads


def test_every_library_gets_the_same_threads_and_idle_pools_yield(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x intra_op_parallelism_threads=7")
    env = threads.environment_for(3)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CONVCERT_TF_THREADS",
                "CONVCERT_ORT_THREADS"):
        assert env[key] == "3"
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["KMP_BLOCKTIME"] == "0"
    assert env["XLA_FLAGS"] == ("--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=true "
                                "intra_op_parallelism_threads=3")  # the user's other flags kept
    with pytest.raises(ValueError, match="threads=0"):
        threads.environment_for(0)


def test_no_restart_inside_a_test_run_and_the_record_says_so(monkeypatch):
    monkeypatch.delenv(threads.MARK, raising=False)
    threads.restart_with(1, ["run"])  # inside a test: returns instead of replacing the process
    for key in threads.environment_for(1):
        monkeypatch.setenv(key, "")  # monkeypatch restores each at the end
    record = threads.apply(1)
    assert record["threads"] == 1 and record["before_libraries_loaded"] is False
    assert record["environment"]["OMP_WAIT_POLICY"] == "PASSIVE"


def test_the_anchor_table_gives_each_tools_median_iqr_and_their_ratio():
    text = anchor.table({("torch", "r@b8"): (0.0102, 0.03)}, {("torch", "r@b8"): (0.0100, 0.02)})
    row = text.splitlines()[1]
    assert row.split()[-5:] == ["10.200", "3.0%", "10.000", "2.0%", "1.020"]


SPIN_PROBE = """
import time, numpy as np
a = np.random.default_rng(0).random((512, 512), dtype=np.float32)
idle = []
for _ in range(10):
    a @ a
    start = time.process_time(); time.sleep(0.05); idle.append(time.process_time() - start)
print(sorted(idle)[5])
"""


def test_with_the_run_settings_numpys_blas_pool_sleeps_after_a_gemm():
    """The cause of spread rows: OpenBLAS threads spin after a GEMM (measured on 2 loaded cores:
    13 ms of CPU in the 50 ms after it by default); with the run's settings, under 5 ms."""
    import os
    import subprocess
    import sys

    env = {**os.environ, **threads.environment_for(2)}
    out = subprocess.run([sys.executable, "-c", SPIN_PROBE], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    assert float(out.stdout) < 0.005


def test_idle_threads_are_the_cores_others_leave_idle_and_at_least_one():
    assert threads.idle_threads(0.02, usable=2) == 2
    assert threads.idle_threads(0.7, usable=2) == 1
    assert threads.idle_threads(5.6, usable=2) == 1  # six busy processes on two cores
    assert threads.idle_threads(1.2, usable=8) == 7
    assert threads.idle_threads(None, usable=4) == 4  # not measurable (no /proc): every usable core


def test_threads_idle_measures_the_load_once_and_the_restarted_process_keeps_the_choice(monkeypatch):
    from benchmarks import __main__ as cli
    from benchmarks import load

    monkeypatch.delenv(threads.MARK, raising=False)
    monkeypatch.delenv(threads.IDLE_MARK, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    samples = []
    monkeypatch.setattr(load, "sample", lambda s: samples.append(s) or {"others_cpus": 1.7})
    assert cli.thread_count("idle") == (1, (1, 1.7)) and samples == [cli.IDLE_SAMPLE_S]
    assert cli.thread_count(None) == (2, None) and cli.thread_count(3) == (3, None)
    # the restarted process: its environment holds the choice; the load is not measured again
    monkeypatch.setenv(threads.MARK, "1")
    monkeypatch.setenv(threads.IDLE_MARK, "1.7")
    monkeypatch.setattr(load, "sample", lambda s: pytest.fail("measured twice"))
    assert cli.thread_count("idle") == (1, (1, 1.7))
