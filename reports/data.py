"""Benchmark result files -> typed records -> pandas DataFrames (the table every rendering reads).

Several files (several machines, or several runs) merge into one frame with a
``machine`` column; runs are kept as their headers for the "how measured" notes. A file
that cannot be read, or holds no result, is reported in one line naming it
(:attr:`BenchData.problems`) and the other files still render.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.records import BenchmarkResult, Timing
from benchmarks.stats import NOISE_THRESHOLD, measurement_columns
from benchmarks.storage import RunDocument, read

#: One comparison: the same problem on the same machine, device and dtype.
KEY = ["machine", "device", "dtype", "workload", "pass"]

#: Why a busy run with matched threads is ranked: the measurement that allowed it.
MATCHED_RULE = (
    "its threads were matched to the cores the load left idle (--threads idle), under which a busy "
    "run's paired rankings agreed with a quiet run's on 96.5% of the pairs both decided (100% with the "
    "quiet run at the same threads; six busy processes on a 2-core VM, the cpu profile's ResNet-50 and "
    "AlexNet rows), so its rows are ranked and given speedups; its times are slower than an idle "
    "machine's, and the regression gate judges no slowdown of it"
)


def threads_matched(header: dict[str, Any]) -> bool:
    """Whether a run's threads were matched to the idle cores (``--threads idle``)."""
    threads = header.get("threads")
    return isinstance(threads, dict) and str(threads.get("chosen", "")).startswith("--threads idle")


@dataclass
class BenchData:
    results: pd.DataFrame  # one row per timed (or failed) benchmark
    skipped: pd.DataFrame  # one row per case not timed, with the reason
    runs: list[dict[str, Any]]  # result-file headers (environment, settings, peaks) and "file"
    documents: list[RunDocument] = field(default_factory=list)  # the typed records
    problems: list[str] = field(default_factory=list)  # one line per file left out, naming it


def find_files(paths: Iterable[str | Path]) -> tuple[list[RunDocument], list[str]]:
    """Result files named by ``paths``, read, and a line per file left out.

    A file is taken as is (an unreadable or empty one is a problem line). A folder gives,
    per (machine, profile), its newest run that holds at least one result, so that stale
    runs in ``results/`` do not mix in and a run that died before its first result does
    not hide the one before it.
    """
    found: list[RunDocument] = []
    problems: list[str] = []
    for path in map(Path, paths):
        if path.is_file():
            doc = _read(path, problems)
            if doc is not None and _has_results(doc, problems):
                found.append(doc)
        elif path.is_dir():
            newest: dict[tuple[str, str], RunDocument] = {}
            for f in sorted(path.glob("*.json")):
                doc = _read(f, problems)
                if doc is None or not _has_results(doc, problems):
                    continue
                key = (doc.machine, str(doc.header.get("profile")))
                if key not in newest or _started(doc) >= _started(newest[key]):
                    newest[key] = doc
            found.extend(newest.values())
        else:
            raise ValueError(f"--results {path}: no such file or folder")
    return found, problems


def _read(path: Path, problems: list[str]) -> RunDocument | None:
    try:
        return read(path)
    except (ValueError, OSError) as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        problems.append(f"{path}: left out: {reason}")
        return None


def _has_results(doc: RunDocument, problems: list[str]) -> bool:
    if doc.results:
        return True
    problems.append(f"{doc.path}: left out: no results (the run ended before its first benchmark finished)")
    return False


def _started(doc: RunDocument) -> tuple[str, str]:
    return (str(doc.header.get("started", "")), doc.path.name)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def peak_highs(header: dict[str, Any]) -> dict[str, float]:
    """Per peak key (``cpu/float32``), the highest GEMM rate the run measured: at its start
    or its end (``end_gflops``), whichever was faster."""
    out: dict[str, float] = {}
    for key, peak in (header.get("peaks") or {}).items():
        rates = [v for v in (peak.get("gflops"), peak.get("end_gflops")) if isinstance(v, (int, float))]
        if rates:
            out[key] = float(max(rates))
    return out


def row(result: BenchmarkResult, machine: str, peak_high: float = 0.0, busy: bool = False,
        run_file: str = "") -> dict[str, Any]:
    """One result as a flat row, before its statistics (:func:`add_statistics` adds them for
    all rows at once). ``peak_high``: the run's highest GEMM rate of this precision (start or end);
    ``busy``: the run's load record says other processes kept the machine busy."""
    t = result.task
    timing, host = result.timing, result.host_time
    return {
        "machine": machine, "impl": t.impl, "device": t.device, "dtype": t.dtype, "layout": t.layout,
        "workload": t.workload, "network": t.network, "layer": t.layer, "op": t.op, "pass": t.pass_,
        "batch": t.batch, "status": result.status, "precision": result.precision, "flops": result.flops,
        "flops_kind": result.flops_kind, "intensity": result.intensity,
        "peak_gflops": _nan(result.peak_gflops), "peak_high": max(result.peak_gflops or 0.0, peak_high),
        "memory_method": result.memory_method, "error": result.error,
        "timer": timing.method if timing else None,
        "device_timed": result.device_time is not None,
        "first_call_ms": _nan(result.first_call_s) * 1e3,
        "peak_memory_mb": _nan(result.peak_memory_bytes) / 2**20,
        "check": result.check.get("detail"),
        "decided_by": result.settings.get("decided_by"),
        "error_ratio": result.check.get("worst_ratio"),
        "busy": busy, "_times": timing, "_host": host, "_run": run_file,
        "_turns": _turns(result),
    }


