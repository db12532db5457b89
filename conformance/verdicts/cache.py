"""The certificate cache: a certification whose every input is unchanged is reused, not run again.

A certificate is stored under the sha256 of its *key*, everything its verdict depends on
(:func:`key_parts`; docs/conformance.md lists them):

- ``certifier``: convcert's version and the sha256 of the certifier's own files (every file of
  the ``conformance`` package, the golden data included, the foundation modules of
  ``implementations`` and ``naive.py``, the float64 reference the random sweep is judged by);
- ``spec``: the plug-in's spec (a plug-in file's path made absolute);
- ``sources``: the sha256 of each source file the plug-in runs from, read in its worker once it
  has loaded (:mod:`conformance.execution.sources`);
- ``implementation``: what it claims (``describe()``: devices, dtypes, features, limits,
  reduced precision) and ``environment``: what it reports of itself (framework versions,
  threads, flags) and of this machine (NumPy, Python, platform);
- ``options``: devices, dtypes, the selection (quick, given cases), seed and size of the
  random sweep, ``--min-calls``, the case timeout, the memory limit, the time budget, the shard.

Only a complete certificate (passed or rejected) is stored. A hit returns the stored
certificate with ``reused`` set (when it was certified, and the key), which the console
line, the certificate and the matrix show; ``fresh`` certifies again (and stores the new one).
The folder is ``--cache-dir``, else ``$CONVCERT_CACHE_DIR``, else ``.convcert-cache`` in the
current folder; ``JAX``'s persistent compilation cache lives in its ``jax`` subfolder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from conformance.execution.pool import WorkerPool
from conformance.execution.sources import cache_folder
from conformance.execution.worker import Worker
from conformance.search.draws import version
from implementations import registry
from implementations.files import write_atomic

from .certificate import COMPLETE, Certificate, certificate_stem, environment
from .certify import CertifyOptions, certify
from .progress import StageProgress

#: Certificates kept per spec and devices (different options each); the oldest goes first.
KEEP = 4


def _sha256_files(paths: Iterable[Path], root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def certifier_files() -> list[Path]:
    """The certifier's files: the ``conformance`` package (golden data included), the foundation
    modules of ``implementations`` (not a built-in implementation's module) and the float64
    reference ``naive.py``."""
    conformance = Path(__file__).resolve().parents[1]
    foundation = conformance.parent / "implementations"
    plugins = {spec.spec.partition(":")[0] for spec in registry.BUILTINS.values()}
    reference = "implementations.naive"
    files = [p for p in conformance.rglob("*") if p.is_file() and p.suffix in (".py", ".npz", ".json")
             and "__pycache__" not in p.parts]
    files += [p for p in foundation.glob("*.py")
              if f"implementations.{p.stem}" not in plugins or f"implementations.{p.stem}" == reference]
    return sorted(files)


@cache
def certifier_digest() -> str:
    """sha256 of :func:`certifier_files` (their paths and contents)."""
    return _sha256_files(certifier_files(), Path(__file__).resolve().parents[2])


def key_parts(spec: str, worker: Worker | WorkerPool, opts: CertifyOptions) -> dict[str, Any]:
    """Everything the verdict on ``spec`` certified with ``opts`` depends on (waits for the worker)."""
    described = {k: v for k, v in worker.describe().items() if k != "log"}
    return {
        "certifier": {"convcert": version(), "sha256": certifier_digest()},
        "spec": registry.absolute_spec(spec),
        "sources": worker.claims.get("sources", {}),
        "implementation": described,
        "environment": environment(worker),
        "options": {
            "devices": list(opts.devices or []), "dtypes": list(opts.dtypes or []), "quick": opts.quick,
            "cases": None if opts.cases is None else [c.name for c in opts.cases],
            "selection": opts.selection, "sweep_examples": opts.sweep_examples, "seed": opts.seed,
            "min_calls": opts.min_calls, "case_timeout": opts.case_timeout,
            "max_memory": opts.max_memory or worker.max_memory, "max_seconds": opts.max_seconds,
            "shard": list(opts.shard) if opts.shard else None,
        },
    }


def key_of(parts: dict[str, Any]) -> str:
    """The sha256 of the key's parts (canonical JSON)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class CertificateCache:
    """Stored certificates by key, in ``folder/certificates``; ``fresh``: never reuse (still store)."""

    def __init__(self, folder: str | Path | None = None, *, fresh: bool = False):
        self.folder = cache_folder(folder) / "certificates"
        self.fresh = fresh

    def _path(self, key: str, stem: str) -> Path:
        return self.folder / f"{stem}-{key[:24]}.json"

    def lookup(self, key: str, stem: str) -> dict[str, Any] | None:
        """The stored entry (``key``, ``parts``, ``certificate``) of ``key``, or None."""
        if self.fresh:
            return None
        try:
            entry = json.loads(self._path(key, stem).read_text())
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def last_seconds(self, stem: str) -> float:
        """How long the newest stored certification of ``stem`` took (0 when none): what schedules
        the longest first."""
        newest = max(self.folder.glob(f"{stem}-*.json"), key=lambda p: p.stat().st_mtime, default=None)
        try:
            return float(json.loads(newest.read_text())["certificate"]["seconds"]) if newest else 0.0
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0

    def store(self, key: str, stem: str, parts: dict[str, Any], cert: Certificate) -> None:
        """Keep ``cert`` under ``key`` (only a complete one), and at most ``KEEP`` per ``stem``."""
        if cert.state != COMPLETE or cert.reused:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {"key": key, "parts": parts, "certificate": cert.to_dict()}
        write_atomic(self._path(key, stem), json.dumps(entry, default=str) + "\n")
        older = sorted(self.folder.glob(f"{stem}-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in older[KEEP:]:
            path.unlink(missing_ok=True)


def certify_or_reuse(spec: str, opts: CertifyOptions, *, worker: Worker | WorkerPool,
                     cache: CertificateCache | None) -> Certificate:
    """:func:`certify` ``spec`` in ``worker``, unless ``cache`` holds a certificate with the same key:
    that one is returned with ``reused`` set (and handed to ``opts.on_checkpoint``, as a
    certification hands its last)."""
    if cache is None:
        return certify(spec, opts, worker=worker)
    waiting = StageProgress(f"certify {spec}", opts.progress is True)
    waiting.begin("loading the implementation", None, "")
    try:
        parts = key_parts(spec, worker, opts)
    finally:
        waiting.close()
    key, stem = key_of(parts), certificate_stem(spec, tuple(opts.devices or ("cpu",)))
    entry = cache.lookup(key, stem)
    if entry is not None:
        stored = entry["certificate"]
        cert = Certificate.from_dict(dict(stored, reused={"certified": stored["started"], "key": key}),
                                     where=f"cached certificate of {spec}")
        if opts.on_checkpoint:
            opts.on_checkpoint(cert)
        return cert
    cert = certify(spec, opts, worker=worker)
    cache.store(key, stem, parts, cert)
    return cert
