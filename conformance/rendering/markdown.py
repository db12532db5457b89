"""Certificates and the matrix as Markdown.

Input is the data written by ``conformance`` (``Certificate.to_dict()`` and the matrix
dict of ``conformance.verdicts.matrix``); output is text. Nothing here runs a case.
"""

from __future__ import annotations

from typing import Any

from implementations.dtypes import DTYPES

from ..verdicts.condition import cpu_path
from .text import HOW, LEGEND, SYMBOL, md_code, md_escape, one_line, ratio


def _feature_grid(cert: dict[str, Any], device: str) -> dict[str, dict[str, dict[str, Any]]]:
    grid: dict[str, dict[str, dict[str, Any]]] = {}
    for s in cert["features"]:
        if s["device"] == device:
            grid.setdefault(s["feature"], {})[s["dtype"]] = s
    return grid


def _cell(s: dict[str, Any] | None) -> str:
    if s is None:
        return ""
    status = s["status"]
    if status in ("pass", "fail"):
        extra = f" {s['limited']} limited" if s.get("limited") else ""
        label = "**FAIL**" if status == "fail" else "pass"
        return f"{label} ({ratio(s['worst_ratio'])}; {s['passed']}✓ {s['failed']}✗{extra})"
    if status in ("limited", "not run"):
        return f"{status}: {md_escape(s['reason'])}"
    if status == "implicated":
        return f"implicated ({s['failed']}✗, explained by another failed feature)"
    return status


def _diagnoses(cert: dict[str, Any]) -> list[str]:
    """One line per failed feature and the dtypes it holds for, where a diagnosis was recognised."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for s in cert["features"]:
        if s.get("diagnosis"):
            grouped.setdefault((s["feature"], s["device"], s["diagnosis"]), []).append(s["dtype"])
    return [f"- **{f}** ({device}: {', '.join(dtypes)}): {md_escape(d)}"
            for (f, device, d), dtypes in grouped.items()]


def _sweep(cert: dict[str, Any]) -> list[str]:
    sweep = cert.get("sweep") or {}
    if not sweep:
        return ["", "## Random sweep", "", "Not run (`--sweep 0` or given cases)."]
    lines = ["", "## Random sweep", "",
             f"Seed {sweep['seed']} (the same seed, convcert version and claims draw the same problems), "
             f"{sweep['examples_per_family']} problems per family, device and dtype; "
             f"{sweep['problems_tried']} of {sweep.get('problems_planned', '?')} run in {sweep['seconds']} s"
             + (" (stopped early by the time budget: incomplete)" if sweep.get("stopped_early") else "")
             + ". "
             f"sha256 of the problems: `{sweep.get('sha256', '')}`. "
             f"Failures kept: {len(sweep['failures'])}."]
    for f in sweep["failures"]:
        runs = f" (failed in {f['failed_runs']} runs)" if f.get("failed_runs") else ""
        lines += [f"- {md_code(f['case'])} ({md_escape(f['device'])}/{md_escape(f['dtype'])}){runs}: "
                  f"{md_escape(f['message'])}",
                  f"  reproduce: {md_code(f['repro'])}"]
    return lines


def _per_operation(cert: dict[str, Any]) -> list[str]:
    rows = cert.get("per_operation") or []
    if not rows:
        return []
    dtypes = [d for d in DTYPES if d in cert["dtypes"]]
    lines = ["", "## Options per operation", "",
             "Each option judged on each operation it applies to; the feature rows above summarise them.", "",
             "| operation · option | device | " + " | ".join(dtypes) + " |",
             "| --- | --- | " + " | ".join("---" for _ in dtypes) + " |"]
    grid: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for s in rows:
        grid.setdefault((s["feature"], s["device"]), {})[s["dtype"]] = s
    for (name, device), row in grid.items():
        lines.append(f"| {name} | {device} | " + " | ".join(_cell(row.get(d)) for d in dtypes) + " |")
    return lines


def _experiments(cert: dict[str, Any]) -> list[str]:
    found = [e for e in cert.get("experiments") or [] if not e.get("shared_from")]
    if not found:
        return []
    lines = ["", "## Blame by experiment", "",
             "Each failing case below ran again without each option it uses; an option is to blame "
             "only when the case passes without it.", ""]
    for e in found:
        tried = "; ".join(f"without {md_escape(o)}: {md_code(v['case'])} {v['status']}"
                          for o, v in e["variants"].items())
        lines.append(f"- {md_code(e['case'])} ({e['device']}/{e['dtype']}) is blamed on "
                     f"**{md_escape(e['blamed'] or 'what the catalogue shows')}**: {tried}"
                     + (f" ({md_escape(e['note'])})" if e.get("note") else ""))
    return lines


def _cpu_path(cert: dict[str, Any]) -> str:
    """The framework's CPU path the verdict holds for ("" off the CPU or where none is reported)."""
    return cpu_path(cert["environment"].get("implementation", {})) if "cpu" in cert["devices"] else ""


