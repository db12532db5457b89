"""Benchmark result files -> pandas DataFrames (the data every rendering reads).

Several files (several machines, or several runs) merge into one frame with a
``machine`` column; runs are kept as their headers for the "how measured" notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from benchmarks.storage import read

KEY = ["machine", "device", "dtype", "workload", "pass"]


@dataclass
class BenchData:
    results: pd.DataFrame  # one row per timed (or failed) benchmark
    skipped: pd.DataFrame  # one row per case not timed, with the reason
    runs: list[dict[str, Any]]  # result-file headers (environment, settings, peaks)


def find_files(paths: Iterable[str | Path]) -> list[Path]:
    """Result files named by ``paths``: a file as is; a folder gives its newest file per
    (machine, profile), so that stale runs in ``results/`` do not mix in."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            newest: dict[tuple, tuple[str, Path]] = {}
            for f in sorted(path.glob("*.json")):
                try:
                    doc = read(f)
                except (ValueError, OSError):
                    continue
                key = (doc.get("machine"), doc.get("profile"))
                if key not in newest or doc.get("started", "") >= newest[key][0]:
                    newest[key] = (doc.get("started", ""), f)
            found.extend(f for _, f in newest.values())
        else:
            raise ValueError(f"--results {path}: no such file or folder")
    return found


def _flatten(row: dict[str, Any], machine: str) -> dict[str, Any]:
    m = row.get("measurement") or {}
    check = row.get("check") or {}
    mem = row.get("peak_memory_bytes")
    return {
        "machine": machine,
        **{k: row.get(k) for k in ("impl", "device", "dtype", "workload", "network", "layer", "op", "pass",
                                    "batch", "status", "precision", "flops", "flops_kind", "intensity",
                                    "peak_gflops", "memory_method", "error")},
        "pct_peak": row.get("pct_peak") if row.get("pct_peak") is not None else float("nan"),
        "gflops": row.get("gflops") if row.get("gflops") is not None else float("nan"),
        "median_ms": m.get("median_s", float("nan")) * 1e3,
        "iqr_ms": m.get("iqr_s", float("nan")) * 1e3,
        "relative_iqr": m.get("relative_iqr"),
        "noisy": m.get("noisy"),
        "rounds": m.get("rounds"),
        "first_call_ms": (row.get("first_call_s") or float("nan")) * 1e3,
        "peak_memory_mb": mem / 2**20 if mem is not None else float("nan"),
        "check": check.get("detail"),
        "error_ratio": check.get("worst_ratio"),
    }


def load(paths: Iterable[str | Path]) -> BenchData:
    files = find_files(paths)
    if not files:
        raise ValueError(f"--results {list(paths)}: no result files found (run `python -m benchmarks run` first)")
    rows, skips, runs = [], [], []
    for f in files:
        doc = read(f)
        machine = doc.get("machine", f.stem)
        runs.append({**{k: v for k, v in doc.items() if k not in ("results", "skipped")}, "file": str(f)})
        rows += [_flatten(r, machine) for r in doc["results"]]
        skips += [{"machine": machine, **s} for s in doc["skipped"]]
    results = pd.DataFrame(rows)
    if not results.empty:
        results = results.drop_duplicates(subset=KEY + ["impl"], keep="last")
    return BenchData(results, pd.DataFrame(skips), runs)
