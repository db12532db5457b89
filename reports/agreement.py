"""``python -m reports agreement RUN [OTHER]``: how precise a run is, and whether two runs rank alike.

For each run (a result file, or a folder: every result file in it): per implementation, the
timed rows, the median relative IQR and the rows marked noisy; the run's wall time, threads
and load. With a second run: of the pairs of implementations (and layouts) compared on the
same device, dtype, workload and pass in both, the pairs both runs decide (a paired direction,
:mod:`benchmarks.precision.paired`, or, for rows without turns, medians' intervals apart) and the share
on which they agree. This is the before/after table of a change to the harness: run the cpu
profile twice on a quiet machine (and once under load) and compare.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import stats
from benchmarks.precision import paired

from . import data

PAIR_KEY = ["device", "dtype", "workload", "pass"]


def precision_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per implementation: timed rows, median relative IQR (%), noisy rows and their share (%)."""
    ok = results[results["status"] == "ok"]
    rows = []
    for impl, part in [("(all)", ok), *ok.groupby("impl", sort=True)]:
        rows.append({"impl": impl, "rows": len(part),
                     "median_relative_iqr_pct": 100 * float(np.nanmedian(part["relative_iqr"])) if len(part)
                     else float("nan"),
                     "noisy_rows": int(part["noisy"].sum()),
                     "noisy_pct": 100 * float(part["noisy"].mean()) if len(part) else float("nan")})
    return pd.DataFrame(rows)


def directions(results: pd.DataFrame) -> dict[tuple[Any, ...], int]:
    """For every pair of right answers compared in one run: +1 the first series faster, -1 the
    second, 0 no clear difference. Keyed by (device, dtype, workload, pass, series a, series b)."""
    out: dict[tuple[Any, ...], int] = {}
    ok = results[results["status"] == "ok"]
    for key, group in ok.groupby(PAIR_KEY, sort=False):
        rows = sorted(group.to_dict("records"), key=lambda r: r["series"])
        for a, b in itertools.combinations(rows, 2):
            out[(*key, a["series"], b["series"])] = _direction(a, b)
    return out


def _direction(a: dict[str, Any], b: dict[str, Any]) -> int:
    if a.get("_turns") is not None and b.get("_turns") is not None and a["_run"] == b["_run"]:
        return paired.compare(*a["_turns"], *b["_turns"]).direction
    if not stats.separated(a["ci_low_ms"], a["ci_high_ms"], b["ci_low_ms"], b["ci_high_ms"]):
        return 0
    return 1 if a["median_ms"] < b["median_ms"] else -1


def agreement(first: pd.DataFrame, second: pd.DataFrame) -> tuple[int, int, int]:
    """(pairs compared in both, pairs both decide, pairs both decide alike)."""
    v1, v2 = directions(first), directions(second)
    shared = set(v1) & set(v2)
    decided = [k for k in shared if v1[k] and v2[k]]
    return len(shared), len(decided), sum(v1[k] == v2[k] for k in decided)


def _load(path: str) -> data.BenchData:
    bench = data.load([path])
    bench.results = data.with_series(bench.results.assign(machine="-"))  # the same series in both runs
    return bench


def _describe(path: str, bench: data.BenchData) -> str:
    lines = [f"{path}:"]
    for run in bench.runs:
        threads = (run.get("threads") or {}).get("threads")
        load = run.get("load") or {}
        wall = run.get("wall_s")
        lines.append(f"  run {run.get('file')}: wall {wall:.0f} s" if isinstance(wall, (int, float))
                     else f"  run {run.get('file')}: wall time not recorded")
        lines[-1] += (f", threads {threads}" if threads else "") + (
            f", others kept {load['others_cpus_during_run']:.2f} CPUs busy"
            if isinstance(load.get("others_cpus_during_run"), (int, float)) else "")
    table = precision_table(bench.results)
    lines.append(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports agreement",
                                     description="Precision of a benchmark run (median relative IQR, noisy "
                                     "rows, wall time) and, given two, the agreement of their rankings.")
    parser.add_argument("run", help="a result file or a folder of them")
    parser.add_argument("other", nargs="?", help="a second run to compare rankings with")
    args = parser.parse_args(argv)
    try:
        first = _load(args.run)
        second = _load(args.other) if args.other else None
    except ValueError as exc:
        print(f"python -m reports agreement: {exc}")
        return 2
    print(_describe(args.run, first))
    if second is not None:
        print(_describe(args.other, second))
        shared, decided, same = agreement(first.results, second.results)
        share = f"{100 * same / decided:.1f}%" if decided else "n/a"
        print(f"agreement: {same} of the {decided} pairs both runs decide rank alike ({share}); "
              f"{shared} pairs compared in both")
    return 0
