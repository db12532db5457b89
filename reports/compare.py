"""Comparisons on the results frame: speedups, best and worst, regressions against a saved run."""

from __future__ import annotations

import pandas as pd

from .data import KEY

DEFAULT_BASELINES = ("im2col", "torch")


def choose_baseline(results: pd.DataFrame, requested: str | None) -> str | None:
    impls = list(results["impl"].unique()) if not results.empty else []
    if requested:
        if requested not in impls:
            raise ValueError(f"--speedup-baseline {requested}: not in the results (have {sorted(impls)})")
        return requested
    return next((b for b in DEFAULT_BASELINES if b in impls), impls[0] if impls else None)


def add_speedups(results: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """``speedup``: baseline median / this median, same machine, device, dtype, workload, pass.

    Only results whose answer was right take part; a wrong or failed one has no speedup.
    """
    out = results.copy()
    out["speedup"] = float("nan")
    if baseline is None or out.empty:
        return out
    ok = out["status"] == "ok"
    base = out[ok & (out["impl"] == baseline)].set_index(KEY)["median_ms"]
    joined = out[KEY].merge(base.rename("base_ms").reset_index(), on=KEY, how="left")
    out["speedup"] = (joined["base_ms"].to_numpy() / out["median_ms"].to_numpy())
    out.loc[~ok, "speedup"] = float("nan")
    return out


def rank(results: pd.DataFrame) -> pd.DataFrame:
    """``rank``: 'best' / 'worst' by median time among right answers of each comparison."""
    out = results.copy()
    out["rank"] = ""
    ok = out[out["status"] == "ok"]
    for _, group in ok.groupby(KEY):
        if len(group) < 2:
            continue
        out.loc[group["median_ms"].idxmin(), "rank"] = "best"
        out.loc[group["median_ms"].idxmax(), "rank"] = "worst"
    return out


def regressions(current: pd.DataFrame, baseline: pd.DataFrame, threshold_pct: float) -> pd.DataFrame:
    """Benchmarks slower than the saved run by more than ``threshold_pct``, or newly wrong.

    Matched on implementation, device, dtype, workload and pass (not machine: a saved run
    is usually from the same machine under another name or date).
    """
    if threshold_pct < 0:
        raise ValueError(f"--threshold {threshold_pct}: must be >= 0 (percent)")
    key = ["impl", "device", "dtype", "workload", "pass"]
    cols = key + ["median_ms", "status"]
    merged = current[cols].merge(baseline[cols], on=key, suffixes=("", "_baseline"))
    merged["change_pct"] = 100 * (merged["median_ms"] / merged["median_ms_baseline"] - 1)
    slower = merged["change_pct"] > threshold_pct
    broke = (merged["status"] != "ok") & (merged["status_baseline"] == "ok")
    out = merged[slower | broke].copy()
    out["why"] = ["answer became " + s if b else f"{c:+.1f}% > {threshold_pct:g}%"
                  for s, b, c in zip(out["status"], broke[slower | broke], out["change_pct"])]
    return out.reset_index(drop=True)
