"""The regression gate: a new run against a saved one, row by row.

Rows match on machine, device, implementation, dtype, layout, workload and pass
(:meth:`benchmarks.records.TaskSpec.key`). A regression is

- a right answer in the baseline that got slower by more than the threshold,
- a right answer that became wrong or an error,
- a baseline row missing from the new run, or moved to its skipped list, unless a
  ``--allow-dropped`` pattern (or a line of a ``--dropped`` file) names it as dropped on
  purpose.

Baseline rows of a machine that has no run among the new results are not compared
(a baseline folder may hold other machines' runs); the gate says which machines it left
aside.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from benchmarks.records import BenchmarkResult
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


@dataclass
class Verdict:
    regressions: list[Regression] = field(default_factory=list)
    dropped: list[Key] = field(default_factory=list)  # missing on purpose (matched a pattern)
    machines_left_aside: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.regressions


def read_dropped(path: str | Path) -> list[str]:
    """Patterns from a ``--dropped`` file: one per line; blank lines and ``#`` comments ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"--dropped {path}: cannot be read ({exc.strerror})") from None
    return [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]


def _index(docs: Iterable[RunDocument]) -> dict[Key, BenchmarkResult]:
    return {r.task.key(doc.machine): r for doc in docs for r in doc.results}


def compare(current: Sequence[RunDocument], baseline: Sequence[RunDocument], threshold_pct: float,
            dropped: Sequence[str] = ()) -> Verdict:
    """Every regression of ``current`` against ``baseline`` (see the module docstring)."""
    if not threshold_pct >= 0:
        raise ValueError(f"--threshold {threshold_pct}: must be >= 0 (percent)")
    now = _index(current)
    skipped = {s.task.key(doc.machine): s.reason for doc in current for s in doc.skipped}
    machines = {doc.machine for doc in current}
    verdict = Verdict(machines_left_aside=sorted({d.machine for d in baseline} - machines))
    for key, old in sorted(_index(baseline).items()):
        if key[0] not in machines:
            continue
        new = now.get(key)
        if new is None:
            if any(fnmatchcase(key_text(key), p) for p in dropped):
                verdict.dropped.append(key)
                continue
            why = f"moved to skipped: {skipped[key]}" if key in skipped else "missing from the new run"
            verdict.regressions.append(Regression(key, why, _ms(old)))
            continue
        found = _compare_row(key, old, new, threshold_pct)
        if found is not None:
            verdict.regressions.append(found)
    return verdict


def _ms(result: BenchmarkResult) -> float | None:
    return result.median_s * 1e3 if result.timing else None


def _compare_row(key: Key, old: BenchmarkResult, new: BenchmarkResult,
                 threshold_pct: float) -> Regression | None:
    if old.status != "ok":
        return None
    if new.status != "ok":
        return Regression(key, f"answer became {new.status}", _ms(old), _ms(new))
    change = 100 * (new.median_s / old.median_s - 1)
    if change > threshold_pct:
        return Regression(key, f"{change:+.1f}% > {threshold_pct:g}%", _ms(old), _ms(new))
    return None
