"""Fixtures: synthetic typed results for report and gate tests (the real harness is tested end to end)."""

from pathlib import Path

import pytest

from benchmarks.records import BenchmarkResult, SkippedCase, TaskSpec, Timing
from benchmarks.storage import ResultFile


def _task(impl: str, workload: str, pass_: str = "forward", layout: str = "NCHW", device: str = "cpu",
          dtype: str = "float32") -> TaskSpec:
    return TaskSpec(impl=impl, device=device, dtype=dtype, layout=layout, workload=workload,
                    network=workload.split(".")[0], layer=workload, op="conv2d", pass_=pass_, batch=1,
                    x_shape=(1, 3, 8, 8), w_shape=(4, 3, 3, 3))


def _result_row(impl: str, workload: str, median_s: float, status: str = "ok", pass_: str = "forward",
                layout: str = "NCHW", device: str = "cpu", peak_gflops: float = 100.0) -> BenchmarkResult:
    times = (median_s * 0.99, median_s, median_s, median_s * 1.01, median_s)
    device_time = Timing("CUDA events (test)", times) if device == "cuda" else None
    return BenchmarkResult(
        task=_task(impl, workload, pass_, layout, device), status=status, finished="2026-01-01T00:00:01",
        host_time=Timing("host clock (test)", tuple(t * 1.1 for t in times) if device_time else times),
        device_time=device_time, first_call_s=median_s * 2, precision="float32", flops=10**9,
        flops_kind="direct-conv FLOPs", min_bytes=10**8, peak_gflops=peak_gflops, peak_method="test",
        peak_memory_bytes=2**20, memory_method="tracemalloc",
        check={"ok": status == "ok", "max_error": 0.0, "worst_ratio": 0.0 if status == "ok" else 9.0,
               "detail": "y[0]: ..."},
    )


def _write_run(path: Path, machine: str, rows: list[BenchmarkResult], skipped: tuple = (),
               started: str = "2026-01-01T00:00:00", others_cpus: float = 0.0,
               threads: dict | None = None) -> Path:
    """A result file; ``others_cpus``: CPUs (of 2) other processes kept busy during the run;
    ``threads``: its ``threads`` record."""
    load = {"start": {"others_cpus": others_cpus, "loadavg_1m": others_cpus},
            "end": {"others_cpus": others_cpus, "loadavg_1m": others_cpus},
            "others_cpus_during_run": others_cpus, "usable_cpus": 2, "busy": others_cpus > 0.5}
    f = ResultFile(path, {"machine": machine, "profile": "smoke", "command": "test", "started": started,
                          "environment": {"cpu": "test cpu"}, "implementations": {}, "settings": {},
                          "peaks": {}, "load": load, **({"threads": threads} if threads else {})})
    for row in rows:
        f.add_result(row)
    for task, reason in skipped:
        f.add_skip(SkippedCase(task, reason))
    return path


@pytest.fixture
def result_row():
    return _result_row


@pytest.fixture
def task():
    return _task


@pytest.fixture
def write_run():
    return _write_run
