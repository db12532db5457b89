"""Progress of a certification through its stages: a rich display on a terminal, plain lines elsewhere.

Each stage (the catalogue, the random sweep, the determinism calls, the experiments, the
diagnoses) shows what it has done of what it plans (when known), the failures so far, the time
it has taken and an estimate of the time left. On a terminal (stderr a tty, rich installed)
each stage is a bar of one live display, shared by the certifications a matrix runs side by
side. Elsewhere (CI, a log) a line is printed at most every ``PLAIN_EVERY`` seconds and when a
stage ends, and a heartbeat repeats the current line when nothing was printed for
``HEARTBEAT`` seconds, so no stage is ever silent for longer, even while one call runs long.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

#: Seconds between two plain progress lines of one stage at most (and at each stage's end).
PLAIN_EVERY = 5.0
#: Seconds without a line after which the current state is printed again (plain lines).
HEARTBEAT = 8.0

_now = time.monotonic  # (the tests' clock)
_lock = threading.Lock()
_live: dict[str, Any] = {"display": None, "users": 0}  # the shared rich display, and its users


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _shared_display() -> Any:
    """The one rich live display of this process (started on first use), or None without rich."""
    with _lock:
        if _live["display"] is None:
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )
            except ImportError:
                return None
            display = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                               TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True))
            display.start()
            _live["display"] = display
        _live["users"] += 1
        return _live["display"]


def _release_display() -> None:
    with _lock:
        _live["users"] -= 1
        if _live["users"] == 0 and _live["display"] is not None:
            _live["display"].stop()
            _live["display"] = None


class StageProgress:
    """The progress of one certification (``title``, e.g. ``certify jax``) through its stages."""

    def __init__(self, title: str, enabled: bool, *, rich: bool | None = None):
        self.title, self.enabled = title, enabled
        self.stage, self.unit, self.status = "", "cases", ""
        self.total: int | None = None
        self.done = self.failed = 0
        self.started = self.last_line = _now()
        self._task: Any = None
        self._display: Any = None
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None
        if not enabled:
            return
        # a terminal gets a live display unless NO_COLOR asks for plain lines
        if (sys.stderr.isatty() and not os.environ.get("NO_COLOR")) if rich is None else rich:
            self._display = _shared_display()
        if self._display is None:
            self._heart = threading.Thread(target=self._beat, name=f"progress {title}", daemon=True)
            self._heart.start()

    # -- what the certification reports -----------------------------------------------
    def begin(self, stage: str, total: int | None = None, unit: str = "cases") -> None:
        """A new stage: ``total`` items planned (None: not known beforehand; no ``unit``: nothing
        to count, a wait)."""
        if not self.enabled:
            return
        self.end()
        with _lock:
            self.stage, self.unit, self.total, self.status = stage, unit, total, ""
            self.done = self.failed = 0
            self.started = _now()
        if self._display is not None:
            self._task = self._display.add_task(f"{self.title}: {stage}", total=total, status="")

    def plan(self, total: int) -> None:
        """The current stage's total, once it is known."""
        if not self.enabled:
            return
        self.total = total
        if self._task is not None:
            self._display.update(self._task, total=total)

    def advance(self, count: int = 1, *, failed: bool = False, status: str = "") -> None:
        if not self.enabled:
            return
        with _lock:
            self.done += count
            self.failed += failed
            self.status = status or self.status
        if self._task is not None:
            self._display.update(self._task, advance=count, status=self._status())
        elif _now() - self.last_line >= PLAIN_EVERY:
            self._print()

    def end(self) -> None:
        """The current stage is over (printed once more with its final count)."""
        if not self.enabled or not self.stage:
            return
        if self._task is not None:
            self._display.update(self._task, total=self.done, completed=self.done, status=self._status())
            self._task = None
        else:
            self._print(final=True)
        self.stage = ""

    def close(self) -> None:
        self.end()
        self._stop.set()
        if self._display is not None:
            self._display = None
            _release_display()

    # -- what it shows ----------------------------------------------------------------
    def _status(self) -> str:
        failed = f"{self.failed} failed" if self.failed else ""
        return " | ".join(s for s in (failed, self.status[:60]) if s)

    def line(self, final: bool = False) -> str:
        """The plain line of the current stage: counts, failures, time taken and left."""
        elapsed = _now() - self.started
        counts = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        parts = [f"[{self.title}] {self.stage}" + (f" {counts} {self.unit}" if self.unit else "")]
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"{_duration(elapsed)}" + (" (done)" if final else ""))
        if not final and self.total and self.done:
            parts.append(f"ETA {_duration(elapsed / self.done * max(self.total - self.done, 0))}")
        if not final and self.status:
            parts.append(self.status[:60])
        return ", ".join(parts)

    def _print(self, final: bool = False) -> None:
        with _lock:
            text = self.line(final)
            self.last_line = _now()
        print(text, file=sys.stderr, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            if self.stage and _now() - self.last_line >= HEARTBEAT:
                self._print()
