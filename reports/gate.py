"""The regression gate: a new run against a saved one, row by row.

Rows match on machine, device, implementation, dtype, layout, workload and pass
(:meth:`benchmarks.records.TaskSpec.key`). Within each side, files are taken in the order
of their recorded start time (then file name), never in argument order: where two files
hold the same row, the later run's row counts. A regression is

- a right answer in the baseline that got slower beyond both the threshold and the noise:
  the new median is more than ``threshold`` percent above the old one AND the two
  medians' 95% confidence intervals do not overlap (the new interval lies wholly above
  the old); where a file kept no raw times (schema 1) the threshold alone decides,
- a right answer that became wrong or an error,
- a baseline row missing from the new run, or moved to its skipped list, unless a
  ``--allow-dropped`` pattern (or a line of a ``--dropped`` file) names it as dropped on
  purpose.

A slowdown is judged only where load cannot have made it: a run whose load record says the
machine was busy (other processes used over a quarter of its CPUs, ``benchmarks/load.py``)
measures the load as much as the implementation (six busy processes on two cores made
torch's medians 12x slower, up to 500x, and 224 of a run's 232 rows "regressed"). So when a new run
was busy, a row slower beyond the threshold (or skipped now for time) is *not judged*, and
when a baseline run was busy no slowdown is judged at all (it may hide one). Answers that
became wrong, and rows missing from the new run, are judged whatever the load. A gate with
rows not judged has not passed: the command line exits 2 saying which run was busy (1 if
there is a regression besides).

Baseline rows of a machine that has no run among the new results are not compared
(a baseline folder may hold other machines' runs); the gate says which machines it left
aside. When no baseline row matches a new row at all, :attr:`Verdict.nothing_compared`
says why, and the command line exits 2: a gate that compared nothing has not passed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from benchmarks import load
from benchmarks.records import BenchmarkResult
from benchmarks.stats import separated
from benchmarks.storage import RunDocument

Key = tuple[str, ...]


def key_text(key: Key) -> str:
    """``machine/device/impl/dtype/layout/workload/pass``: what ``--allow-dropped`` patterns match."""
    return "/".join(key)


@dataclass(frozen=True)
class Regression:
    key: Key
    why: str
    baseline_ms: float | None = None
    current_ms: float | None = None
    #: a time regression (slower, or skipped now for time), which load can cause; else an
    #: answer that became wrong or a missing row
    slowdown: bool = False


@dataclass
class Verdict:
    regressions: list[Regression] = field(default_factory=list)
    dropped: list[Key] = field(default_factory=list)  # missing on purpose (matched a pattern)
    machines_left_aside: list[str] = field(default_factory=list)
    compared: int = 0  # baseline rows matched by a new row (timed or not)
    within_noise: int = 0  # slower beyond the threshold, but inside the two runs' noise
    nothing_compared: str = ""  # why no row matched, when none did
    #: runs measured on a busy machine: "new run FILE: how busy" (baseline runs too)
    busy: list[str] = field(default_factory=list)
    #: slowdowns not judged because a run was busy
    not_judged: list[Regression] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.regressions and not self.nothing_compared and not self.not_judged


def _busy(docs: Iterable[RunDocument], side: str, machines: set[str]) -> list[str]:
    return [f"{side} run {doc.path.name}: {load.describe(doc.header['load'])}" for doc in in_time_order(docs)
            if doc.machine in machines and (doc.header.get("load") or {}).get("busy")]


#: Skip reasons that depend on the machine's speed (benchmarks.harness.SKIP_RULE).
TIME_SKIPS = ("measured:", "estimated:", "time budget")


def read_dropped(path: str | Path) -> list[str]:
    """Patterns from a ``--dropped`` file: one per line; blank lines and ``#`` comments ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"--dropped {path}: cannot be read ({exc.strerror})") from None
    return [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]


def in_time_order(docs: Iterable[RunDocument]) -> list[RunDocument]:
    """Runs by recorded start time (ISO 8601 text), then file name: argument order never counts."""
    return sorted(docs, key=lambda d: (d.started, d.path.name))


def _index(docs: Iterable[RunDocument]) -> dict[Key, BenchmarkResult]:
    return {r.task.key(doc.machine): r for doc in in_time_order(docs) for r in doc.results}


