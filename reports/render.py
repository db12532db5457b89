"""Renderings of the benchmark data: Markdown, a self-contained HTML page, CSV.

The report is built once as a list of blocks (headings, paragraphs, tables whose cells
carry a style class, images); the Markdown and HTML writers only format those blocks.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchmarks.stats import NOISE_THRESHOLD

from .compare import KEY


@dataclass
class Cell:
    text: str
    style: str = ""  # "best", "worst", "wrong", "noisy" or ""


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass
class Image:
    title: str
    filename: str
    png: bytes


@dataclass
class Report:
    title: str
    blocks: list[Any] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", level, text))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def links(self, items: list[tuple[str, str]]) -> None:
        self.blocks.append(("links", items))


# -- formatting --------------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"
    return str(value)


def series_name(row: pd.Series, machines: int) -> str:
    return f"{row['impl']} @ {row['machine']}" if machines > 1 else str(row["impl"])


def _cell(row: pd.Series, text: str) -> Cell:
    if row["status"] != "ok":
        return Cell(f"{row['status'].upper()} ({text})" if row["status"] == "wrong" else row["status"].upper(), "wrong")
    style = row.get("rank", "") or ""
    if row.get("noisy"):
        text += " ~"
    return Cell(text, style)


def pivot_tables(results: pd.DataFrame, baseline: str | None, how: str, skipped: pd.DataFrame | None = None) -> list[Table]:
    """Per device, dtype and pass: workloads down, implementations across.

    Three tables each: time (with IQR and peak memory), throughput (with % of the
    same-run GEMM peak) and speedup over the baseline.
    """
    tables: list[Table] = []
    machines = results["machine"].nunique()
    res = results.assign(series=results.apply(series_name, axis=1, machines=machines))
    order = sorted(res["series"].unique(), key=lambda s: (not s.startswith(str(baseline)), s))
    not_timed = set()
    if skipped is not None and not skipped.empty:
        skip = skipped.assign(series=skipped.apply(series_name, axis=1, machines=machines))
        not_timed = set(zip(skip["device"], skip["dtype"], skip["pass"], skip["workload"], skip["series"]))
    for (device, dtype, pass_), part in res.groupby(["device", "dtype", "pass"], sort=False):
        # Run order of the implementation that timed the most workloads, then any others.
        fullest = part.groupby("series")["workload"].apply(list).sort_values(key=lambda c: c.str.len()).iloc[-1]
        workloads = list(dict.fromkeys([*fullest, *part["workload"]]))
        cols = [s for s in order if s in set(part["series"])]
        by = {(r["workload"], r["series"]): r for _, r in part.iterrows()}
        specs = [
            ("time", "median time per call, ms (± IQR as % of the median) · peak memory",
             lambda r: f"{fmt(r['median_ms'])} ±{fmt(100 * (r['relative_iqr'] or 0), 2)}%"
                       + (f" · {fmt(r['peak_memory_mb'])} MiB" if not math.isnan(r["peak_memory_mb"]) else "")),
            ("throughput", "effective GFLOP/s (direct-convolution FLOPs; pooling: window elements) · % of same-run GEMM peak",
             lambda r: fmt(r["gflops"]) + ("" if math.isnan(r["pct_peak"]) else f" · {fmt(r['pct_peak'], 2)}%")),
        ]
        specs.append(("first call", "first call, ms (compilation, autotuning, caches; not part of the median)",
                      lambda r: fmt(r["first_call_ms"])))
        if baseline is not None:
            specs.append(("speedup", f"speedup over {baseline} (its median / this median; > 1 is faster)",
                          lambda r: f"{fmt(r['speedup'])}x"))
        for name, what, text in specs:
            rows = []
            for wl in workloads:
                row = [Cell(wl)]
                for s in cols:
                    r = by.get((wl, s))
                    missing = "skipped (see 'Not timed')" if (device, dtype, pass_, wl, s) in not_timed else "-"
                    row.append(Cell(missing) if r is None else _cell(r, text(r)))
                rows.append(row)
            tables.append(Table(f"{device} {dtype} {pass_}: {what}", ["workload", *cols], rows, how))
    return tables


def how_measured(runs: list[dict[str, Any]]) -> str:
    """One paragraph per run: how its numbers were measured."""
    parts = []
    for run in runs:
        env = run.get("environment", {})
        st = run.get("settings", {})
        impls = "; ".join(
            f"{name}: " + ", ".join(f"{k} {v}" for k, v in (d.get("environment") or {}).items())
            for name, d in (run.get("implementations") or {}).items()
        )
        peaks = "; ".join(f"{k} {fmt(v['gflops'])} GFLOP/s ({v['method']})" for k, v in (run.get("peaks") or {}).items())
        bws = "; ".join(f"{k} {fmt(v['gbytes_per_s'])} GB/s ({v['method']})" for k, v in (run.get("bandwidth") or {}).items())
        gpu = f" GPU {env['gpu']}, driver {env.get('driver', '?')}, CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}." if env.get("gpu") else ""
        threads = ", ".join(f"{k}={v}" for k, v in (env.get("thread_variables") or {}).items()) or "no thread variables set"
        parts.append(
            f"Machine **{run.get('machine')}** (profile `{run.get('profile')}`, started {run.get('started')}, "
            f"wall {fmt(run.get('wall_s'))} s; command `{run.get('command')}`): CPU {env.get('cpu')}, "
            f"{env.get('usable_cpus')} usable of {env.get('logical_cpus')} logical CPUs, {threads}; "
            f"Python {env.get('python')}, NumPy {env.get('numpy')} with {env.get('blas')}"
            f"{pools(env)}.{gpu} "
            f"Timing: pytest-benchmark `pedantic`, one call per round ({st.get('timer')}), "
            f"{st.get('min_rounds')} to {st.get('max_rounds')} rounds aiming at {st.get('target_s')} s per benchmark, "
            f"after a first call timed separately (compilation, autotuning) and a warm-up round when cheap; "
            f"device work synchronised inside every timed region. Peak (same run): {peaks or '-'}. "
            f"Bandwidth: {bws or '-'}. Implementations: {impls}."
        )
    return "\n\n".join(parts)


def pools(env: dict[str, Any]) -> str:
    found = env.get("thread_pools") or []
    if not found:
        return ""
    return " (thread pools: " + ", ".join(
        " ".join(str(p[k]) for k in ("internal_api", "version", "architecture") if p.get(k)) + f" {p.get('num_threads')} threads"
        for p in found) + ")"


def short_environment(runs: list[dict[str, Any]]) -> str:
    """One line per machine: device, threads, versions and flags, for every table's note."""
    lines = []
    for run in runs:
        env = run.get("environment", {})
        impls = "; ".join(
            f"{name} " + ", ".join(f"{k}={v}" for k, v in (d.get("environment") or {}).items())
            for name, d in (run.get("implementations") or {}).items()
        )
        gpu = f", {env['gpu']} (CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}, driver {env.get('driver', '?')})" if env.get("gpu") else ""
        lines.append(f"{run.get('machine')}: {env.get('cpu')}, {env.get('usable_cpus')} usable CPUs{pools(env)}{gpu}; {impls}")
    return " | ".join(lines)


