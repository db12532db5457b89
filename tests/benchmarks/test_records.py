import json
import math

import pytest

from benchmarks import storage
from benchmarks.records import BenchmarkResult, Timing
from benchmarks.storage import ResultFile


def test_a_result_survives_a_json_round_trip_with_its_raw_times(tmp_path, result_row):
    original = result_row("torch", "resnet50.res2_conv3x3@b64", 0.002, device="cuda", layout="channels_last")
    path = tmp_path / "r.json"
    ResultFile(path, {"machine": "m"}).add_result(original)
    (back,) = storage.read(path).results
    assert back == original
    assert back.device_time.times_s == original.device_time.times_s
    assert back.timing is back.device_time and back.median_s == pytest.approx(0.002)


def test_derived_statistics_are_computed_from_the_raw_times(result_row):
    r = result_row("im2col", "w.conv", 0.01)
    assert r.gflops == pytest.approx(1e9 / 0.01 / 1e9)
    assert r.pct_peak == pytest.approx(100 * r.gflops / 100.0)
    assert r.intensity == pytest.approx(10.0)
    assert r.timing.summary.rounds == 5


def test_a_rate_above_the_gemm_peak_is_marked_not_a_percentage_past_100(result_row):
    assert result_row("torch", "w.conv", 0.001, peak_gflops=500.0).above_peak  # 1000 GFLOP/s > 500
    assert not result_row("torch", "w.conv", 0.001, peak_gflops=2000.0).above_peak


def test_a_timed_result_without_times_is_refused(result_row):
    r = result_row("im2col", "w.conv", 0.01)
    with pytest.raises(ValueError, match="status='ok': a timed result needs"):
        BenchmarkResult(r.task, "ok", "now")
    with pytest.raises(ValueError, match="status='fast'"):
        BenchmarkResult(r.task, "fast", "now", host_time=r.host_time)
    with pytest.raises(ValueError, match="needs times_s or a summary"):
        Timing("nothing")


def test_schema_1_files_are_still_read(tmp_path):
    row = {"impl": "tensorflow", "device": "cpu", "dtype": "float32", "workload": "lenet5.c3@b8",
           "pass": "forward", "op": "conv2d", "batch": 8, "status": "ok", "flops": 10**6, "min_bytes": 1000,
           "peak_gflops": 50.0,
           "first_call_s": 0.1, "x_shape": [8, 6, 14, 14], "w_shape": [16, 6, 5, 5],
           "check": {"detail": "ok"},
           "measurement": {"median_s": 0.002, "iqr_s": 0.0001, "min_s": 0.0019, "mean_s": 0.002, "rounds": 7,
                           "relative_iqr": 0.05, "noisy": False}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema": 1, "machine": "old", "results": [row],
                                "skipped": [{**row, "reason": "budget"}]}))
    doc = storage.read(path)
    (r,) = doc.results
    assert r.task.layout == "NHWC" and r.median_s == 0.002 and r.host_time.times_s == ()
    assert r.timing.summary.rounds == 7 and math.isclose(r.gflops, 10**6 / 0.002 / 1e9)
    assert doc.skipped[0].reason == "budget"


def test_the_sample_published_in_schema_1_still_reads():
    from pathlib import Path

    (sample,) = (Path(__file__).parents[2] / "reports" / "samples" / "cpu-2core").glob("*.json")
    doc = storage.read(sample)
    assert doc.results and all(r.timing is not None for r in doc.results if r.status != "error")
