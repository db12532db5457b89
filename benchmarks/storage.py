"""Result files: one JSON document per run, rewritten atomically after every benchmark.

An interrupted run therefore leaves a valid file holding everything that finished. Each
run gets its own file name (:func:`new_result_path`: UTC time, process id and a random
suffix, created with ``O_EXCL``), so two runs started in the same second on the same
machine never write the same file. The ``machine`` field lets reports merge files from
several machines.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from implementations.files import write_atomic

from .records import READABLE_SCHEMAS, SCHEMA, BenchmarkResult, SkippedCase, result_from_v1, skip_from_v1


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def new_result_path(folder: Path, machine: str, profile: str) -> Path:
    """Claim a result file name no other run has: ``MACHINE-PROFILE-UTC-PID-RANDOM.json``.

    The file is created empty with ``O_CREAT | O_EXCL``, so the name is this run's even if
    another process picked the same one (it then draws again).
    """
    if not machine or "/" in machine:
        raise ValueError(f"machine={machine!r}: must be a non-empty name without '/'")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    for _ in range(100):
        path = folder / f"{machine}-{profile}-{stamp}-{os.getpid()}-{secrets.token_hex(3)}.json"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        return path
    raise RuntimeError(f"could not create a unique result file in {folder}")


class ResultFile:
    """A run's result document; every ``add_*`` call persists the whole document."""

    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = Path(path)
        self.header: dict[str, Any] = dict(header)
        self.results: list[BenchmarkResult] = []
        self.skipped: list[SkippedCase] = []
        self.save()

    @property
    def document(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **self.header, "results": [r.to_json() for r in self.results],
                "skipped": [s.to_json() for s in self.skipped]}

    def update(self, **fields: Any) -> None:
        self.header.update(fields)
        self.save()

    def add_result(self, result: BenchmarkResult) -> None:
        self.results.append(result)
        self.save()

    def add_skip(self, skip: SkippedCase) -> None:
        self.skipped.append(skip)
        self.save()

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.document, indent=1, default=_jsonable))


@dataclass
class RunDocument:
    """A result file read back: its header (machine, environment, settings, peaks) and records."""

    path: Path
    header: dict[str, Any]
    results: list[BenchmarkResult] = field(default_factory=list)
    skipped: list[SkippedCase] = field(default_factory=list)
    #: One line per row left out (malformed, a zero, NaN or negative time), naming file and row.
    problems: list[str] = field(default_factory=list)

    @property
    def machine(self) -> str:
        return str(self.header.get("machine") or self.path.stem)

    @property
    def started(self) -> str:
        """The run's recorded start (ISO 8601 UTC, so text order is time order)."""
        return str(self.header.get("started") or "")


#: Header fields that must be JSON objects when present.
OBJECT_FIELDS = ("environment", "implementations", "settings", "peaks", "bandwidth", "load", "not_loaded")


def read(path: Path) -> RunDocument:
    """Load one result file (schema 1 or 2); ValueError naming the file if it is not one."""
    path = Path(path)
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        size = path.stat().st_size
        what = "empty" if size == 0 else f"not JSON ({exc.msg}: line {exc.lineno} column {exc.colno})"
        raise ValueError(f"{path}: {what}; not a convcert result file") from None
    if not isinstance(doc, dict) or doc.get("schema") not in READABLE_SCHEMAS or "results" not in doc:
        schemas = ", ".join(map(str, READABLE_SCHEMAS))
        raise ValueError(f"{path}: not a convcert result file (schema {schemas})")
    header = {k: v for k, v in doc.items() if k not in ("results", "skipped")}
    for name in ("machine", "started"):
        if name in header and not isinstance(header[name], str):
            raise ValueError(f"{path}: '{name}' is a {type(header[name]).__name__}, not a string; "
                             "not a convcert result file")
    for name in OBJECT_FIELDS:
        if header.get(name) is not None and not isinstance(header[name], dict):
            raise ValueError(f"{path}: '{name}' is a {type(header[name]).__name__}, not an object; "
                             "not a convcert result file")
    if not all(isinstance(v, dict) for v in (header.get("implementations") or {}).values()):
        raise ValueError(f"{path}: 'implementations' must map names to objects; not a convcert result file")
    if not isinstance(doc["results"], list) or not isinstance(doc.get("skipped", []), list):
        raise ValueError(f"{path}: 'results' and 'skipped' must be lists; not a convcert result file")
    v1 = doc["schema"] == 1
    run = RunDocument(path, header)
    for i, raw in enumerate(doc["results"]):
        try:
            run.results.append(result_from_v1(raw) if v1 else BenchmarkResult.from_json(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            run.problems.append(f"{path}: results[{i}] ({_row_name(raw)}) left out: {_reason(exc)}")
    for i, raw in enumerate(doc.get("skipped", [])):
        try:
            run.skipped.append(skip_from_v1(raw) if v1 else SkippedCase.from_json(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            run.problems.append(f"{path}: skipped[{i}] ({_row_name(raw)}) left out: {_reason(exc)}")
    return run


def _reason(exc: Exception) -> str:
    return f"missing field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"


def _row_name(raw: Any) -> str:
    """impl/device/dtype/workload/pass of a raw row, as far as it can be read."""
    task = raw.get("task", raw) if isinstance(raw, dict) else {}
    task = task if isinstance(task, dict) else {}
    return "/".join(str(task.get(k, "?")) for k in ("impl", "device", "dtype", "workload", "pass"))
