"""Renderings of the benchmark data: Markdown, a self-contained HTML page, CSV.

The report is built once as a list of blocks (headings, paragraphs, tables whose cells
carry a style class, images); the Markdown and HTML writers only format those blocks.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pandas as pd

from benchmarks import load
from benchmarks.precision import paired
from benchmarks.stats import NOISE_THRESHOLD

from .data import MATCHED_RULE, threads_matched, with_series

#: Shown instead of a percentage when an effective rate beats the same-run GEMM peak beyond the noise:
#: a fact about this run (the implementation may do fewer FLOPs, or the GEMM probe was disturbed).
ABOVE_PEAK = "faster than this run's best GEMM"

#: How JAX is timed on a GPU, said in every report holding a JAX CUDA row (docs/gpu.md).
JAX_ON_GPU = (
    "JAX has no CUDA events on its stream, so its device time here is many calls back to back ended by "
    "one `block_until_ready`, divided by the count; its host latency blocks after every call, so it holds "
    "JAX's dispatch and the wait as well as the kernel. Compare JAX's device time with torch's CUDA "
    "events, and each framework in its best layout."
)


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


def _cell(row: Any, text: str, noise_mark: bool = True) -> Cell:
    if row["status"] != "ok":
        status = row["status"].upper()
        return Cell(f"{status} ({text})" if row["status"] == "wrong" else status, "wrong")
    style = row.get("rank", "") or ""
    if noise_mark and row.get("noisy"):
        text += " ~"
    return Cell(text, style)


def _throughput(r: Any) -> str:
    if r.get("above_peak"):
        return f"{fmt(r['gflops'])} · {ABOVE_PEAK}"
    pct = r["pct_peak"]
    return fmt(r["gflops"]) + ("" if math.isnan(pct) else f" · {fmt(min(pct, 100.0), 2)}%")


def _time(r: Any) -> str:
    memory = "" if math.isnan(r["peak_memory_mb"]) else f" · {fmt(r['peak_memory_mb'])} MiB"
    low, high = r.get("ci_low_ms", math.nan), r.get("ci_high_ms", math.nan)
    interval = "" if math.isnan(low) else f" [{fmt(low)}-{fmt(high)}]"
    return f"{fmt(r['median_ms'])}{interval}{memory}"


def _speedup(baseline: str) -> Any:
    def text(r: Any) -> str:
        ratio = r.get("paired_ratio", math.nan)
        interval = "" if math.isnan(ratio) else f" [{fmt(r['speedup_low'])}-{fmt(r['speedup_high'])}]"
        if not math.isnan(r["speedup"]):
            return f"{fmt(r['speedup'])}x{interval}"
        if r.get("busy"):
            return "not compared: busy run"
        if r["impl"] == baseline:
            return "baseline"
        return "no clear difference" + ("" if math.isnan(ratio) else f" ({fmt(ratio)}x{interval})")

    return text


def _specs(part: pd.DataFrame, baseline: str | None) -> list[tuple[str, str, Any]]:
    """(name, caption, cell text) of the tables of one device, dtype and pass."""
    device_timed = bool(part["device_timed"].any())
    what = "device time" if device_timed else "time"
    specs: list[tuple[str, str, Any]] = [
        ("time", f"median {what} per call, ms [95% CI of the median] · peak memory", _time),
        ("throughput", "effective GFLOP/s · % of this run's best GEMM", _throughput),
    ]
    if device_timed:
        specs.append(("host", "host latency per call, ms (host clock + synchronize)",
                      lambda r: fmt(r["host_ms"])))
    specs.append(("first call", "first call, ms (compilation, autotuning; not in the median)",
                  lambda r: fmt(r["first_call_ms"])))
    if baseline is not None:
        specs.append(("speedup", f"speedup over {baseline} (> 1 is faster; per-turn ratio [95% CI], "
                      f"clear beyond {paired.MARGIN:.0%})", _speedup(baseline)))
    return specs


#: The columns a table cell reads.
_SHOWN = ("workload", "series", "impl", "status", "rank", "noisy", "median_ms", "ci_low_ms", "ci_high_ms",
          "peak_memory_mb", "gflops", "pct_peak", "above_peak", "host_ms", "first_call_ms", "speedup", "busy",
          "paired_ratio", "speedup_low", "speedup_high")


def pivot_tables(results: pd.DataFrame, baseline: str | None,
                 skipped: pd.DataFrame | None = None) -> list[Table]:
    """Per device, dtype and pass: workloads down, implementations (and layouts) across.

    Tables: time (with IQR and peak memory), throughput (with % of the same-run GEMM
    peak), host latency where a device timer gave the time, first call, and speedup
    over the baseline.
    """
    tables: list[Table] = []
    res = results if "series" in results else with_series(results)
    order = sorted(res["series"].unique(), key=lambda s: (not s.startswith(str(baseline)), s))
    not_timed = set()
    if skipped is not None and not skipped.empty:
        skip = with_series(skipped, results)
        not_timed = set(zip(skip["device"], skip["dtype"], skip["pass"], skip["workload"], skip["series"],
                            strict=True))
    for (device, dtype, pass_), part in res.groupby(["device", "dtype", "pass"], sort=False):
        # Run order of the implementation that timed the most workloads, then any others.
        per_series = part.groupby("series")["workload"].apply(list)
        fullest = per_series.sort_values(key=lambda c: c.str.len()).iloc[-1]
        workloads = list(dict.fromkeys([*fullest, *part["workload"]]))
        cols = [s for s in order if s in set(part["series"])]
        shown = [c for c in _SHOWN if c in part.columns]
        by = {(r["workload"], r["series"]): r for r in part[shown].to_dict("records")}
        for kind, what, text in _specs(part, baseline):
            rows = []
            for wl in workloads:
                row = [Cell(wl)]
                for s in cols:
                    r = by.get((wl, s))
                    skipped_here = (device, dtype, pass_, wl, s) in not_timed
                    missing = "skipped (see 'Not timed')" if skipped_here else "-"
                    row.append(Cell(missing) if r is None else _cell(r, text(r), kind == "time"))
                rows.append(row)
            tables.append(Table(f"{device} {dtype} {pass_}: {what}", ["workload", *cols], rows))
    return tables


def layout_tables(results: pd.DataFrame) -> list[Table]:
    """Per machine, device, dtype and pass, each implementation timed in several layouts:
    the geometric mean of its median times over the workloads right in all of them."""
    ok = results[results["status"] == "ok"]
    tables = []
    groups = ok.groupby(["machine", "device", "dtype", "pass"], sort=False)
    for (machine, device, dtype, pass_), part in groups:
        rows, layouts = [], sorted(part["layout"].unique())
        for impl, mine in part.groupby("impl", sort=False):
            if mine["layout"].nunique() < 2:
                continue
            times = mine.pivot_table(index="workload", columns="layout", values="median_ms").dropna()
            if times.empty:
                continue
            geomean = times.apply(lambda c: float(math.exp(c.map(math.log).mean())))
            best = geomean.idxmin()
            rows.append([Cell(str(impl)), *(Cell(fmt(geomean[lay]), "best" if lay == best else "")
                                            if lay in geomean else Cell("-") for lay in layouts),
                         Cell(f"{best} ({len(times)} workloads)")])
        if rows:
            tables.append(Table(f"{machine} {device} {dtype} {pass_}: geometric mean of median ms per layout",
                                ["implementation", *layouts, "best layout"], rows))
    return tables


def how_measured(runs: list[dict[str, Any]], results: pd.DataFrame | None = None) -> str:
    """One paragraph per run: how its numbers were measured."""
    legend = table_note(results) if results is not None and not results.empty else ""
    return "\n\n".join([legend, *(_how_one(run, results) for run in runs)]).strip()


def _how_one(run: dict[str, Any], results: pd.DataFrame | None) -> str:
    env = run.get("environment", {})
    st = run.get("settings", {})
    impls = "; ".join(
        f"{name}: " + ", ".join(f"{k} {v}" for k, v in (d.get("environment") or {}).items())
        for name, d in (run.get("implementations") or {}).items()
    )
    peaks = "; ".join(f"{k} {fmt(v['gflops'])} GFLOP/s at the start ({v['method']})"
                      + (f", {fmt(v['end_gflops'])} at the end" if v.get("end_gflops") else "")
                      for k, v in (run.get("peaks") or {}).items())
    bws = "; ".join(f"{k} {fmt(v['gbytes_per_s'])} GB/s ({v['method']})"
                    + (f", {fmt(v['end_gbytes_per_s'])} at the end" if v.get("end_gbytes_per_s") else "")
                    for k, v in (run.get("bandwidth") or {}).items())
    busy = run.get("load")
    machine_load = f" Load: {load.describe(busy)}." if busy else ""
    skip_rule = f" Skips: {st['skip_rule']}" if st.get("skip_rule") else ""
    gpu = (f" GPU {env['gpu']}, driver {env.get('driver', '?')}, CUDA {env.get('cuda')}, "
           f"cuDNN {env.get('cudnn')}." if env.get("gpu") else "")
    threads = ", ".join(f"{k}={v}" for k, v in (env.get("thread_variables") or {}).items()) \
        or "no thread variables set"
    device_timers = ""
    if results is not None and not results.empty:
        mine = results[(results["machine"] == run.get("machine")) & results["device_timed"]]
        methods = sorted(mine["timer"].dropna().unique())
        if methods:
            device_timers = (" On the GPU the primary figure is device time per call: " + "; ".join(methods)
                             + " (host latency per call is the second figure).")
    return (
        f"Machine **{run.get('machine')}** (profile `{run.get('profile')}`, started {run.get('started')}, "
        f"wall {fmt(run.get('wall_s'))} s; command `{run.get('command')}`): CPU {env.get('cpu')}, "
        f"{env.get('usable_cpus')} usable of {env.get('logical_cpus')} logical CPUs, {threads}; "
        f"Python {env.get('python')}, NumPy {env.get('numpy')} with {env.get('blas')}"
        f"{pools(env)}.{gpu} "
        f"Timing: one call per round ({st.get('timer')}), "
        f"{st.get('min_rounds')} to {st.get('max_rounds')} rounds aiming at {st.get('target_s')} s per "
        f"benchmark, after a first call timed separately (compilation, autotuning) and a warm-up round when "
        f"cheap; device work synchronised inside every timed region.{device_timers} "
        f"Peak (same run; the best GEMM over sizes and libraries, per precision): {peaks or '-'}. "
        f"Bandwidth: {bws or '-'}.{machine_load}{skip_rule} Implementations: {impls}."
    )


def pools(env: dict[str, Any]) -> str:
    found = env.get("thread_pools") or []
    if not found:
        return ""
    return " (thread pools: " + ", ".join(
        " ".join(str(p[k]) for k in ("internal_api", "version", "architecture") if p.get(k))
        + f" {p.get('num_threads')} threads"
        for p in found) + ")"


def banners(runs: list[dict[str, Any]]) -> list[str]:
    """Warnings a reader needs before any number: a busy machine, a speed change during a run."""
    out = []
    for run in runs:
        name = f"**{run.get('machine')}** (started {run.get('started')})"
        busy = run.get("load") or {}
        if busy.get("busy") and threads_matched(run):
            out.append(f"⚠ The machine was busy during the run of {name}: {load.describe(busy)}; "
                       f"{MATCHED_RULE}.")
        elif busy.get("busy"):
            out.append(f"⚠ The machine was busy during the run of {name}: {load.describe(busy)}. Its times "
                       "are slower and noisier than on an idle machine, and load slows implementations "
                       "unevenly (a multithreaded one most), so its rows are neither ranked nor given "
                       "speedups, and the regression gate judges no slowdown of it.")
        changed = [f"{key} GEMM {fmt(p['gflops'])} GFLOP/s at the start, {fmt(p['end_gflops'])} at the end"
                   for key, p in (run.get("peaks") or {}).items() if p.get("changed")]
        changed += [f"{key} copy bandwidth {fmt(b['gbytes_per_s'])} GB/s at the start, "
                    f"{fmt(b['end_gbytes_per_s'])} at the end"
                    for key, b in (run.get("bandwidth") or {}).items() if b.get("changed")]
        if changed:
            out.append(f"⚠ The machine's speed changed during the run of {name} (start and end differ by "
                       f"more than 20%): {'; '.join(changed)}.")
    return out


def table_note(results: pd.DataFrame) -> str:
    """How to read every table: said once, in 'How measured'."""
    rounds = results["rounds"].dropna()
    span = f"{int(rounds.min())}-{int(rounds.max())}" if not rounds.empty else "-"
    return (f"Reading the tables: each time is the median of N rounds (N = {span} here; per row in the CSV) "
            "with its 95% confidence interval in brackets (the exact bootstrap percentile interval of the "
            f"median); '~' marks an IQR over {NOISE_THRESHOLD:.0%} of the median. Two implementations differ "
            "only where their intervals do not overlap: bold is the fastest right answer, italic the slowest "
            "only where its interval is apart from every other's; a speedup is given only where its interval "
            "and the baseline's are apart, else 'no clear difference'. Throughput is effective GFLOP/s "
            "(direct-convolution FLOPs, also for algorithms that do fewer; pooling: window elements); a rate "
            "is 'faster than this run's best GEMM' only where even the slow end of its interval beats the "
            "higher of the start and end GEMM peaks. WRONG: the first or last timed output broke the float64 "
            "reference's error bound, or a changed input left it unchanged; it never ranks.")


# -- writers ------------------------------------------------------------------------------
def md_text(text: str, *, cell: bool = False) -> str:
    """Text as Markdown that renders as the text, as :func:`to_html` escapes it: no raw HTML
    (``<script>``, ``<img onerror>``), no link or image (``[x](javascript:...)``), no heading
    or quote started by a plug-in's line; in a table cell, no ``|`` and no line break. The
    report's own emphasis (``**bold**``, ``code``) is kept."""
    text = html.escape(str(text), quote=False)
    text = text.replace("](", "]\\(")  # no inline link or image: [text](url) needs "]("
    text = re.sub(r"(?m)^(\s*)([#>=+-])", r"\1\\\2", text)
    if cell:
        text = re.sub(r"[\r\n]+", " ", text).replace("|", "\\|")
    return text


