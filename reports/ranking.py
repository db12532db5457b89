"""Rankings on the results frame: speedups over a baseline implementation, best and worst.

Only differences beyond the noise count. Rows timed in turns (each sample's turn recorded,
the same run) are compared in pairs (:mod:`benchmarks.precision.paired`): the speedup is the median
of the per-turn ratios with its bootstrap 95% interval (``speedup_low``/``speedup_high``),
given where the interval lies beyond 1 by more than ``paired.MARGIN``, else "no clear
difference"; a row is "best" only when it is clearly faster than every other right answer
of its comparison, "worst" only when clearly slower. Rows without turns (GPU device time,
older files) fall back to the medians' 95% confidence intervals (``ci_low_ms``/
``ci_high_ms``): a speedup where they do not overlap, "best" where a row's interval lies
wholly below every other's. Rows of a run measured on a busy machine
(``busy``) are neither ranked nor given a speedup: load slows implementations unevenly (on
two cores with six busy processes torch's medians were 12x slower, TensorFlow's 4x, and 6
of 58 winners changed), so a ranking would change with the load, and a ranking must not. The
exception is a busy run whose threads were matched to the cores the load left idle
(``--threads idle``, :data:`reports.data.MATCHED_RULE`): its paired rankings agreed with a quiet run's. (The
regression gate against a saved run is :mod:`reports.gate`; it judges no slowdown of a busy run.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from benchmarks.precision import paired

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
    return _paired_speedups(out, ok, baseline)


def _paired_speedups(out: pd.DataFrame, ok: pd.Series, baseline: str) -> pd.DataFrame:
    """Speedups of rows timed in turns from their per-turn ratios to the baseline's fastest
    layout in the same run: ``speedup`` (where clear), ``speedup_low``/``speedup_high`` and
    ``paired_ratio`` (the median ratio, also where not clear)."""
    out["speedup_low"] = out["speedup_high"] = out["paired_ratio"] = np.nan
    if "_turns" not in out.columns:
        return out
    timed = out[ok & out["_turns"].notna()]
    for _, group in timed.groupby([*KEY, "_run"], sort=False):
        base = group[group["impl"] == baseline]
        if base.empty:
            continue
        b_times, b_turns = base.loc[base["median_ms"].idxmin(), "_turns"]
        for idx, r in group.iterrows():
            if r["impl"] == baseline:
                continue
            times, turns = r["_turns"]
            ratio = paired.compare(times, turns, b_times, b_turns)
            if ratio.turns < paired.MIN_TURNS:
                continue
            out.loc[idx, ["paired_ratio", "speedup_low", "speedup_high"]] = (ratio.median, ratio.low,
                                                                             ratio.high)
            out.loc[idx, "clear"] = ratio.direction != 0
            out.loc[idx, "speedup"] = ratio.median if ratio.direction != 0 else np.nan
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
    return _paired_ranks(out, ok)


def _paired_ranks(out: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    """Groups whose every right answer was timed in turns in one run: 'best' / 'worst' from
    the paired directions (clearly faster / slower than every other), replacing the intervals'."""
    if "_turns" not in ok.columns:
        return out
    for _, group in ok.groupby(KEY, sort=False):
        if len(group) < 2 or group["_turns"].isna().any() or group["_run"].nunique() != 1:
            continue
        out.loc[group.index, "rank"] = ""
        for idx, r in group.iterrows():
            times, turns = r["_turns"]
            directions = {paired.compare(times, turns, *o["_turns"]).direction
                        for j, o in group.iterrows() if j != idx}
            if directions == {1}:
                out.loc[idx, "rank"] = "best"
            elif directions == {-1}:
                out.loc[idx, "rank"] = "worst"
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
