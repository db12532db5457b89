"""The environment a run measured on: CPU, threads, BLAS, GPU, driver, CUDA, cuDNN.

Framework versions and flags come from each implementation's ``environment()``; the GPU
facts come from torch when it is installed (imported only when a CUDA run asks).
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from typing import Any

import numpy as np

from implementations.host import cpu_name, usable_cores

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")


def cpu_model() -> str:
    """Brand string from py-cpuinfo, else the model name the adapters record."""
    try:
        import cpuinfo  # py-cpuinfo

        brand = cpuinfo.get_cpu_info().get("brand_raw")
        if brand:
            return str(brand)
    except Exception:  # py-cpuinfo missing or failing on an odd platform
        pass
    return cpu_name()


def blas() -> str:
    """NumPy's BLAS as its build configuration names it."""
    try:
        config = np.show_config(mode="dicts")
        info = config["Build Dependencies"]["blas"]
        return f"{info.get('name')} {info.get('version')}".strip()
    except Exception:  # older NumPy without mode="dicts"
        return "unknown"


def thread_pools() -> list[dict[str, Any]]:
    """BLAS and OpenMP pools loaded in this process (threadpoolctl), with their thread counts."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "num_threads", "version", "architecture")
    return [{k: pool.get(k) for k in keep if pool.get(k) is not None} for pool in threadpool_info()]


def gpu() -> dict[str, Any]:
    """GPU name, driver, CUDA and cuDNN versions (empty without torch + CUDA)."""
    try:
        import torch
    except ImportError:
        return {}
    if not torch.cuda.is_available():
        return {}
    props = torch.cuda.get_device_properties(0)
    info: dict[str, Any] = {
        "gpu": props.name,
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        lines = out.stdout.strip().splitlines() if out.returncode == 0 else []
        info["driver"] = lines[0] if lines else "unknown"
    return info


def collect(devices: tuple[str, ...]) -> dict[str, Any]:
    """Everything about this machine that affects the numbers."""
    usable = usable_cores()
    env: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "thread_variables": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
        "numpy": np.__version__,
        "blas": blas(),
        "thread_pools": thread_pools(),
    }
    if "cuda" in devices:
        env.update(gpu())
    return env