def _md_cell(c: Cell) -> str:
    text = md_text(c.text, cell=True)
    return {"best": f"**{text}**", "worst": f"*{text}*", "wrong": f"**{text}**"}.get(c.style, text)


def to_markdown(report: Report) -> str:
    """The report as Markdown; every text is escaped by :func:`md_text` (it may hold plug-in strings)."""
    out = [f"# {md_text(report.title)}", ""]
    for block in report.blocks:
        if isinstance(block, Table):
            out += [f"**{md_text(block.caption, cell=True)}**", "",
                    "| " + " | ".join(md_text(h, cell=True) for h in block.header) + " |",
                    "|" + "|".join(["---"] * len(block.header)) + "|"]
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out += ["", f"<sub>{md_text(block.note, cell=True)}</sub>" if block.note else "", ""]
        elif isinstance(block, Image):
            out += [f"![{md_text(block.title, cell=True)}]({quote(block.filename)})", ""]
        elif block[0] == "h":
            out += ["#" * block[1] + " " + md_text(block[2], cell=True), ""]
        elif block[0] == "p":
            out += [md_text(block[1]), ""]
        elif block[0] == "links":
            out += [" · ".join(f"[{md_text(t, cell=True)}]({quote(href, safe='/#.-_')})"
                               for t, href in block[1]), ""]
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
                    f"<td class='{c.style}'>{html.escape(c.text)}</td>" if c.style
                    else f"<td>{html.escape(c.text)}</td>"
                    for c in row) + "</tr>")
            out.append(f"</table><p class='note'>{html.escape(block.note)}</p>")
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            title = html.escape(block.title)
            out.append(f"<h3>{title}</h3><img alt='{title}' src='data:image/png;base64,{data}'>")
        elif block[0] == "h":
            out.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif block[0] == "p":
            out += [f"<p>{_inline(p)}</p>" for p in block[1].split("\n\n")]
        elif block[0] == "links":
            links = " · ".join(f"<a href='{html.escape(h)}'>{html.escape(t)}</a>" for t, h in block[1])
            out.append(f"<p>{links}</p>")
    out.append("</body></html>")
    return "\n".join(out)


def simple_table(caption: str, frame: pd.DataFrame, columns: list[str], note: str = "") -> Table:
    rows = [[Cell(fmt(v)) for v in rec] for rec in frame[columns].itertuples(index=False)]
    return Table(caption, columns, rows, note)
