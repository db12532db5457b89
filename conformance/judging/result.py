"""What judging one case gives: its status and checks, as data.

Statuses are defined here once, for every module that reads or writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

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


@dataclass
class CaseResult:
    """Outcome of one case on one (device, dtype)."""

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