def compare(current: Sequence[RunDocument], baseline: Sequence[RunDocument], threshold_pct: float,
            dropped: Sequence[str] = ()) -> Verdict:
    """Every regression of ``current`` against ``baseline`` (see the module docstring)."""
    if not threshold_pct >= 0:
        raise ValueError(f"--threshold {threshold_pct}: must be >= 0 (percent)")
    now = _index(current)
    skipped = {s.task.key(doc.machine): s.reason for doc in in_time_order(current) for s in doc.skipped}
    machines = {doc.machine for doc in current}
    verdict = Verdict(machines_left_aside=sorted({d.machine for d in baseline} - machines))
    busy_now, busy_then = _busy(current, "new", machines), _busy(baseline, "baseline", machines)
    verdict.busy = busy_now + busy_then
    saved = _index(baseline)
    verdict.compared = sum(1 for key in saved if key in now or key in skipped)
    if not verdict.compared:
        verdict.nothing_compared = _why_nothing(saved, now, machines)
        return verdict
    for key, old in sorted(saved.items()):
        if key[0] not in machines:
            continue
        new = now.get(key)
        found: Regression | None
        if new is None:
            if any(fnmatchcase(key_text(key), p) for p in dropped):
                verdict.dropped.append(key)
                continue
            why = f"moved to skipped: {skipped[key]}" if key in skipped else "missing from the new run"
            slow = key in skipped and skipped[key].startswith(TIME_SKIPS)
            found = Regression(key, why, _ms(old), slowdown=slow)
        else:
            found = _compare_row(key, old, new, threshold_pct)
            if found is None and busy_then and old.status == "ok" and new.status == "ok":
                # a busy baseline is slow itself: "not slower" says nothing
                found = Regression(key, "the baseline was measured on a busy machine", _ms(old), _ms(new),
                                   slowdown=True)
        if found is None:
            continue
        if found.slowdown and (busy_then or (busy_now and found.why != WITHIN_NOISE)):
            verdict.not_judged.append(found)
        elif found.why == WITHIN_NOISE:
            verdict.within_noise += 1
        else:
            verdict.regressions.append(found)
    return verdict


def _why_nothing(saved: dict[Key, BenchmarkResult], now: dict[Key, BenchmarkResult],
                 machines: set[str]) -> str:
    old_machines = sorted({k[0] for k in saved})
    if not saved:
        return "the baseline holds no readable result row"
    if not set(old_machines) & machines:
        return (f"no baseline row matches: the baseline was measured on {', '.join(old_machines)}, "
                f"the new results on {', '.join(sorted(machines))} (rows match per machine)")
    return ("no baseline row matches a new row on device, implementation, dtype, layout, workload and pass "
            f"({len(saved)} baseline rows, {len(now)} new rows)")


def _ms(result: BenchmarkResult) -> float | None:
    return result.median_s * 1e3 if result.timing else None


WITHIN_NOISE = "slower beyond the threshold, within the noise"


def _compare_row(key: Key, old: BenchmarkResult, new: BenchmarkResult,
                 threshold_pct: float) -> Regression | None:
    if old.status != "ok":
        return None
    if new.status != "ok":
        return Regression(key, f"answer became {new.status}", _ms(old), _ms(new))
    change = 100 * (new.median_s / old.median_s - 1)
    if change <= threshold_pct:
        return None
    a, b = old.timing.summary, new.timing.summary  # type: ignore[union-attr]  # status ok: timed
    bounds = (a.ci_low_s, a.ci_high_s, b.ci_low_s, b.ci_high_s)
    if all(map(math.isfinite, bounds)):
        if not (separated(*bounds) and b.ci_low_s > a.ci_high_s):
            return Regression(key, WITHIN_NOISE, _ms(old), _ms(new), slowdown=True)
        noise = (f"; 95% CI {b.ci_low_s * 1e3:.3g}-{b.ci_high_s * 1e3:.3g} ms above "
                 f"{a.ci_low_s * 1e3:.3g}-{a.ci_high_s * 1e3:.3g} ms")
    else:
        noise = "; no confidence interval in a file (threshold alone)"
    return Regression(key, f"{change:+.1f}% > {threshold_pct:g}%{noise}", _ms(old), _ms(new), slowdown=True)
