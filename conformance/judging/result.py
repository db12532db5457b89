"""What judging one case gives: its status and checks, as data.

Statuses are defined here once, for every module that reads or writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from implementations.files import json_float

from .compare import Check

#: What a case, or a feature summarising cases, came to.
Status = Literal["pass", "fail", "limited", "not claimed", "too large", "not run", "implicated"]
PASS: Final = "pass"
FAIL: Final = "fail"
#: A declared limit covers the case: not run, with the limit's reason.
LIMITED: Final = "limited"
#: The implementation does not claim what the case needs.
NOT_CLAIMED: Final = "not claimed"
#: The problem needs more memory than the certifier may use (``--max-memory``): not run.
TOO_LARGE: Final = "too large"
#: (features) every case needs another feature that is not claimed.
NOT_RUN: Final = "not run"
#: (features) fails only in cases that another failed feature explains.
IMPLICATED: Final = "implicated"
STATUSES: tuple[str, ...] = get_args(Status)


def field_of(d: Any, key: str, kind: type | tuple[type, ...], default: Any = ..., *, where: str = "") -> Any:
    """``d[key]`` when it is a ``kind`` (``default`` when absent and one is given); else a
    ValueError naming ``where``, the key, the value and the type it must have. A bool is
    never taken for a number."""
    if not isinstance(d, dict):
        raise ValueError(f"{where or 'record'}: must be a JSON object, not {type(d).__name__}")
    if key not in d:
        if default is ...:
            raise ValueError(f"{where}{'.' if where else ''}{key}: missing")
        return default
    value = d[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{where}{'.' if where else ''}{key}={value!r:.80}: must be {names}")
    return value


def number_of(d: Any, key: str, default: Any = ..., *, where: str = "") -> float:
    """A float field as :func:`implementations.files.json_float` writes it: a number, or
    ``"inf"``, ``"-inf"``, ``"nan"``."""
    value = field_of(d, key, (int, float, str), default, where=where)
    if isinstance(value, str):
        if value not in ("inf", "-inf", "nan"):
            raise ValueError(f"{where}.{key}={value!r:.80}: must be a number, 'inf', '-inf' or 'nan'")
        return float(value)
    return float(value)


def check_from_dict(d: Any, where: str = "check") -> Check:
    """A :class:`Check` again from its ``to_dict()``, or from the brief form a passing check is
    stored in (``output``, ``kind``, ``ratio``: ``passed`` absent means it passed)."""
    index = field_of(d, "index", list, [], where=where)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
        raise ValueError(f"{where}.index={index!r:.80}: must be a list of integers")
    bound = d.get("bound") if isinstance(d, dict) else None
    return Check(field_of(d, "output", str, where=where), field_of(d, "kind", str, where=where),
                 field_of(d, "passed", bool, True, where=where), number_of(d, "ratio", 0.0, where=where),
                 tuple(index), d.get("found"), d.get("expected"),
                 None if bound is None else number_of(d, "bound", where=where),
                 field_of(d, "message", str, "", where=where))


@dataclass(frozen=True)
class CaseResult:
    """Outcome of one case on one (device, dtype), built complete (``dataclasses.replace`` for
    a changed copy)."""

    case: str
    op: str
    device: str
    dtype: str
    status: Status
    filed_under: tuple[str, ...]
    mode: str
    checks: list[Check] = field(default_factory=list)
    reason: str = ""
    repro: str = ""
    seconds: float = 0.0
    #: the worker died, timed out or sent a malformed answer (not an answer to judge)
    died: bool = False

    @classmethod
    def from_dict(cls, d: Any, where: str = "result") -> CaseResult:
        """A :class:`CaseResult` again from its ``to_dict()`` (what a certificate file holds);
        ValueError naming ``where`` and the field when ``d`` is not one. The status is taken
        as stored: :func:`rejudge` says whether the stored evidence supports it."""
        status = field_of(d, "status", str, where=where)
        if status not in STATUSES:
            raise ValueError(f"{where}.status={status!r:.80}: must be one of {', '.join(STATUSES)}")
        filed = field_of(d, "filed_under", list, where=where)
        if not filed or not all(isinstance(f, str) for f in filed):
            raise ValueError(f"{where}.filed_under={filed!r:.80}: must be a non-empty list of names")
        checks = field_of(d, "checks", list, where=where)
        return cls(field_of(d, "case", str, where=where), field_of(d, "op", str, where=where),
                   field_of(d, "device", str, where=where), field_of(d, "dtype", str, where=where),
                   status, tuple(filed), field_of(d, "mode", str, where=where),
                   [check_from_dict(c, f"{where}.checks[{i}]") for i, c in enumerate(checks)],
                   field_of(d, "reason", str, "", where=where), field_of(d, "repro", str, "", where=where),
                   number_of(d, "seconds", 0.0, where=where))

    @property
    def label(self) -> str:
        return f"{self.case}-{self.dtype}"

    @property
    def worst_ratio(self) -> float:
        return max((c.ratio for c in self.checks), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case, "op": self.op, "device": self.device, "dtype": self.dtype,
            "status": self.status, "filed_under": list(self.filed_under), "mode": self.mode,
            "worst_ratio": json_float(self.worst_ratio), "reason": self.reason,
            "repro": self.repro if self.status == FAIL else "", "seconds": round(self.seconds, 4),
            # passing checks in brief (the certificate stays small); failures in full
            "checks": [c.to_dict() if not c.passed else {"output": c.output, "kind": c.kind, "ratio": c.ratio}
                       for c in self.checks if not c.passed or c.kind != "behaviour"],
        }


def _evidence_ratio(c: Check) -> float | None:
    """``|found - expected| / bound`` where a check stored all three as numbers, else None."""
    values = (c.found, c.expected, c.bound)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    found, expected, bound = (float(v) for v in values)  # type: ignore[arg-type]
    if found == expected or (math.isnan(found) and math.isnan(expected)):
        return 0.0
    return abs(found - expected) / bound if bound > 0 else math.inf


def rejudge(r: CaseResult) -> str:
    """Why the stored evidence of ``r`` (each check's error and bound) does not give its
    stored status, or "" when it does: a check passes when its ratio is at most 1 (its
    ratio recomputed from found, expected and bound where those are stored), and a result
    passes when it has checks and every one passes."""
    for c in r.checks:
        ratio = math.inf if math.isnan(c.ratio) else c.ratio  # NaN counts as infinitely wrong
        again = _evidence_ratio(c)
        if again is not None and not math.isclose(again, ratio, rel_tol=1e-6) \
                and not (math.isinf(again) and math.isinf(ratio)):
            return (f"{r.label} {c.output}: ratio {c.ratio:.3g} stored, but |found - expected| / bound "
                    f"= {again:.3g}")
        if c.passed != (ratio <= 1.0):
            return f"{r.label} {c.output}: ratio {c.ratio:.3g} stored as {'passed' if c.passed else 'failed'}"
    judged = FAIL if any(not c.passed for c in r.checks) else PASS
    if r.status in (PASS, FAIL):
        if r.status == PASS and not r.checks:
            return f"{r.label}: status pass with no check stored"
        if r.status != judged:
            return f"{r.label}: status {r.status} stored, its checks say {judged}"
    elif r.checks and judged == FAIL:
        return f"{r.label}: status {r.status} stored, with a failed check"
    return ""


def repro_command(spec: str, case: str, device: str, dtype: str) -> str:
    return f"python -m conformance certify {spec} --case {case} --device {device} --dtype {dtype}"


def failure_records(result: CaseResult) -> list[dict[str, Any]]:
    """One record per failed check: case, feature, output, worst index, found, expected, bound, repro."""
    return [
        {"case": result.label, "feature": "+".join(result.filed_under), "op": result.op,
         "device": result.device, "dtype": result.dtype, **c.to_dict(), "repro": result.repro,
         **({"note": result.reason} if result.reason and result.reason not in c.message else {})}
        for c in result.checks if not c.passed
    ]
