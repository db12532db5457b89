"""Measuring aside from the timed rounds: first call, device peak, peak memory, rate probes.

Every timed region ends with the implementation's ``synchronize`` so that queued GPU
work is inside it; that decision is made here, once.
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from typing import Any, Callable

import numpy as np


def synchronized(call: Callable[[], Any], sync: Callable[[], None]) -> Callable[[], Any]:
    """``call`` followed by ``sync``: what every timed region runs."""

    def run() -> Any:
        out = call()
        sync()
        return out

    return run


def time_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: the first call may compile or autotune
    return statistics.median(time_once(fn)[0] for _ in range(repeats))


def min_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    return min(time_once(fn)[0] for _ in range(repeats))


def gemm_peak(device: str, dtype: str, size: int) -> dict[str, Any]:
    """Throughput of a square GEMM of ``size`` on the device: the run's peak reference.

    The fastest of several calls: a peak is what the device can do, and the fastest call
    is the one least disturbed by other processes.

    CPU: ``numpy.matmul`` (NumPy's BLAS); float16 and bfloat16 have no BLAS GEMM in
    NumPy, so their CPU peak is the float32 one, and the record says so. CUDA:
    ``torch.matmul`` in the dtype, synchronized.
    """
    flops = 2 * size**3
    if device == "cpu":
        gemm_dtype = dtype if dtype in ("float32", "float64") else "float32"
        rng = np.random.default_rng(0)
        a = rng.standard_normal((size, size)).astype(gemm_dtype)
        b = rng.standard_normal((size, size)).astype(gemm_dtype)
        seconds = min_time(lambda: a @ b, 7)
        method = f"numpy.matmul {gemm_dtype} {size}x{size}x{size}, best of 7"
    else:
        import torch

        a = torch.randn(size, size, device=device, dtype=getattr(torch, dtype))
        b = torch.randn(size, size, device=device, dtype=getattr(torch, dtype))
        seconds = min_time(synchronized(lambda: a @ b, torch.cuda.synchronize), 10)
        method = f"torch.matmul {dtype} {size}x{size}x{size} on {torch.cuda.get_device_name()}, best of 10"
    return {"gflops": flops / seconds / 1e9, "method": method}


def bandwidth(device: str, megabytes: int) -> dict[str, Any]:
    """Copy bandwidth (read + write bytes per second) of a large array: the roofline's slope."""
    n = megabytes * 2**20 // 4
    if device == "cpu":
        src = np.ones(n, np.float32)
        dst = np.empty_like(src)
        seconds = median_time(lambda: np.copyto(dst, src), 5)
        method = f"numpy.copyto of {megabytes} MiB, median of 5"
    else:
        import torch

        src = torch.ones(n, device=device)
        dst = torch.empty_like(src)
        seconds = median_time(synchronized(lambda: dst.copy_(src), torch.cuda.synchronize), 10)
        method = f"torch copy_ of {megabytes} MiB, median of 10"
    return {"gbytes_per_s": 2 * n * 4 / seconds / 1e9, "method": method}


def peak_memory(fn: Callable[[], Any], device: str, impl_name: str, torch_tensors: bool) -> tuple[int | None, str]:
    """Peak bytes allocated during one call, and how that was measured.

    CPU: ``tracemalloc`` (NumPy reports its array allocations to it), trusted only when
    the outputs are NumPy arrays; a framework's own allocator (torch, TensorFlow, XLA) is
    invisible to it, so such peaks are reported as not measured. CUDA: torch's caching allocator high-water mark above the bytes already
    allocated, when torch is loaded; other frameworks' allocators are not queried.
    """
    if device == "cpu":
        tracemalloc.start()
        try:
            out = fn()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        outs = out if isinstance(out, tuple) else (out,)
        produced = sum(o.nbytes for o in outs if isinstance(o, np.ndarray))
        if not all(isinstance(o, np.ndarray) for o in outs) or peak < produced:
            return None, f"not visible to tracemalloc ({impl_name} allocates outside NumPy)"
        return int(peak), "tracemalloc peak (NumPy allocations)"
    torch = sys.modules.get("torch")
    if not torch_tensors or torch is None or not torch.cuda.is_available():
        return None, f"the allocator {impl_name} uses is not queried (torch's only)"
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    return int(peak), "torch.cuda.max_memory_allocated above the inputs"
