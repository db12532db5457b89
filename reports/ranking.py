"""Rankings on the results frame: speedups over a baseline implementation, best and worst.

Only differences beyond the noise count: a speedup is given where the two medians' 95%
confidence intervals (``ci_low_ms``/``ci_high_ms``) do not overlap, else the row says "no
clear difference"; a row is "best" only when its interval lies wholly below every other
right answer's, "worst" only when wholly above. Rows of a run measured on a busy machine
(``busy``) are neither ranked nor given a speedup: load slows implementations unevenly (on
two cores with six busy processes torch's medians were 12x slower, TensorFlow's 4x, and 6
of 58 winners changed), so a ranking would change with the load, and a ranking must not. (The regression gate
against a saved run is :mod:`reports.gate`.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
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
    whose answer was right take part; a wrong or failed one has no speedup. ``clear`` says
    whether the row's interval and the baseline's are apart; where they overlap the speedup
    is NaN (rendered "no clear difference").
    """
    out = results.copy()
    out["speedup"] = float("nan")
    out["clear"] = False
    if baseline is None or out.empty:
        return out
    ok = (out["status"] == "ok") & ~_busy(out)
    mine = out[ok & (out["impl"] == baseline)]
    base = mine.loc[mine.groupby(KEY)["median_ms"].idxmin(), [*KEY, "median_ms", "ci_low_ms", "ci_high_ms"]]
    base = base.rename(columns={"median_ms": "base_ms", "ci_low_ms": "base_low", "ci_high_ms": "base_high"})
    joined = out[KEY].merge(base, on=KEY, how="left")
    apart = (out["ci_high_ms"].to_numpy() < joined["base_low"].to_numpy()) | (
        joined["base_high"].to_numpy() < out["ci_low_ms"].to_numpy())
    out["clear"] = apart & ok.to_numpy()
    ratio = joined["base_ms"].to_numpy() / out["median_ms"].to_numpy()
    out["speedup"] = np.where(out["clear"], ratio, np.nan)
    return out


def rank(results: pd.DataFrame) -> pd.DataFrame:
    """``rank``: 'best' / 'worst' among right answers of each comparison, only where the
    fastest's (slowest's) interval is apart from every other's; vectorised over groups."""
    out = results.copy()
    out["rank"] = ""
    ok = out[(out["status"] == "ok") & ~_busy(out)]
    if ok.empty:
        return out
    g = ok.groupby(KEY, sort=False)
    size = g["median_ms"].transform("size")
    fastest = ok["median_ms"] == g["median_ms"].transform("min")
    slowest = ok["median_ms"] == g["median_ms"].transform("max")
    # the lowest upper bound among the others: second-lowest of the group when this row holds the lowest
    lows, highs = ok["ci_low_ms"], ok["ci_high_ms"]
    others_min_low = _others(g, lows, "min")
    others_max_high = _others(g, highs, "max")
    best = fastest & (highs < others_min_low) & (size > 1)
    worst = slowest & (lows > others_max_high) & (size > 1)
    out.loc[best[best].index, "rank"] = "best"
    out.loc[worst[worst].index, "rank"] = "worst"
    return out


def _busy(frame: pd.DataFrame) -> pd.Series:
    """Rows of busy runs (False where a frame has no ``busy`` column)."""
    if "busy" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["busy"].fillna(False).astype(bool)


def _others(g: Any, values: pd.Series, how: str) -> pd.Series:
    """Per row, the min (max) of ``values`` over the *other* rows of its group."""
    sign = 1.0 if how == "min" else -1.0
    ids = pd.Series(g.ngroup().to_numpy(), index=values.index)
    order = pd.DataFrame({"g": ids, "v": sign * values}).sort_values(["g", "v"], na_position="last")
    pos = order.groupby("g").cumcount()
    first = order[pos == 0].set_index("g")["v"]
    second = order[pos == 1].set_index("g")["v"]
    holder = pd.Series(False, index=values.index)
    holder[order.index[(pos == 0).to_numpy()]] = True
    other = np.where(holder, ids.map(second).fillna(np.inf), ids.map(first))
    return pd.Series(sign * other, index=values.index)
