"""``python -m reports [--results PATH ...] [--baseline FILE --threshold PCT] [--out DIR]``.

Renders the benchmark comparison (Markdown, self-contained HTML, CSV, PNG plots) from
result files; folders give their newest file per machine and profile. With
``--baseline``, compares against a saved run and exits 1 on a regression.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from . import compare, data, plots, render
from .render import Image, Report

DEFAULT_OUT = Path("reports/out")


def build(bench: data.BenchData, out: Path, baseline_impl: str | None,
          regressions=None, threshold: float | None = None, command: str = "python -m reports") -> Report:
    """The report as blocks; plots are also written next to it as PNG files."""
    results = bench.results
    baseline = compare.choose_baseline(results, baseline_impl)
    results = compare.rank(compare.add_speedups(results, baseline))
    how = render.table_note(results, bench.runs)
    machines = ", ".join(sorted(results["machine"].unique()))
    rep = Report(f"convcert benchmarks: {machines}")
    links = [("CSV of every result", "results.csv")]
    if (out / "conformance" / "matrix.md").exists():
        links.insert(0, ("conformance matrix", "conformance/matrix.md"))
    rep.links(links)
    runs = "; ".join(f"`{r.get('command')}` on {r.get('machine')} ({r.get('started')})" for r in bench.runs)
    rep.para(f"Measured by {runs}; rendered {datetime.now(timezone.utc).isoformat(timespec='seconds')} by "
             f"`{command}` from " + ", ".join(f"`{Path(r['file']).name}`" for r in bench.runs) + ".")
    if regressions is not None:
        rep.heading("Regressions against the saved baseline")
        if regressions.empty:
            rep.para(f"None: no benchmark is more than {threshold:g}% slower than the baseline, none newly wrong.")
        else:
            rep.blocks.append(render.simple_table(
                f"{len(regressions)} regression(s) (threshold {threshold:g}%)", regressions,
                ["impl", "device", "dtype", "workload", "pass", "median_ms_baseline", "median_ms", "why"], how))
    wrong = results[results["status"] != "ok"]
    if not wrong.empty:
        rep.heading("Wrong answers and errors")
        rep.para("These outputs broke the error bound against the float64 reference (or raised); they never rank.")
        rep.blocks.append(render.simple_table("not right", wrong.fillna({"check": "", "error": ""}),
                                              ["machine", "impl", "device", "dtype", "workload", "pass", "status", "check", "error"]))
    rep.heading("Comparison")
    rep.blocks += render.pivot_tables(results, baseline, how, bench.skipped)
    rep.heading("Plots")
    for title, name, png in (("Speedups", "speedups.png", plots.speedups(results, baseline) if baseline else None),
                             ("Roofline", "roofline.png", plots.roofline(results, bench.runs)),
                             ("Memory vs time", "memory_vs_time.png", plots.memory_vs_time(results))):
        if png:
            (out / name).write_bytes(png)
            rep.blocks.append(Image(title, name, png))
    if not bench.skipped.empty:
        rep.heading("Not timed")
        rep.para("Cases the run did not time, with the reason (budget, claims, unsupported).")
        rep.blocks.append(render.simple_table(f"{len(bench.skipped)} skipped case(s)", bench.skipped,
                                              ["machine", "impl", "device", "dtype", "workload", "pass", "reason"]))
    missing = {f"{name} ({run.get('machine')})": why for run in bench.runs for name, why in (run.get("not_loaded") or {}).items()}
    if missing:
        rep.heading("Not benchmarked")
        rep.para("Registered implementations that could not be loaded: "
                 + "; ".join(f"{name}: {why}" for name, why in missing.items()) + ".")
    rep.heading("How measured")
    rep.para(render.how_measured(bench.runs))
    return rep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Render the benchmark comparison (Markdown, HTML, CSV, PNG plots) from result files; "
                    "with --baseline, exit 1 on a regression.")
    parser.add_argument("--results", nargs="+", default=["results"], help="result files or folders (default: results/)")
    parser.add_argument("--baseline", help="a saved result file (or folder) to compare against")
    parser.add_argument("--threshold", type=float, default=10.0, help="regression threshold in percent (default 10)")
    parser.add_argument("--speedup-baseline", help="implementation the speedups are relative to (default im2col, else torch)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default reports/out/)")
    args = parser.parse_args(argv)
    try:
        bench = data.load(args.results)
        found = None
        if args.baseline:
            found = compare.regressions(bench.results, data.load([args.baseline]).results, args.threshold)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        command = "python -m reports " + shlex.join(sys.argv[1:] if argv is None else argv)
        report = build(bench, out, args.speedup_baseline, found, args.threshold, command.strip())
    except ValueError as exc:
        parser.error(str(exc))
    bench.results.to_csv(out / "results.csv", index=False)
    (out / "index.md").write_text(render.to_markdown(report))
    (out / "index.html").write_text(render.to_html(report))
    print(f"report: {out / 'index.html'} (also index.md, results.csv, PNG plots)")
    if found is not None and not found.empty:
        print(f"{len(found)} regression(s) beyond {args.threshold:g}% against {args.baseline}:", file=sys.stderr)
        print(found.to_string(index=False), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