def certificate_markdown(cert: dict[str, Any], max_failures: int = 40) -> str:
    """A certificate for people: verdict, per-feature table, failures with repro, findings."""
    impl = cert["implementation"]
    state = cert.get("state", "complete")
    verdict = "PASSED" if cert["passed"] else "FAILED" if state == "complete" else state.upper()
    note = md_escape(cert.get("note") or "cases are still running")
    env = ", ".join(f"{md_escape(k)} {md_escape(v)}" for k, v in cert["environment"].items())
    lines = [
        f"# Conformance certificate: {md_code(impl['name'])} — {verdict}",
        "",
        *([f"**This run is {state}, not a verdict**: {note}.", ""] if state != "complete" else []),
        f"- spec: {md_code(cert['spec'])} (class {md_code(impl['class'])})",
        f"- claims: devices {md_escape(', '.join(impl['devices']))}; "
        f"dtypes {md_escape(', '.join(impl['dtypes']))}; "
        f"features {md_escape(', '.join(impl['features']) or 'none')}",
        f"- reduced precision declared: {md_escape(impl.get('reduced_precision') or 'none')}",
        "- limits declared: " + ("; ".join(md_escape(lim["reason"]) for lim in impl.get("limits", []))
                                 or "none"),
        *([f"- the plug-in's output (stdout, stderr): {md_code(impl['log'])}"] if impl.get("log") else []),
        f"- certified on: devices {', '.join(cert['devices'])}; dtypes {', '.join(cert['dtypes'])}; "
        f"cases: {md_escape(cert['selection'])}",
        "- results: " + ", ".join(f"{n} {k}" for k, n in sorted(cert["counts"].items())),
        f"- started {cert['started']} UTC, took {cert['seconds']} s",
        *([f"- reused: certified {cert['reused']['certified']}, key sha256 {cert['reused']['key']} (nothing "
           "it depends on changed since)"] if cert.get("reused") else []),
        f"- environment: {env}",
        *([f"- CPU path: {md_escape(path)}"] if (path := _cpu_path(cert)) else []),
        "",
        "Cells: status (worst error ratio; cases passed ✓ and failed ✗). " + HOW,
    ]
    for device in cert["devices"]:
        grid = _feature_grid(cert, device)
        dtypes = [d for d in DTYPES if d in cert["dtypes"]]
        lines += ["", f"## Features on {device}", "",
                  "| feature | " + " | ".join(dtypes) + " |",
                  "| --- | " + " | ".join("---" for _ in dtypes) + " |"]
        for feature, row in grid.items():
            lines.append(f"| {feature} | " + " | ".join(_cell(row.get(d)) for d in dtypes) + " |")
    lines += _per_operation(cert)
    lines += _experiments(cert)
    diagnoses = _diagnoses(cert)
    if diagnoses:
        lines += ["", "## Diagnosis", ""] + diagnoses
    lines += _sweep(cert)
    failures = cert["failures"]
    lines += ["", f"## Failures ({len(failures)})", ""]
    if not failures:
        lines.append("None.")
    else:
        lines += ["| case | feature | output | worst index | found | expected | bound | ratio |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for f in failures[:max_failures]:
            blank = lambda v: "" if v is None else md_escape(v)  # noqa: E731
            lines.append(
                f"| {md_escape(f['case'])} | {md_escape(f['feature'])} | {md_escape(f.get('output', ''))} | "
                f"{f.get('index') or ''} | "
                f"{blank(f.get('found'))} | {blank(f.get('expected'))} | "
                f"{ratio(f.get('bound'))} | {ratio(f.get('ratio'))} |")
        if len(failures) > max_failures:
            lines.append(f"\n… and {len(failures) - max_failures} more (all in the JSON certificate).")
        lines += ["", "Reproduce (one line each):", "", "```"]
        seen = []
        for f in failures:
            if f.get("repro") and one_line(f["repro"]) not in seen:
                seen.append(one_line(f["repro"]))
        lines += seen[:max_failures] + ["```", "", "Messages:", ""]
        lines += [f"- {md_escape(f['message'])}" for f in failures[:max_failures] if f.get("message")]
    if cert.get("findings"):
        lines += ["", "## Findings (not verdicts): NaN, Inf, identical calls", ""]
        keys = list(next(iter(cert["findings"].values())))
        lines += ["| probe | " + " | ".join(md_escape(k) for k in cert["findings"]) + " |",
                  "| --- | " + " | ".join("---" for _ in cert["findings"]) + " |"]
        for k in keys:
            cells = " | ".join(md_escape(v.get(k, "")) for v in cert["findings"].values())
            lines.append(f"| {md_escape(k)} | {cells} |")
    return "\n".join(lines) + "\n"


def _compact(row: dict[str, dict[str, Any]], dtypes: list[str]) -> str:
    return "".join(SYMBOL.get(row[d]["status"], "?") if d in row else " " for d in dtypes)


def _compact_status(row: dict[str, str], dtypes: list[str]) -> str:
    return "".join(SYMBOL.get(row[d], "?") if d in row else " " for d in dtypes)


def matrix_markdown(matrix: dict[str, Any]) -> str:
    """One table: features x implementations, one symbol per dtype; then ratios and findings."""
    dtypes = matrix["dtypes"]
    impls = matrix["implementations"]
    ok = [i for i in impls if i["available"]]
    lines = [
        f"# Conformance matrix ({matrix['device']})",
        "",
        f"Generated {matrix['generated']} UTC in {matrix['seconds']} s; cases per dtype: "
        f"{matrix['cases']} ({matrix['selection']}). Each cell has one symbol per dtype, in the order "
        f"{', '.join(dtypes)}. {LEGEND}.",
        "",
        "| feature | " + " | ".join(f"{md_escape(i['name'])} ({'PASS' if i['passed'] else 'FAIL'})"
                                    for i in ok) + " |",
        "| --- | " + " | ".join("---" for _ in ok) + " |",
    ]
    for feature in matrix["features"]:
        row = " | ".join(f"`{_compact(i['features'][feature], dtypes)}`" for i in ok)
        lines.append(f"| {feature} | {row} |")
    pairs = sorted({k for i in ok for k in i.get("per_operation", {})})
    if pairs:
        lines += ["", "## Options per operation (one symbol per dtype, as above)", "",
                  "| operation · option | " + " | ".join(md_escape(i["name"]) for i in ok) + " |",
                  "| --- | " + " | ".join("---" for _ in ok) + " |"]
        for pair in pairs:
            cells = " | ".join(f"`{_compact_status(i.get('per_operation', {}).get(pair, {}), dtypes)}`"
                               for i in ok)
            lines.append(f"| {pair} | {cells} |")
    lines += ["", "## Worst error ratio per dtype (over every claimed feature; <= 1 passes)", "",
              "| implementation | " + " | ".join(dtypes) + " | failures | time (s) |",
              "| --- | " + " | ".join("---" for _ in dtypes) + " | --- | --- |"]
    for i in ok:
        lines.append(f"| {md_escape(i['name'])} | "
                     + " | ".join(ratio(i['worst_ratio'].get(d)) for d in dtypes)
                     + f" | {i['failures']} | {i['seconds']}"
                     + (f" (reused: certified {i['reused']['certified']})" if i.get("reused") else "") + " |")
    unavailable = [i for i in impls if not i["available"]]
    if unavailable:
        lines += ["", "## Not certified", ""]
        lines += [f"- {i['name']}: {md_escape(i['reason'])}" for i in unavailable]
    if ok:
        lines += ["", "## Findings (not verdicts): NaN, Inf, identical calls", "",
                  "| probe | " + " | ".join(md_escape(i["name"]) for i in ok) + " |",
                  "| --- | " + " | ".join("---" for _ in ok) + " |"]
        probes = sorted({k for i in ok for k in i["findings"]})
        for p in probes:
            lines.append(f"| {md_escape(p)} | " + " | ".join(md_escape(i["findings"].get(p, "")) for i in ok)
                         + " |")
    paths = [i for i in ok if i.get("cpu_path")]
    if paths:
        lines += ["", "## CPU path (a verdict holds for this path; another CPU may take another)", ""]
        lines += [f"- {md_escape(i['name'])}: {md_escape(i['cpu_path'])}" for i in paths]
    lines += ["", "## Environment", ""]
    lines += [f"- {md_escape(i['name'])}: " + ", ".join(f"{md_escape(k)} {md_escape(v)}"
                                                    for k, v in i.get("environment", {}).items())
              for i in ok]
    lines += ["", HOW]
    return "\n".join(lines) + "\n"
