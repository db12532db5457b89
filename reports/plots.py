"""Matplotlib figures of the results frame, returned as PNG bytes (Agg backend, no display)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


#: Above this many workloads x dtypes in a pass, the speedup plot shows geometric means per
#: implementation and dtype instead of one bar per workload (a plot is read, not searched).
MAX_BARS = 40


def speedups(results: pd.DataFrame, baseline: str) -> bytes | None:
    """Bars: speedup over the baseline, one panel per pass, log scale; per workload where there
    are few, else the geometric mean per implementation and dtype (with the workload count).
    Only speedups beyond the noise (``clear``) are drawn."""
    ok = results[(results["status"] == "ok") & results["speedup"].notna()]
    if ok.empty:
        return None
    plt = _pyplot()
    passes = list(dict.fromkeys(ok["pass"]))
    fig, axes = plt.subplots(len(passes), 1, figsize=(11, 3.6 * len(passes)), squeeze=False)
    for ax, pass_ in zip(axes[:, 0], passes, strict=True):
        part = ok[ok["pass"] == pass_]
        labels = part["workload"] + " " + part["dtype"]
        if labels.nunique() <= MAX_BARS:
            table = part.assign(label=labels).pivot_table(index="label", columns="series", values="speedup",
                                                          aggfunc="first")
            title = f"{pass_}: speedup over {baseline} per workload (median times; > 1 is faster)"
        else:
            logs = part.assign(log=np.log(part["speedup"]))
            table = np.exp(logs.pivot_table(index="dtype", columns="series", values="log", aggfunc="mean"))
            counts = part.groupby("dtype")["workload"].nunique()
            table.index = [f"{d} ({counts[d]} workloads)" for d in table.index]
            title = (f"{pass_}: geometric mean speedup over {baseline} across workloads "
                     "(where the intervals separate; > 1 is faster)")
        table.plot.bar(ax=ax, logy=True, width=0.8)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_ylabel(f"speedup over {baseline}")
        ax.set_xlabel("")
        ax.set_title(title)
        ax.legend(fontsize=7, ncol=4, loc="upper right")
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    return _png(fig)


#: Above this many points a scatter plot draws a random sample of them (seeded), said in its title.
MAX_POINTS = 3000


def _sample(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if len(frame) <= MAX_POINTS:
        return frame, ""
    return frame.sample(MAX_POINTS, random_state=0), f" ({MAX_POINTS} of {len(frame)} points, sampled)"


def roofline(results: pd.DataFrame, runs: list[dict[str, Any]]) -> bytes | None:
    """Throughput against arithmetic intensity, under the measured GEMM and copy roofs."""
    ok = results[(results["status"] == "ok") & (results["op"] == "conv2d")]
    if ok.empty:
        return None
    ok, sampled = _sample(ok)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for label, part in ok.groupby("series"):
        ax.scatter(part["intensity"], part["gflops"], label=label, s=18)
    xs = np.logspace(np.log10(max(ok["intensity"].min() / 2, 1e-2)), np.log10(ok["intensity"].max() * 2), 50)
    for run in runs:
        for key, peak in (run.get("peaks") or {}).items():
            if not peak.get("gflops"):
                continue
            device = key.split("/")[0]
            bw = (run.get("bandwidth") or {}).get(device, {}).get("gbytes_per_s")
            roof = np.minimum(peak["gflops"], bw * xs) if bw else np.full_like(xs, peak["gflops"])
            ax.plot(xs, roof, lw=1, ls="--", label=f"roof {run.get('machine')} {key}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (direct-conv FLOPs / compulsory bytes)")
    ax.set_ylabel("effective GFLOP/s")
    ax.set_title("Roofline: convolution layers (roofs: same-run GEMM peak and copy bandwidth)" + sampled)
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def memory_vs_time(results: pd.DataFrame) -> bytes | None:
    """Peak memory against median time, one marker per benchmark."""
    ok = results[(results["status"] == "ok") & results["peak_memory_mb"].notna()]
    if ok.empty:
        return None
    ok, sampled = _sample(ok)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for (label, pass_), part in ok.groupby(["series", "pass"]):
        ax.scatter(part["median_ms"], part["peak_memory_mb"], label=f"{label} {pass_}", s=18,
                   marker="o" if pass_ == "forward" else "^")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("median time per call (ms)")
    ax.set_ylabel("peak memory during one call (MiB)")
    ax.set_title("Memory vs time (CPU: NumPy allocations via tracemalloc; GPU: torch allocator)" + sampled)
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)
