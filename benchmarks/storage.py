"""Result files: one JSON document per run, rewritten atomically after every benchmark.

An interrupted run therefore leaves a valid file holding everything that finished. The
``machine`` field lets reports merge files from several machines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from implementations.files import write_atomic

SCHEMA = 1


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class ResultFile:
    """A run's result document; every ``add_*`` call persists the whole document."""

    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = Path(path)
        self.document: dict[str, Any] = {"schema": SCHEMA, **header, "results": [], "skipped": []}
        self.save()

    def update(self, **fields: Any) -> None:
        self.document.update(fields)
        self.save()

    def add_result(self, row: dict[str, Any]) -> None:
        self.document["results"].append(row)
        self.save()

    def add_skip(self, row: dict[str, Any]) -> None:
        self.document["skipped"].append(row)
        self.save()

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.document, indent=1, default=_jsonable))


def read(path: Path) -> dict[str, Any]:
    """Load one result file, checking it is one."""
    with open(path) as fh:
        doc = json.load(fh)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or "results" not in doc:
        raise ValueError(f"{path}: not a convcert result file (schema {SCHEMA})")
    return doc