def table_note(results: pd.DataFrame, runs: list[dict[str, Any]] | None = None) -> str:
    rounds = results["rounds"].dropna()
    span = f"{int(rounds.min())}-{int(rounds.max())}" if not rounds.empty else "-"
    return (f"Median of N rounds (N = {span} here; see the CSV per row); IQR = 75th - 25th percentile; "
            f"'~' marks a noisy measurement (IQR > {NOISE_THRESHOLD:.0%} of the median). Colour/bold: fastest "
            f"right answer; red/italic: slowest. WRONG: the output broke the float64 reference's error bound; "
            f"it is excluded from ranking and speedups. " + (short_environment(runs) + ". " if runs else "")
            + "Details in 'How measured'.")


# -- writers ------------------------------------------------------------------------------
def _md_cell(c: Cell) -> str:
    text = c.text.replace("|", "\\|")
    return {"best": f"**{text}**", "worst": f"*{text}*", "wrong": f"**{text}**"}.get(c.style, text)


def to_markdown(report: Report) -> str:
    out = [f"# {report.title}", ""]
    for block in report.blocks:
        if isinstance(block, Table):
            out += [f"**{block.caption}**", "", "| " + " | ".join(block.header) + " |",
                    "|" + "|".join(["---"] * len(block.header)) + "|"]
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out += ["", f"<sub>{block.note}</sub>" if block.note else "", ""]
        elif isinstance(block, Image):
            out += [f"![{block.title}]({block.filename})", ""]
        elif block[0] == "h":
            out += ["#" * block[1] + " " + block[2], ""]
        elif block[0] == "p":
            out += [block[1], ""]
        elif block[0] == "links":
            out += [" · ".join(f"[{t}]({href})" for t, href in block[1]), ""]
    return "\n".join(out).rstrip() + "\n"


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0 .2em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
td:first-child,th:first-child{text-align:left}
th{background:#f0f0f0}
td.best{background:#c8f0c8;font-weight:bold}
td.worst{background:#f8d0d0}
td.wrong{background:#b00020;color:#fff;font-weight:bold}
caption{caption-side:top;text-align:left;font-weight:bold;padding:.3em 0}
.note{font-size:12px;color:#555;max-width:1100px}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
"""


def _inline(text: str) -> str:
    """Escape, then keep the two Markdown marks the paragraphs use (**bold**, `code`)."""
    import re

    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def to_html(report: Report) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{html.escape(report.title)}</h1>"]
    for block in report.blocks:
        if isinstance(block, Table):
            out.append(f"<table><caption>{html.escape(block.caption)}</caption><tr>"
                       + "".join(f"<th>{html.escape(h)}</th>" for h in block.header) + "</tr>")
            for row in block.rows:
                out.append("<tr>" + "".join(
                    f"<td class='{c.style}'>{html.escape(c.text)}</td>" if c.style else f"<td>{html.escape(c.text)}</td>"
                    for c in row) + "</tr>")
            out.append(f"</table><p class='note'>{html.escape(block.note)}</p>")
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            out.append(f"<h3>{html.escape(block.title)}</h3><img alt='{html.escape(block.title)}' src='data:image/png;base64,{data}'>")
        elif block[0] == "h":
            out.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif block[0] == "p":
            out += [f"<p>{_inline(p)}</p>" for p in block[1].split("\n\n")]
        elif block[0] == "links":
            out.append("<p>" + " · ".join(f"<a href='{html.escape(h)}'>{html.escape(t)}</a>" for t, h in block[1]) + "</p>")
    out.append("</body></html>")
    return "\n".join(out)


def simple_table(caption: str, frame: pd.DataFrame, columns: list[str], note: str = "") -> Table:
    rows = [[Cell(fmt(v)) for v in rec] for rec in frame[columns].itertuples(index=False)]
    return Table(caption, columns, rows, note)
