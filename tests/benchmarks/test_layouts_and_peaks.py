"""Layouts as a benchmark dimension, and the GEMM peak as the best of several probes (CPU)."""

from dataclasses import replace

import numpy as np
import pytest

from benchmarks import layouts, measure, storage
from benchmarks.harness import Run
from benchmarks.storage import ResultFile
from benchmarks.timed_cases import TimedCase, place
from benchmarks.workloads import LAYERS, Workload, get_profile
from implementations import registry

CONV = Workload(LAYERS["lenet5.c3"], 2)


def _timed_in_nhwc(name, impl, tmp_path):
    """The result of one CPU benchmark of ``impl`` held in NHWC, through the harness."""
    run = Run(replace(get_profile("smoke"), workloads=(CONV,)), {name: impl}, ("cpu",), ("float32",),
              ResultFile(tmp_path / "r.json", {"machine": "m"}))
    run.run_case(TimedCase(name, "cpu", "float32", CONV, "backward", "NHWC"))
    (result,) = storage.read(tmp_path / "r.json").results
    return result


def test_numpy_and_undeclared_plugins_run_in_nchw():
    im2col = registry.get("im2col")
    assert layouts.layouts(im2col, "cuda", np.zeros(1)) == ("NCHW",)
    # through the adapter, which loads triton before TensorFlow (the other order aborts)
    tf = pytest.importorskip("implementations.frameworks.tensorflow_adapter").tf
    # a plug-in placing TensorFlow tensors without declaring layouts: they are logical NCHW
    assert layouts.layouts(im2col, "cpu", tf.zeros(1)) == ("NCHW",)


def test_tensorflow_gets_both_layouts_on_a_gpu_and_nhwc_held_on_the_cpu(tmp_path):
    adapter = pytest.importorskip("implementations.frameworks.tensorflow_adapter")
    impl = registry.get("tensorflow")
    sample = impl.to_device(np.zeros((1, 2, 3, 4)), "cpu")
    assert layouts.layouts(impl, "cuda", sample) == ("NCHW", "NHWC")
    assert layouts.layouts(impl, "cpu", sample) == ("NHWC",)  # its CPU kernels' only layout
    nhwc = layouts.bind(impl, "NHWC")
    assert isinstance(nhwc, adapter.TensorFlow) and nhwc.layout == "NHWC"
    assert layouts.bind(impl, "NCHW") is impl
    result = _timed_in_nhwc("tensorflow", impl, tmp_path)
    assert result.status == "ok" and result.task.layout == "NHWC"


def test_torch_gets_both_layouts_on_a_gpu_and_its_own_on_the_cpu():
    torch = pytest.importorskip("torch")
    impl = registry.get("torch")
    assert layouts.layouts(impl, "cuda", torch.zeros(1)) == ("NCHW", "channels_last")
    assert layouts.layouts(impl, "cpu", torch.zeros(1)) == ("NCHW",)


def test_jax_declares_nchw_and_nhwc_and_is_bound_to_each(tmp_path):
    pytest.importorskip("jax")
    jax_impl = registry.get("jax")
    assert layouts.layouts(jax_impl, "cuda", None) == ("NCHW", "NHWC")
    assert layouts.layouts(jax_impl, "cpu", None) == ("NCHW",)
    assert layouts.bind(jax_impl, "NHWC").layout == "NHWC" and layouts.bind(jax_impl, "NCHW") is jax_impl
    result = _timed_in_nhwc("jax", jax_impl, tmp_path)
    assert result.status == "ok" and result.task.layout == "NHWC"


def test_channels_last_placement_keeps_the_logical_tensor_and_changes_the_strides():
    pytest.importorskip("torch")
    import torch

    impl = registry.get("torch")
    placed = place(impl, TimedCase("torch", "cpu", "float32", CONV, "forward", "channels_last"))
    assert placed["x"].is_contiguous(memory_format=torch.channels_last) and not placed["x"].is_contiguous()
    assert placed["b"].ndim == 1
    nchw = place(impl, TimedCase("torch", "cpu", "float32", CONV, "forward"))
    assert torch.equal(placed["x"], nchw["x"])


