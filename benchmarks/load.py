"""How busy the machine was: load average and CPU time taken by other processes.

A run samples the machine at its start and end (:func:`sample`) and over its whole length
(:func:`during`): the CPU time every process used (``/proc/stat``) minus this process's
own and its children's (``os.times``), per second of wall time, is the number of CPUs other
work kept busy. Without ``/proc`` (not Linux) only the load average is recorded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

#: Other processes using more than this share of the usable CPUs make a run "busy".
BUSY_SHARE = 0.25
#: Seconds a start or end sample watches the machine.
SAMPLE_S = 0.5


def _system_busy_s() -> float | None:
    """CPU seconds all processes have used since boot (user, nice, system, irq, softirq, steal)."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class Mark:
    """A point in time to measure other processes' CPU use from."""

    wall: float
    system_s: float | None
    own_s: float

    @classmethod
    def now(cls) -> Mark:
        return cls(time.monotonic(), _system_busy_s(), _own_s())

    def others_cpus(self) -> float | None:
        """CPUs other processes kept busy on average since this mark (None without /proc)."""
        end = Mark.now()
        if self.system_s is None or end.system_s is None or end.wall <= self.wall:
            return None
        others = (end.system_s - self.system_s) - (end.own_s - self.own_s)
        return max(0.0, others / (end.wall - self.wall))


def sample(seconds: float = SAMPLE_S) -> dict[str, Any]:
    """Load average and other processes' CPU use over ``seconds`` (this process idle meanwhile)."""
    mark = Mark.now()
    time.sleep(seconds)
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        one = five = float("nan")
    return {"loadavg_1m": one, "loadavg_5m": five, "others_cpus": mark.others_cpus(), "window_s": seconds}


def summary(start: dict[str, Any], end: dict[str, Any], during: float | None,
            usable_cpus: int) -> dict[str, Any]:
    """The run's ``load`` record, with the verdict ``busy``."""
    others = [float(v) for v in (start.get("others_cpus"), end.get("others_cpus"), during) if v is not None]
    loads = [float(v) for v in (start.get("loadavg_1m"), end.get("loadavg_1m"))
             if v is not None and v == v]  # not NaN
    busy = (max(others) > BUSY_SHARE * usable_cpus) if others else \
        bool(loads and max(loads) > 1 + BUSY_SHARE * usable_cpus)
    return {"start": start, "end": end, "others_cpus_during_run": during, "usable_cpus": usable_cpus,
            "busy": busy, "rule": f"busy when other processes used more than {BUSY_SHARE:.0%} of the usable "
                                  "CPUs at the start, the end or on average over the run"}


def describe(record: dict[str, Any]) -> str:
    """One sentence: how busy the machine was."""
    def cpus(v: float | None) -> str:
        return "?" if v is None else f"{v:.2f}"

    s, e = record.get("start") or {}, record.get("end") or {}
    during = cpus(record.get("others_cpus_during_run"))
    return (f"other processes kept {during} of {record.get('usable_cpus')} usable CPUs busy "
            f"on average during the run ({cpus(s.get('others_cpus'))} at the start, "
            f"{cpus(e.get('others_cpus'))} at the end; load average {s.get('loadavg_1m', float('nan')):.2f} "
            f"at the start, {e.get('loadavg_1m', float('nan')):.2f} at the end)")
