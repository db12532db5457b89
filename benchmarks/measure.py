"""Measuring aside from the timed rounds: first call, device peak, peak memory, rate probes.

Every timed region ends with the implementation's ``ready(result)`` (by default its
``synchronize``) so that queued GPU work, JAX's asynchronous dispatch or a lazy library's
deferred graph is inside it; that decision is made here, once.
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np


def synchronized(call: Callable[[], Any], sync: Callable[[], None]) -> Callable[[], Any]:
    """``call`` followed by ``sync``: what a timed region of a GEMM or copy probe runs."""

    def run() -> Any:
        out = call()
        sync()
        return out

    return run


def ready_of(impl: Any, device: str) -> Callable[[Any], None]:
    """What ends a timed call of ``impl`` on ``device``: its own ``ready(result)`` where it
    defines one, else the contract's default, a ``synchronize`` of the device (only the case's
    device: not every device the implementation runs on)."""
    from implementations import Implementation

    if getattr(type(impl), "ready", None) is Implementation.ready:
        return lambda _result: impl.synchronize(device)
    return impl.ready


def until_ready(call: Callable[[], Any], ready: Callable[[Any], None]) -> Callable[[], Any]:
    """``call`` followed by ``ready(its result)``: what every timed call of an implementation runs
    (the work, not its promise)."""

    def run() -> Any:
        out = call()
        ready(out)
        return out

    return run


def time_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


#: :func:`settle`: the process is idle when its threads used under this share of one CPU
#: over a poll of SETTLE_POLL_S.
IDLE_SHARE = 0.1
SETTLE_POLL_S = 0.01


def settle(max_s: float = 1.0) -> float:
    """Wait until this process's threads stop using the CPU, at most ``max_s``; the seconds waited.

    A framework's thread pool spins for a while after a call (OpenBLAS about 0.1 s, ONNX
    Runtime's and Eigen's pools a few milliseconds) and slows the next implementation's
    pool down on a small machine. The process's CPU time (every thread's) is watched over
    polls of :data:`SETTLE_POLL_S`; idle is a poll in which it grew by under
    :data:`IDLE_SHARE` of the poll."""
    start = time.perf_counter()
    while True:
        cpu = time.process_time()
        time.sleep(SETTLE_POLL_S)
        waited = time.perf_counter() - start
        if time.process_time() - cpu < IDLE_SHARE * SETTLE_POLL_S or waited >= max_s:
            return waited


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: the first call may compile or autotune
    return statistics.median(time_once(fn)[0] for _ in range(repeats))


def min_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    return min(time_once(fn)[0] for _ in range(repeats))


#: GEMM sizes the peak probe tries, as fractions of the profile's ``gemm_size``.
PEAK_SIZE_FRACTIONS = (0.25, 0.5, 1.0)


def gemm_peak(device: str, dtype: str, size: int, precision: str | None = None) -> dict[str, Any]:
    """Best throughput of square GEMMs on the device for ``dtype``: the run's peak reference.

    The best over several sizes (a quarter, half and all of ``size``) and every library
    at hand: NumPy's BLAS and torch on the CPU, torch on CUDA. Within one probe the
    fastest of several calls counts, as the least disturbed by other processes.
    ``precision="tf32"`` measures float32 GEMMs on TF32 tensor cores (torch on CUDA), the
    peak of implementations that declare TF32. Returns ``gflops``, ``method`` (the best
    probe) and ``probes`` (every probe's GFLOP/s or why it did not run).
    """
    if size < 16:
        raise ValueError(f"size={size}: must be >= 16")
    probes: dict[str, float | str] = {}
    for n in sorted({max(16, int(size * f)) for f in PEAK_SIZE_FRACTIONS}):
        for library, probe in _gemm_probes(device, dtype, precision).items():
            label = f"{library} {precision or dtype} {n}x{n}x{n}"
            try:
                probes[label] = 2 * n**3 / probe(n) / 1e9
            except (ImportError, RuntimeError, TypeError) as exc:
                probes[label] = f"not run: {type(exc).__name__}: {exc}"
    rates = {k: v for k, v in probes.items() if isinstance(v, float)}
    if not rates:
        raise RuntimeError(f"no GEMM probe ran for {device}/{precision or dtype}: {probes}")
    best = max(rates, key=lambda k: rates[k])
    return {"gflops": rates[best], "method": f"{best} (best of {len(probes)} probes)", "probes": probes}


def _gemm_probes(device: str, dtype: str, precision: str | None) -> dict[str, Callable[[int], float]]:
    """Per library, a function of the size returning the best seconds of one GEMM."""
    probes: dict[str, Callable[[int], float]] = {}
    if device == "cpu" and dtype in ("float32", "float64") and precision in (None, dtype):
        probes["numpy.matmul"] = lambda n: _numpy_gemm(n, dtype)
    if _torch_usable(device):
        probes["torch.matmul"] = lambda n: _torch_gemm(n, device, dtype, precision == "tf32")
    if device == "cpu" and not probes:  # float16/bfloat16 without torch: NumPy float32, said so
        probes["numpy.matmul (float32: no half-precision BLAS)"] = lambda n: _numpy_gemm(n, "float32")
    return probes


def _torch_usable(device: str) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return device == "cpu" or torch.cuda.is_available()


def _numpy_gemm(n: int, dtype: str) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    return min_time(lambda: a @ b, 5)


def _torch_gemm(n: int, device: str, dtype: str, tf32: bool) -> float:
    import torch

    a = torch.randn(n, n, device=device, dtype=getattr(torch, dtype))
    b = torch.randn(n, n, device=device, dtype=getattr(torch, dtype))
    if device == "cpu":
        return min_time(lambda: a @ b, 5)
    matmul = torch.backends.cuda.matmul
    # torch >= 2.9 has fp32_precision; mixing it with allow_tf32 is an error.
    flag, value = ("fp32_precision", "tf32" if tf32 else "ieee") if hasattr(matmul, "fp32_precision") \
        else ("allow_tf32", tf32)
    before = getattr(matmul, flag)
    setattr(matmul, flag, value)
    try:
        return min_time(synchronized(lambda: a @ b, torch.cuda.synchronize), 10)
    finally:
        setattr(matmul, flag, before)


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

        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        tsrc = torch.ones(n, device=device)
        tdst = torch.empty_like(tsrc)
        seconds = median_time(synchronized(lambda: tdst.copy_(tsrc), torch.cuda.synchronize), 10)
        method = f"torch copy_ of {megabytes} MiB, median of 10"
    return {"gbytes_per_s": 2 * n * 4 / seconds / 1e9, "method": method}


def peak_memory(fn: Callable[[], Any], device: str, impl_name: str,
                torch_tensors: bool) -> tuple[int | None, str]:
    """Peak bytes allocated during one call, and how that was measured.

    CPU: ``tracemalloc`` (NumPy reports its array allocations to it), trusted only when
    the outputs are NumPy arrays; a framework's own allocator (torch, TensorFlow, XLA) is
    invisible to it, so such peaks are reported as not measured. CUDA: torch's caching
    allocator high-water mark above the bytes already allocated, when torch is loaded;
    other frameworks' allocators are not queried.
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
