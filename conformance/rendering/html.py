"""The conformance matrix as a standalone HTML page."""

from __future__ import annotations

import html
from typing import Any

from .text import HOW, LEGEND, SYMBOL, ratio

_COLOR = {"pass": "#c8f0c8", "fail": "#f4b4b4", "limited": "#f4dca0", "not run": "#e8e8e8",
          "not claimed": "#ffffff"}
_STYLE = ("body{font-family:sans-serif} table{border-collapse:collapse} "
          "td,th{border:1px solid #999;padding:2px 6px;text-align:center}")


def matrix_html(matrix: dict[str, Any]) -> str:
    """The matrix as a standalone HTML page: one coloured cell per (feature, implementation, dtype)."""
    dtypes = matrix["dtypes"]
    ok = [i for i in matrix["implementations"] if i["available"]]
    e = html.escape
    head = "".join(f'<th colspan="{len(dtypes)}">{e(i["name"])} ({"PASS" if i["passed"] else "FAIL"})</th>'
                   for i in ok)
    sub = "".join(f"<th>{e(d)}</th>" for _ in ok for d in dtypes)
    rows = []
    for feature in matrix["features"]:
        cells = []
        for i in ok:
            for d in dtypes:
                s = i["features"][feature].get(d, {"status": "not claimed", "reason": ""})
                tip = f"{s['status']}; worst ratio {ratio(s.get('worst_ratio'))}; {s.get('reason', '')}"
                cells.append(f'<td style="background:{_COLOR.get(s["status"], "#fff")}" title="{e(tip)}">'
                             f'{SYMBOL.get(s["status"], "?")}</td>')
        rows.append(f"<tr><th>{e(feature)}</th>{''.join(cells)}</tr>")
    probes = sorted({k for i in ok for k in i["findings"]})
    finding_rows = "".join(
        f"<tr><th>{e(p)}</th>" + "".join(f"<td>{e(i['findings'].get(p, ''))}</td>" for i in ok) + "</tr>"
        for p in probes)
    missing = "".join(f"<li>{e(i['name'])}: {e(i['reason'])}</li>"
                      for i in matrix["implementations"] if not i["available"])
    summary = (f"Generated {e(matrix['generated'])} UTC in {matrix['seconds']} s; "
               f"{matrix['cases']} cases per dtype ({e(matrix['selection'])}). {e(LEGEND)}. "
               "Hover a cell for its worst error ratio.")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>convcert conformance matrix ({e(matrix['device'])})</title>
<style>{_STYLE}</style>
</head><body>
<h1>Conformance matrix ({e(matrix['device'])})</h1>
<p>{summary}</p>
<table><tr><th rowspan="2">feature</th>{head}</tr><tr>{sub}</tr>{''.join(rows)}</table>
<h2>Findings (not verdicts): NaN, Inf, identical calls</h2>
<table><tr><th>probe</th>{''.join(f'<th>{e(i["name"])}</th>' for i in ok)}</tr>{finding_rows}</table>
{f'<h2>Not certified</h2><ul>{missing}</ul>' if missing else ''}
<p>{e(HOW)}</p>
</body></html>
"""