def _turns(result: BenchmarkResult) -> tuple[tuple[float, ...], tuple[int, ...]] | None:
    """(times per call, turn of each) of a result timed in turns on the host (paired
    comparisons, :mod:`benchmarks.precision.paired`); None for device-timed or older results."""
    turns = result.settings.get("turns")
    host = result.host_time
    if result.device_time is not None or host is None or not isinstance(turns, list):
        return None
    if len(turns) != len(host.times_s) or not all(isinstance(t, int) for t in turns):
        return None
    return host.times_s, tuple(turns)


def _summaries(timings: list[Timing | None]) -> dict[str, np.ndarray]:
    """Statistics of each timing: computed in bulk from raw times, or a stored summary (schema 1)."""
    stats = measurement_columns([t.times_s if t is not None and t.times_s else () for t in timings])
    for i, t in enumerate(timings):
        if t is not None and not t.times_s:
            s = t.summary
            for key in ("median_s", "iqr_s", "min_s", "mean_s", "ci_low_s", "ci_high_s"):
                stats[key][i] = getattr(s, key)
            stats["rounds"][i] = s.rounds
    return stats


def add_statistics(frame: pd.DataFrame) -> pd.DataFrame:
    """Median, interval, IQR, rates and the above-peak verdict of every row, vectorised."""
    m = _summaries(list(frame["_times"]))
    host = _summaries(list(frame["_host"]))
    out = frame.drop(columns=["_times", "_host"])
    out["median_ms"] = m["median_s"] * 1e3
    out["ci_low_ms"] = m["ci_low_s"] * 1e3
    out["ci_high_ms"] = m["ci_high_s"] * 1e3
    out["iqr_ms"] = m["iqr_s"] * 1e3
    with np.errstate(divide="ignore", invalid="ignore"):
        out["relative_iqr"] = m["iqr_s"] / m["median_s"]
        out["gflops"] = out["flops"].to_numpy(dtype=float) / m["median_s"] / 1e9
        slow = np.where(np.isfinite(m["ci_high_s"]), m["ci_high_s"], m["median_s"])
        slowest_rate = out["flops"].to_numpy(dtype=float) / slow / 1e9
    out["noisy"] = out["relative_iqr"] > NOISE_THRESHOLD
    out["rounds"] = m["rounds"]
    out["host_ms"] = host["median_s"] * 1e3
    conv = (out["op"] == "conv2d").to_numpy()
    has_peak = out["peak_gflops"].notna().to_numpy() & (out["peak_gflops"].fillna(0).to_numpy() > 0)
    out["pct_peak"] = np.where(conv & has_peak, 100 * out["gflops"] / out["peak_gflops"], np.nan)
    peak_high = out["peak_high"].to_numpy()
    out["above_peak"] = conv & (peak_high > 0) & (slowest_rate > peak_high)
    return out


def _peak_of(result: BenchmarkResult, peaks: dict[str, float] | None) -> float:
    if not peaks:
        return 0.0
    t = result.task
    tf32 = result.precision == "tf32" and t.device == "cuda"
    return peaks.get(f"{t.device}/{'tf32' if tf32 else t.dtype}", 0.0)


_EMPTY_COLUMNS = ["machine", "impl", "device", "dtype", "layout", "workload", "pass", "status", "_times",
                  "_host", "flops", "op", "peak_gflops", "peak_high", "busy", "_run", "_turns"]


def load(paths: Iterable[str | Path]) -> BenchData:
    paths = list(paths)
    docs, problems = find_files(paths)
    if not docs:
        why = ("; ".join(problems) + ". ") if problems else ""
        raise ValueError(f"--results {[str(p) for p in paths]}: no result files found ({why}"
                         "run `python -m benchmarks run` first)")
    rows, skips, runs = [], [], []
    docs = sorted(docs, key=lambda d: (d.started, d.path.name))  # a later run's row wins, whatever the order
    for doc in docs:
        problems += doc.problems
        runs.append({**doc.header, "file": str(doc.path)})
        peaks = peak_highs(doc.header)
        # a busy run ranks nothing, unless its threads were matched to the idle cores
        busy = bool((doc.header.get("load") or {}).get("busy")) and not threads_matched(doc.header)
        rows += [row(r, doc.machine, _peak_of(r, peaks), busy, str(doc.path)) for r in doc.results]
        skips += [{"machine": doc.machine, **s.task.to_json(), "reason": s.reason} for s in doc.skipped]
    frame = pd.DataFrame(rows, columns=None if rows else _EMPTY_COLUMNS)
    results = add_statistics(frame.drop_duplicates(subset=KEY + ["impl", "layout"], keep="last"))
    results = results.reset_index(drop=True)
    return BenchData(results, pd.DataFrame(skips), runs, docs, problems)


def with_series(frame: pd.DataFrame, like: pd.DataFrame | None = None) -> pd.DataFrame:
    """``series``: the column label of a row in tables and plots: the implementation, its
    layout where that implementation ran in more than one, its machine where there are several.

    ``like`` is the frame that decides both (the results, when labelling skipped cases).
    """
    like = frame if like is None else like
    if frame.empty or like.empty:
        return frame.assign(series=pd.Series(dtype=str))
    layouts = like.groupby("impl")["layout"].nunique()
    several = frame["impl"].isin(set(layouts[layouts > 1].index))
    label = frame["impl"].astype(str)
    label = label.where(~several, label + " [" + frame["layout"].astype(str) + "]")
    if like["machine"].nunique() > 1:
        label = label + " @ " + frame["machine"].astype(str)
    return frame.assign(series=label)
