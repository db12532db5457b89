"""The one comparison helper: a result against its reference and bound, as data or an assertion.

Every message names the case, the output, the worst index, the value found, the value
expected, the bound and the error as a ratio to the bound, so that a failure says what is
wrong without a debugger.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from implementations.files import json_float

from .tolerance import error_ratio


@dataclass(frozen=True)
class Check:
    """One verdict on one output (or one behavioural rule) of one case.

    ``kind`` is ``exact`` (bound 0 on the sum: bit for bit), ``float`` (the error bound of
    ``tolerance``) or ``behaviour`` (shape, dtype, inputs unmodified, no crash).
    """

    output: str
    kind: str
    passed: bool
    ratio: float = 0.0
    index: tuple[int, ...] = ()
    found: Any = None
    expected: Any = None
    bound: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["index"] = list(self.index)
        d["ratio"] = json_float(self.ratio)
        for key in ("found", "expected", "bound"):
            if isinstance(d[key], float):
                d[key] = json_float(d[key])
        return d


def compare(case: str, output: str, found: np.ndarray, expected: np.ndarray, bound: np.ndarray,
            *, kind: str = "float") -> Check:
    """Compare ``found`` with ``expected`` elementwise under ``bound``; the worst element decides."""
    f = np.asarray(found)
    if f.shape != np.shape(expected):
        return behaviour(case, output, False, f"shape {f.shape}, expected {np.shape(expected)}",
                         found=f"shape {f.shape}", expected=f"shape {np.shape(expected)}")
    r = error_ratio(f, expected, bound)
    msg = (f"{case}: {output}{list(r.index)} = {r.found!r}, expected {r.expected!r}, "
           f"|error| {abs(r.found - r.expected):.3g} > bound {r.bound:.3g} "
           f"(ratio {r.worst:.3g}, {kind} mode)")
    return Check(output, kind, r.passed, r.worst, r.index, r.found, r.expected, r.bound,
                 "" if r.passed else msg)


def behaviour(case: str, rule: str, ok: bool, detail: str = "", *, found: Any = None,
              expected: Any = None) -> Check:
    """A behavioural rule (``dtype``, ``shape``, ``inputs unmodified``, ``no crash``)."""
    return Check(rule, "behaviour", ok, 0.0 if ok else float("inf"), found=found, expected=expected,
                 message="" if ok else f"{case}: {rule}: {detail}")


def assert_close(found: np.ndarray, expected: np.ndarray, bound: np.ndarray | float, *, case: str,
                 output: str = "y", kind: str = "float", repro: str = "") -> Check:
    """Assertion form of :func:`compare`, the one the project's tests use.

    Raises AssertionError naming the case, the output, the worst index, the value found,
    the value expected and the bound (a ``tolerance.error_bound``); pytest hides this frame.
    """
    __tracebackhide__ = True
    check = compare(case, output, found, expected, np.asarray(bound), kind=kind)
    if not check.passed:
        raise AssertionError(check.message + (f"\n  reproduce: {repro}" if repro else ""))
    return check
