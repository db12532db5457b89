"""What every rendering of conformance data shares: status symbols, the legend, the method, number format."""

from __future__ import annotations

import html
import re
from typing import Any

#: One symbol per status in the compact matrix cells.
SYMBOL = {"pass": "✓", "fail": "✗", "implicated": "~", "not claimed": "·", "limited": "L", "not run": "–"}
LEGEND = ("✓ pass · ✗ fail · ~ implicated (fails only where another failed feature explains it) · "
          "L every case limited (a claimed feature that never passed fails) · "
          "– not run (needs an unclaimed feature) · · not claimed")
HOW = ("Each output is compared with the float64 reference computed on the same (rounded) inputs. "
       "The error ratio is max |found - expected| / bound, where the bound is "
       "`conformance.judging.tolerance.error_bound`: f(L+1) * sum|terms| for a sum of L terms at the "
       "unit roundoff u of the precision the sums accumulate in (float32 for float16/bfloat16 unless "
       "declared), f the least of the worst case gamma = nu/(1-nu), Higham-Mary's probabilistic "
       "exp(32 sqrt(n) u) - 1 and 2, plus one ulp of the output dtype; "
       "exact-mode cases (small integers, every partial sum representable) allow no error at all. "
       "A ratio <= 1 passes.")


def ratio(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    return f"{v:.2g}" if v else "0"


#: Characters that start Markdown syntax within a line (emphasis, links and images, code,
#: table cells, strike-through): escaped with a backslash. Headings, lists and quotes need a
#: line of their own, and every escaped text is made one line first.
_MARKDOWN = re.compile(r"([\\`*\[\]|~])")


def md_escape(text: Any) -> str:
    """``text`` as inert Markdown running text: one line, HTML entities, every Markdown sign
    escaped. Everything a plug-in, a user or the environment says goes through here (or
    :func:`md_code`) before it reaches a Markdown document."""
    one_line = " ".join(str(text).split())
    return _MARKDOWN.sub(r"\\\1", html.escape(one_line, quote=False))


def md_code(text: Any) -> str:
    """``text`` as an inline code span on one line (HTML and Markdown are not read inside one)."""
    one_line = " ".join(str(text).split()).replace("`", "'")
    return f"`{one_line}`"


def one_line(text: Any) -> str:
    """``text`` on one line without backticks: safe inside a fenced code block."""
    return " ".join(str(text).split()).replace("`", "'")
