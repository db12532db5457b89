"""One thread count for every implementation, and thread pools that yield when idle.

Two libraries' thread pools share one process when implementations take turns: NumPy's
OpenBLAS keeps its threads spinning for a while after a GEMM (about 0.1 s by default,
``OPENBLAS_THREAD_TIMEOUT``), an OpenMP pool (torch's) spins before it sleeps
(``OMP_WAIT_POLICY``, Intel's ``KMP_BLOCKTIME``), and the next implementation's threads then
compete with them for the same cores: on two cores the published sample's 1x1 layers had
torch rows with a relative IQR of 70-82% where ``torch.utils.benchmark`` alone had 3%.
Measured (2-core VM under other helpers' load, 2026-12-07; CPU time this process used in the
50 ms after a call, median of 10): after a 512x512 NumPy GEMM 13 ms by default, 0.04 ms with
``OPENBLAS_THREAD_TIMEOUT=4``; after a torch 1x1 convolution 5.9 ms by default, 0.03 ms with
``OMP_WAIT_POLICY=PASSIVE``. Timing each implementation in a worker process of its own would
not remove that (an idle process's spinning pool still holds a core); making idle pools sleep
does, and keeps the turns in one process. Worker processes were tried as well (the parent
keeping the turns, one process per implementation): on the cpu profile's ResNet-50 and
AlexNet rows (63 rows, 2-core AVX-512 VM, quiet, 2026-12-07) the median relative IQR was
5.6%, 5.7%, 5.7% and 6.7% in one process and 5.5%-8.9% (five runs) with a process each;
JAX's and TensorFlow's rows stayed at 10-12% either way (4.8% and 5.9% timed alone), so what
taking turns costs them is not shared process state, and the turns stayed in one process.
So a run sets, before any library loads:

- every implementation's CPU threads to ``--threads N`` (default: the usable cores) the same
  way: intra-op N and inter-op 1 (torch, TensorFlow; ONNX Runtime's sessions run sequentially),
  ONNX Runtime's intra-op pool, XLA's CPU client (``intra_op_parallelism_threads``), and the
  BLAS/OpenMP pools NumPy and the frameworks load (``OMP/MKL/OPENBLAS_NUM_THREADS``,
  threadpoolctl);
- the pools' wait policy to yield: ``OMP_WAIT_POLICY=PASSIVE``, ``KMP_BLOCKTIME=0``,
  ``OPENBLAS_THREAD_TIMEOUT=4`` (the shortest spin OpenBLAS accepts).

The environment variables only take effect before a library loads, so ``python -m benchmarks
run`` starts itself again with them when they are not already set (:func:`restart_with`);
what was applied, and how, is recorded in the result file (:func:`record`) and each result
carries its thread count.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from implementations.host import usable_cores

#: Wait policies that make an idle pool sleep instead of spinning on a core.
YIELDING = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0", "OPENBLAS_THREAD_TIMEOUT": "4",
            "CONVCERT_ORT_SPINNING": "0"}  # ONNX Runtime's session.intra_op.allow_spinning
#: Set in the restarted process: the environment below was in force before any library loaded.
MARK = "CONVCERT_BENCH_THREADS"


#: ``--threads idle`` (:func:`idle_threads`): the count chosen before the restart, and the CPUs
#: others kept busy when it was chosen.
IDLE_MARK = "CONVCERT_BENCH_IDLE"


def default_threads() -> int:
    return usable_cores()


def idle_threads(others_cpus: float | None, usable: int | None = None) -> int:
    """``--threads idle``: the usable cores other processes left idle at the start, at least 1
    (six busy processes on two cores leave 1)."""
    usable = usable_cores() if usable is None else usable
    if others_cpus is None:
        return usable
    return max(1, min(usable, round(usable - others_cpus)))


def chosen_idle() -> tuple[int, float | None] | None:
    """In a process restarted for ``--threads idle``: (threads chosen, others' CPUs measured)."""
    mark = os.environ.get(IDLE_MARK)
    if not mark or os.environ.get(MARK) is None:
        return None
    others = float(mark)
    return int(os.environ[MARK]), (None if others < 0 else others)


def environment_for(threads: int) -> dict[str, str]:
    """The variables that give every library ``threads`` CPU threads and yielding pools."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads={threads!r}: must be an integer >= 1")
    n = str(threads)
    xla = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                   if not f.startswith("--xla_cpu_multi_thread_eigen") and "intra_op_parallelism" not in f)
    return {
        **YIELDING,
        "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
        "CONVCERT_TF_THREADS": n, "CONVCERT_ORT_THREADS": n,
        "XLA_FLAGS": f"{xla} --xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                     f"intra_op_parallelism_threads={n}".strip(),
        MARK: n,
    }


def restart_with(threads: int, argv: list[str], extra: dict[str, str] | None = None) -> None:
    """Start ``python -m benchmarks ARGV`` again with :func:`environment_for` ``threads`` in its
    environment, unless it is already in force or this process cannot be replaced (inside a
    test: ``PYTEST_CURRENT_TEST`` is set). Returns only when no restart was needed or possible."""
    if os.environ.get(MARK) == str(threads) or os.environ.get("PYTEST_CURRENT_TEST"):
        return
    env = {**os.environ, **environment_for(threads), **(extra or {})}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *argv], env)


def apply(threads: int) -> dict[str, Any]:
    """Set the thread counts of the libraries already loaded in this process (torch, the
    BLAS/OpenMP pools); variables for those not loaded yet. Returns what was set, as recorded."""
    before_load = os.environ.get(MARK) == str(threads)
    for key, value in environment_for(threads).items():
        if key != MARK:
            os.environ[key] = value  # for the libraries not loaded yet
    applied: dict[str, Any] = {"threads": threads, "inter_op": 1, "before_libraries_loaded": before_load,
                               "environment": {k: os.environ.get(k) for k in environment_for(threads)
                                               if k != MARK}}
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
        applied["threadpoolctl"] = f"limits({threads}) on the BLAS/OpenMP pools loaded"
    except ImportError:
        applied["threadpoolctl"] = "not installed"
    return applied


def apply_to_frameworks(threads: int) -> dict[str, Any]:
    """Thread counts of frameworks loaded now (after the implementations loaded), read back."""
    out: dict[str, Any] = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # parallel work already ran: its inter-op pool stays
            pass
        out["torch"] = {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        out["tensorflow"] = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                             "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(threads)  # pools the frameworks brought (their OpenMP, MKL)
        out["pools"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "filepath")}
                        for p in threadpool_info()]
    except ImportError:
        pass
    return out