def test_a_channels_last_case_is_timed_checked_and_recorded_with_its_layout(tmp_path):
    pytest.importorskip("torch")

    run = Run(replace(get_profile("smoke"), workloads=(CONV,)), {"torch": registry.get("torch")}, ("cpu",),
              ("float32",), ResultFile(tmp_path / "r.json", {"machine": "m"}))
    run.run_case(TimedCase("torch", "cpu", "float32", CONV, "forward", "channels_last"))
    (result,) = storage.read(tmp_path / "r.json").results
    assert result.status == "ok" and result.task.layout == "channels_last" and result.device_time is None


def test_the_peak_is_the_best_probe_and_names_it(monkeypatch):
    rates = {"numpy.matmul": 4.0, "torch.matmul": 1.0}  # seconds for any size: torch is faster

    def probes(device, dtype, precision):
        return {lib: (lambda n, s=s: s * (n / 64) ** 3) for lib, s in rates.items()}

    monkeypatch.setattr(measure, "_gemm_probes", probes)
    peak = measure.gemm_peak("cpu", "float32", 256)
    assert peak["method"].startswith("torch.matmul float32") and "best of 6 probes" in peak["method"]
    assert peak["gflops"] == pytest.approx(2 * 64**3 / 1.0 / 1e9)
    assert len(peak["probes"]) == 6


def test_a_probe_that_cannot_run_is_recorded_and_the_others_count(monkeypatch):
    def broken(n):
        raise RuntimeError("no such GEMM")

    monkeypatch.setattr(measure, "_gemm_probes", lambda d, t, p: {"bad": broken, "good": lambda n: 1.0})
    peak = measure.gemm_peak("cpu", "float16", 64)
    assert peak["method"].startswith("good")
    assert "not run: RuntimeError: no such GEMM" in peak["probes"]["bad float16 16x16x16"]


def test_half_precision_on_the_cpu_uses_torch_when_numpy_has_no_blas_for_it():
    pytest.importorskip("torch")
    assert list(measure._gemm_probes("cpu", "float16", None)) == ["torch.matmul"]
    assert sorted(measure._gemm_probes("cpu", "float32", None)) == ["numpy.matmul", "torch.matmul"]


def test_a_tiny_peak_size_is_refused():
    with pytest.raises(ValueError, match="size=8"):
        measure.gemm_peak("cpu", "float32", 8)


def test_a_gpu_implementation_without_events_gets_amortised_device_time_and_host_latency(tmp_path):
    class FakeGpu(type(registry.get("im2col"))):  # NumPy pretending to be a device: no CUDA events
        name = "fakegpu"
        devices = ("cpu", "cuda")

        def to_device(self, array, device):
            return np.ascontiguousarray(array)

    run = Run(replace(get_profile("smoke"), workloads=(CONV,)), {"fakegpu": FakeGpu()}, ("cuda",),
              ("float32",), ResultFile(tmp_path / "r.json", {"machine": "m"}))
    run.measure_peaks()
    run.run_case(TimedCase("fakegpu", "cuda", "float32", CONV, "forward"))
    doc = storage.read(tmp_path / "r.json")
    (result,) = doc.results
    assert result.device_time.method.startswith("20 calls back to back") and result.host_time.times_s
    assert result.timing is result.device_time and result.status == "ok"
    assert doc.header["peaks"]["cuda/float32"]["gflops"] is None  # no GEMM on a device torch cannot see


def test_a_variant_limited_to_some_dtypes_is_planned_only_in_those(tmp_path):
    impls = {"im2col": registry.get("im2col"), "naive": registry.get("naive")}
    run = Run(replace(get_profile("smoke"), workloads=(CONV,)), impls, ("cpu",), ("float64", "float32"),
              ResultFile(tmp_path / "r.json", {"machine": "m"}), dtype_limits={"im2col": ("float32",)})
    planned = {(c.impl, c.dtype) for c in run.cases}
    assert planned == {("im2col", "float32"), ("naive", "float64"), ("naive", "float32")}
