"""Reporting progress: one line per finished, skipped or failed case, on the console."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..timed_cases import TimedCase


@dataclass
class Progress:
    """Prints ``[done/total] impl device dtype layout workload pass text`` (rich markup where
    a rich console is given, else plain text)."""

    total: int
    console: Any = None
    done: int = 0

    def say(self, case: TimedCase, text: str) -> None:
        line = (f"[{self.done:>3}/{self.total}] {case.impl:>10} {case.device} {case.dtype} "
                f"{case.layout} {case.workload.name:<36} {case.pass_:<8} {text}")
        if self.console is not None:
            self.console.print(line, highlight=False, soft_wrap=True)
        else:  # without rich: the same line, its colour markup removed
            print(re.sub(r"\[/?(red|yellow)\]", "", line), flush=True)
