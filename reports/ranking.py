"""Rankings on the results frame: speedups over a baseline implementation, best and worst.

(The regression gate against a saved run is :mod:`reports.gate`.)
"""

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

    The baseline is its implementation's fastest layout of the comparison. Only results
    whose answer was right take part; a wrong or failed one has no speedup.
    """
    out = results.copy()
    out["speedup"] = float("nan")
    if baseline is None or out.empty:
        return out
    ok = out["status"] == "ok"
    base = out[ok & (out["impl"] == baseline)].groupby(KEY)["median_ms"].min()
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
