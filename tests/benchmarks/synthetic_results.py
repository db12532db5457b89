"""A large synthetic result file (for the report's scale test and its measurement).

``python tests/benchmarks/synthetic_results.py ROWS PATH`` writes one schema-2 file of
``ROWS`` timed results: 5 implementations x 3 dtypes x 2 passes on as many workloads as it
takes, 30 rounds each (about 1.4 kB per row, as real files).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

IMPLS = ("im2col", "torch", "jax", "tensorflow", "onnxruntime")
DTYPES = ("float32", "float16", "bfloat16")
PASSES = ("forward", "backward")


def document(rows: int, rounds: int = 30, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    per_workload = len(IMPLS) * len(DTYPES) * len(PASSES)
    results = []
    for i in range(rows):
        w, rest = divmod(i, per_workload)
        impl = IMPLS[rest % len(IMPLS)]
        dtype = DTYPES[rest // len(IMPLS) % len(DTYPES)]
        pass_ = PASSES[rest // (len(IMPLS) * len(DTYPES))]
        median = 1e-3 * (1 + w % 97) * (1 + IMPLS.index(impl) / 4)
        times = (median * rng.lognormal(0, 0.05, rounds)).round(9).tolist()
        results.append({
            "task": {"impl": impl, "device": "cpu", "dtype": dtype, "layout": "NCHW",
                     "workload": f"net{w % 50}.layer{w}@b8", "network": f"net{w % 50}", "layer": f"layer{w}",
                     "op": "conv2d", "pass": pass_, "batch": 8, "x_shape": [8, 64, 56, 56],
                     "w_shape": [64, 64, 3, 3]},
            "status": "ok", "finished": "2026-01-01T00:00:01+00:00",
            "host_time": {"method": "host clock (synthetic)", "times_s": times},
            "device_time": None, "first_call_s": median * 3, "precision": dtype,
            "flops": 10**9 * (1 + w % 7), "flops_kind": "direct-conv FLOPs", "min_bytes": 10**7,
            "peak_gflops": 250.0, "peak_method": "synthetic", "peak_memory_bytes": 2**24,
            "memory_method": "tracemalloc", "check": {"ok": True, "detail": "y: ok"},
            "error": None, "settings": {"rounds": rounds},
        })
    return {"schema": 2, "machine": "synthetic", "profile": "cpu", "command": "synthetic",
            "started": "2026-01-01T00:00:00+00:00", "environment": {"cpu": "synthetic"},
            "implementations": {}, "settings": {},
            "peaks": {"cpu/float32": {"gflops": 250.0, "method": "synthetic"}},
            "results": results, "skipped": []}


def write(rows: int, path: Path) -> Path:
    path.write_text(json.dumps(document(rows)))
    return path


if __name__ == "__main__":
    write(int(sys.argv[1]), Path(sys.argv[2]))
