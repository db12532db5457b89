"""The CUDA path: device time, layouts, torch allocator memory (skipped without a GPU)."""

import statistics

import pytest

from benchmarks import timers
from benchmarks.harness import Run
from benchmarks.storage import ResultFile, read
from benchmarks.timed_cases import TimedCase
from benchmarks.workloads import LAYERS, Workload, get_profile

torch = pytest.importorskip("torch", reason="torch is not installed")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


@pytest.mark.parametrize("layout", ["NCHW", "channels_last"])
def test_torch_on_cuda_is_timed_on_the_device_checked_and_its_memory_measured(tmp_path, layout):
    from implementations import registry

    impl = registry.get("torch")
    wl = Workload(LAYERS["lenet5.c3"], 4)
    run = Run(get_profile("smoke"), {"torch": impl}, ("cuda",), ("float32",),
              ResultFile(tmp_path / "r.json", {}))
    assert {c.layout for c in run.cases} == {"NCHW", "channels_last"}
    run.measure_peaks()
    run.run_case(TimedCase("torch", "cuda", "float32", wl, "forward", layout))
    (result,) = read(tmp_path / "r.json").results
    assert result.status == "ok" and result.peak_memory_bytes > 0 and result.pct_peak > 0
    assert result.task.layout == layout
    assert result.device_time.method.startswith("CUDA events") and result.host_time.median_s > 0


def test_the_event_timer_agrees_with_raw_cuda_events_within_5_percent():
    cl = torch.channels_last
    x = torch.randn(64, 256, 56, 56, device="cuda", dtype=torch.float16).contiguous(memory_format=cl)
    w = torch.randn(256, 256, 3, 3, device="cuda", dtype=torch.float16).contiguous(memory_format=cl)

    def call():
        return torch.nn.functional.conv2d(x, w, padding=1)

    for _ in range(10):
        call()
    torch.cuda.synchronize()
    raw = []
    for _ in range(30):  # one call between two events, synchronised each time
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        torch.cuda.synchronize()
        raw.append(start.elapsed_time(end) / 1e3)
    ours = timers.torch_event_timer(cold_cache=False).times(call, 30)
    assert statistics.median(ours) == pytest.approx(statistics.median(raw), rel=0.05)


def test_cold_cache_flushes_outside_the_events():
    timer = timers.torch_event_timer(cold_cache=True)
    x = torch.randn(1 << 20, device="cuda")
    times = timer.times(lambda: x.mul_(1.0), 5)
    assert "L2 flushed" in timer.method and all(0 < t < 1e-2 for t in times)
