"""What every rendering of conformance data shares: status symbols, the legend, the method, number format."""

from __future__ import annotations

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


def md_escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
