"""Fixtures: synthetic result documents for report tests (the real runner is tested end to end)."""

from pathlib import Path

import pytest

from benchmarks.storage import ResultFile


def _result_row(impl: str, workload: str, median_s: float, status: str = "ok", pass_: str = "forward") -> dict:
    return {
        "impl": impl, "device": "cpu", "dtype": "float32", "workload": workload, "network": workload.split(".")[0],
        "layer": workload, "op": "conv2d", "pass": pass_, "batch": 1, "status": status, "precision": "float32",
        "flops": 1e9, "flops_kind": "direct-conv FLOPs", "intensity": 10.0, "gflops": 1 / median_s,
        "peak_gflops": 100.0, "pct_peak": 1 / median_s, "peak_memory_bytes": 2**20, "memory_method": "tracemalloc",
        "first_call_s": median_s * 2,
        "measurement": {"median_s": median_s, "iqr_s": median_s / 100, "min_s": median_s, "mean_s": median_s,
                        "rounds": 5, "relative_iqr": 0.01, "noisy": False},
        "check": {"ok": status == "ok", "max_error": 0.0, "worst_ratio": 0.0 if status == "ok" else 9.0,
                  "detail": "y[0]: ..."},
    }


def _write_run(path: Path, machine: str, rows: list[dict]) -> Path:
    f = ResultFile(path, {"machine": machine, "profile": "smoke", "command": "test", "started": "2026-01-01T00:00:00",
                          "environment": {"cpu": "test cpu"}, "implementations": {}, "settings": {}, "peaks": {}})
    for row in rows:
        f.add_result(row)
    return path


@pytest.fixture
def result_row():
    return _result_row


@pytest.fixture
def write_run():
    return _write_run
