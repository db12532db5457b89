"""``python -m reports [--results PATH ...] [--baseline PATH --threshold PCT
[--allow-dropped PATTERN ...] [--dropped FILE]] [--out DIR]``.

Renders the benchmark comparison (Markdown, self-contained HTML, CSV, PNG plots) from
result files; folders give their newest file per machine and profile. With
``--baseline``, runs the regression gate (:mod:`reports.gate`) against a saved run and
exits 1 on a regression.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from implementations.arguments import Several
from implementations.files import writable_folder, write_atomic

from . import data, gate, plots, ranking, render
from .render import Image, Report

DEFAULT_OUT = Path("reports/out")


#: A matrix generated this many hours before the results no longer vouches for them. `nox`
#: certifies first and times after, so the matrix of the same run is always a little older.
MATRIX_MAX_AGE_H = 12


def _hours_between(earlier: str, later: str) -> float:
    """Hours from ``earlier`` to ``later`` (ISO times; naive ones read as UTC); inf if unreadable."""
    def parse(text: str) -> datetime:
        t = datetime.fromisoformat(text)
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

    try:
        return (parse(later) - parse(earlier)).total_seconds() / 3600
    except (TypeError, ValueError):
        return float("inf")


def matrix_note(path: Path, started: list[str]) -> str:
    """A plain warning when the conformance matrix is missing, unreadable, incomplete or older
    than the results it should vouch for (empty when it is there and current)."""
    run = "`nox -s conformance` (or `python -m conformance matrix`)"
    if not path.exists():
        return (f"**No conformance matrix** beside this report: these timings are not backed by a "
                f"conformance verdict. Run {run}.")
    try:
        matrix = json.loads(path.read_text())
        generated = str(matrix["generated"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        return f"**The conformance matrix could not be read** ({path}: {exc}). Run {run} again."
    broken = [e.get("name", "?") for e in matrix.get("implementations", []) if e.get("could_not_run")]
    newest = max((s for s in started if s), default="")
    notes = []
    if newest and _hours_between(generated, newest) > MATRIX_MAX_AGE_H:
        notes.append(f"**The conformance matrix is older than these results** (generated {generated}, "
                     f"results from {newest}, over {MATRIX_MAX_AGE_H} h apart): run {run} again.")
    if broken:
        notes.append(f"**The conformance matrix is incomplete**: the certifier could not judge "
                     f"{', '.join(map(str, broken))}.")
    return " ".join(notes)


def build(bench: data.BenchData, out: Path, baseline_impl: str | None,
          verdict: gate.Verdict | None = None, threshold: float | None = None,
          command: str = "python -m reports") -> Report:
    """The report as blocks; plots are also written next to it as PNG files."""
    results = bench.results
    baseline = ranking.choose_baseline(results, baseline_impl)
    results = data.with_series(ranking.rank(ranking.add_speedups(results, baseline)))
    machines = ", ".join(sorted(results["machine"].unique()))
    rep = Report(f"convcert benchmarks: {machines}")
    links = [("CSV of every result", "results.csv")]
    if (out / "conformance" / "matrix.md").exists():
        links.insert(0, ("conformance matrix", "conformance/matrix.md"))
    rep.links(links)
    note = matrix_note(out / "conformance" / "matrix.json", [str(r.get("started", "")) for r in bench.runs])
    if note:
        rep.para(note)
    runs = "; ".join(f"`{r.get('command')}` on {r.get('machine')} ({r.get('started')})" for r in bench.runs)
    rendered = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rep.para(f"Measured by {runs}; rendered {rendered} by `{command}` from "
             + ", ".join(f"`{Path(r['file']).name}`" for r in bench.runs) + ".")
    for banner in render.banners(bench.runs):
        rep.para(banner)
    if bench.problems:
        rep.para("Left out: " + "; ".join(bench.problems) + ".")
    if verdict is not None:
        _gate_section(rep, verdict, threshold or 0.0)
    wrong = results[results["status"] != "ok"]
    if not wrong.empty:
        rep.heading("Wrong answers and errors")
        rep.para("These outputs broke the error bound against the float64 reference (or raised); "
                 "they never rank.")
        rep.blocks.append(render.simple_table(
            "not right", wrong.fillna({"check": "", "error": ""}),
            ["machine", "impl", "device", "dtype", "layout", "workload", "pass", "status", "check", "error"]))
    layout_tables = render.layout_tables(results)
    if layout_tables:
        rep.heading("Layouts")
        rep.para("Each framework's layouts side by side: geometric mean of the median time over the "
                 "workloads timed right in every layout; the best layout in bold. The full tables below "
                 "have every layout.")
        rep.blocks += layout_tables
    rep.heading("Comparison")
    rep.blocks += render.pivot_tables(results, baseline, bench.skipped)
    rep.heading("Plots")
    speedups = plots.speedups(results, baseline) if baseline else None
    for title, name, png in (("Speedups", "speedups.png", speedups),
                             ("Roofline", "roofline.png", plots.roofline(results, bench.runs)),
                             ("Memory vs time", "memory_vs_time.png", plots.memory_vs_time(results))):
        if png:
            (out / name).write_bytes(png)
            rep.blocks.append(Image(title, name, png))
    if not bench.skipped.empty:
        rep.heading("Not timed")
        rep.para("Cases the run did not time, with the reason (budget, claims, unsupported).")
        rep.blocks.append(render.simple_table(
            f"{len(bench.skipped)} skipped case(s)", bench.skipped,
            ["machine", "impl", "device", "dtype", "layout", "workload", "pass", "reason"]))
    missing = {f"{name} ({run.get('machine')})": why
               for run in bench.runs for name, why in (run.get("not_loaded") or {}).items()}
    if missing:
        rep.heading("Not benchmarked")
        rep.para("Registered implementations that could not be loaded: "
                 + "; ".join(f"{name}: {why}" for name, why in missing.items()) + ".")
    rep.heading("How measured")
    rep.para(render.how_measured(bench.runs, results))
    if ((results["impl"] == "jax") & (results["device"] == "cuda")).any():
        rep.heading("JAX on a GPU")
        rep.para(render.JAX_ON_GPU)
    return rep


def _gate_section(rep: Report, verdict: gate.Verdict, threshold: float) -> None:
    rep.heading("Regressions against the saved baseline")
    notes = []
    if verdict.machines_left_aside:
        notes.append("baseline rows of " + ", ".join(verdict.machines_left_aside)
                     + " not compared (no run of that machine among the results)")
    if verdict.dropped:
        notes.append(f"{len(verdict.dropped)} baseline row(s) dropped on purpose "
                     "(--allow-dropped / --dropped)")
    if verdict.not_judged:
        notes.append(f"{len(verdict.not_judged)} row(s) not judged for time: " + "; ".join(verdict.busy)
                     + " (load slows implementations unevenly; re-run on a quiet machine)")
    if verdict.within_noise:
        notes.append(f"{verdict.within_noise} row(s) slower by more than {threshold:g}% but within the noise "
                     "(confidence intervals of the two medians overlap): not judged regressions")
    rule = (f"Rule: a row regressed when its median is more than {threshold:g}% above the baseline's and "
            "its 95% confidence interval lies wholly above the baseline's (the threshold alone where a file "
            "kept no raw times); or its answer became wrong; or it is missing or skipped now. Slowdowns are "
            "not judged where the new run was busy, and no time is judged where the baseline was. "
            f"{verdict.compared} baseline row(s) compared.")
    if verdict.passed:
        rep.para(f"None. {rule}" + (" " + "; ".join(notes).capitalize() + "." if notes else ""))
        return
    rep.para(rule + (" " + "; ".join(notes).capitalize() + "." if notes else ""))
    rep.blocks.append(render.simple_table(
        f"{len(verdict.regressions)} regression(s) (threshold {threshold:g}%)", regression_frame(verdict),
        [*GATE_COLUMNS, "median_ms_baseline", "median_ms", "why"]))


GATE_COLUMNS = ["machine", "device", "impl", "dtype", "layout", "workload", "pass"]


def regression_frame(verdict: gate.Verdict) -> pd.DataFrame:
    rows: list[dict[str, Any]] = [
        {**dict(zip(GATE_COLUMNS, r.key, strict=True)), "median_ms_baseline": r.baseline_ms,
         "median_ms": r.current_ms, "why": r.why}
        for r in verdict.regressions
    ]
    return pd.DataFrame(rows, columns=[*GATE_COLUMNS, "median_ms_baseline", "median_ms", "why"])


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["agreement"]:
        from . import agreement

        return agreement.main(args_in[1:])
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Render the benchmark comparison (Markdown, HTML, CSV, PNG plots) from result files; "
                    "with --baseline, exit 1 on a regression.")
    parser.add_argument("--results", action=Several, default=["results"],
                        help="result files or folders (default: results/)")
    parser.add_argument("--baseline", help="a saved result file (or folder) to compare against")
    parser.add_argument("--threshold", type=float, default=10.0,
                        help="regression threshold in percent (default 10)")
    parser.add_argument("--allow-dropped", action=Several, default=[], metavar="PATTERN",
                        help="baseline rows dropped on purpose: shell patterns on "
                             "machine/device/impl/dtype/layout/workload/pass, e.g. '*/cpu/naive/*'")
    parser.add_argument("--dropped", metavar="FILE", help="a file of --allow-dropped patterns, one per line")
    parser.add_argument("--speedup-baseline",
                        help="implementation the speedups are relative to (default im2col, else torch)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default reports/out/)")
    args = parser.parse_args(argv)
    try:
        bench = data.load(args.results)
        for line in bench.problems:
            print(line, file=sys.stderr)
        verdict = None
        if args.baseline:
            dropped = [*args.allow_dropped, *(gate.read_dropped(args.dropped) if args.dropped else [])]
            saved = data.load([args.baseline])
            for line in saved.problems:
                print(f"baseline: {line}", file=sys.stderr)
            verdict = gate.compare(bench.documents, saved.documents, args.threshold, dropped)
            if verdict.nothing_compared:
                print(f"--baseline {args.baseline}: {verdict.nothing_compared}; nothing was judged",
                      file=sys.stderr)
                return 2
        out = writable_folder(args.out)
        command = "python -m reports " + shlex.join(sys.argv[1:] if argv is None else argv)
        report = build(bench, out, args.speedup_baseline, verdict, args.threshold, command.strip())
    except ValueError as exc:  # one line, exit 2: nothing was judged
        print(f"python -m reports: {exc}", file=sys.stderr)
        return 2
    public = [c for c in bench.results.columns if not str(c).startswith("_")]
    write_atomic(out / "results.csv", bench.results[public].to_csv(index=False))
    write_atomic(out / "index.md", render.to_markdown(report))
    write_atomic(out / "index.html", render.to_html(report))
    print(f"report: {out / 'index.html'} (also index.md, results.csv, PNG plots)")
    if verdict is not None and verdict.not_judged:
        print(f"--baseline {args.baseline}: {len(verdict.not_judged)} row(s) slower or skipped for time were "
              f"not judged: {'; '.join(verdict.busy)}; re-run on a quiet machine", file=sys.stderr)
    if verdict is not None and verdict.regressions:
        print(f"{len(verdict.regressions)} regression(s) beyond {args.threshold:g}% against {args.baseline}:",
              file=sys.stderr)
        print(regression_frame(verdict).to_string(index=False), file=sys.stderr)
        return 1
    return 2 if verdict is not None and verdict.not_judged else 0


if __name__ == "__main__":
    sys.exit(main())
