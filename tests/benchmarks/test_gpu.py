"""The CUDA path: synchronised timing and torch allocator memory (skipped without a GPU)."""

import pytest

from benchmarks.cases import Case
from benchmarks.runner import Run
from benchmarks.storage import ResultFile, read
from benchmarks.workloads import LAYERS, Workload, get_profile

torch = pytest.importorskip("torch", reason="torch is not installed")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


def test_torch_on_cuda_is_timed_checked_and_its_memory_measured(tmp_path):
    from implementations import registry

    impl = registry.get("torch")
    wl = Workload(LAYERS["lenet5.c3"], 4)
    run = Run(get_profile("smoke"), {"torch": impl}, ("cuda",), ("float32",), ResultFile(tmp_path / "r.json", {}))

    class Timer:  # the part of pytest-benchmark's fixture the runner uses
        extra_info: dict = {}

        def pedantic(self, fn, rounds, warmup_rounds, iterations):
            import time

            self.stats = type("S", (), {})()
            self.stats.stats = type("D", (), {})()
            self.stats.stats.data = []
            for _ in range(rounds):
                start = time.perf_counter()
                fn()
                self.stats.stats.data.append(time.perf_counter() - start)

    run.measure_peaks()
    run.run_case(Case("torch", "cuda", "float32", wl, "forward"), Timer())
    (row,) = read(tmp_path / "r.json")["results"]
    assert row["status"] == "ok" and row["peak_memory_bytes"] > 0 and row["pct_peak"] > 0
