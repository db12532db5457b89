"""The conformance matrix: every available implementation certified on one device, as data.

Each implementation is certified in its own worker process, so one that crashes, hangs
or fails to load costs only its own cases (or its own entry); every other one is judged.
Which implementations are available is read from the registry's table and the entry points'
metadata, never by importing one in this process.
Several can be certified side by side (``jobs``): ``jobs`` worker processes in all, so once
no implementation waits for its turn, the cores that finished ones leave go to those still
running (each a :class:`~conformance.execution.pool.WorkerPool` sharing its cases among its
workers). One none of whose inputs changed is reused from the certificate cache
(:mod:`conformance.verdicts.cache`).
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conformance.catalogue.selection import all_cases, quick_cases
from conformance.execution.pool import Slots, WorkerPool
from conformance.execution.worker import LoadError, Worker
from conformance.judging.references import verify_golden
from implementations import FEATURES, registered, unavailable_reason
from implementations.dtypes import DTYPES
from implementations.files import json_float

from .cache import CertificateCache, certify_or_reuse
from .certificate import Certificate, certificate_stem
from .certify import CertifyOptions, DeviceUnavailable
from .condition import cpu_path


def _entry(name: str, cert: Certificate | None, reason: str = "") -> dict[str, Any]:
    if cert is None:
        return {"name": name, "available": False, "reason": reason}
    grid: dict[str, dict[str, Any]] = {f: {} for f in FEATURES}
    worst: dict[str, float | str] = {}
    limited: dict[str, int] = {}
    for s in cert.features:
        grid[s.feature][s.dtype] = {"status": s.status, "worst_ratio": s.to_dict()["worst_ratio"],
                                    "reason": s.reason, "limited": s.limited}
        if s.limited:
            limited[s.feature] = limited.get(s.feature, 0) + s.limited
        if s.status in ("pass", "fail"):
            prev = worst.get(s.dtype, 0.0)
            worst[s.dtype] = s.worst_ratio if isinstance(prev, float) and s.worst_ratio > prev else prev
    worst = {d: json_float(v) if isinstance(v, float) else v for d, v in worst.items()}
    per_op: dict[str, dict[str, str]] = {}
    for s in cert.operations:
        if s.status != "not claimed":
            per_op.setdefault(s.feature, {})[s.dtype] = s.status
    findings = cert.findings.get(f"{cert.devices[0]}/float32") or next(iter(cert.findings.values()), {})
    return {
        "name": name, "spec": cert.spec, "available": True, "passed": cert.passed,
        "features": grid, "per_operation": per_op, "worst_ratio": worst, "failures": len(cert.failures),
        "limited": limited, "seconds": round(cert.seconds, 2), "findings": findings, "state": cert.state,
        "coverage": cert.coverage,
        "environment": cert.environment["implementation"],
        "cpu_path": cpu_path(cert.environment["implementation"]),
        **({"reused": cert.reused} if cert.reused else {}),
    }


class _Schedule:
    """Which implementation each certification is on, and how many remain (printed when ``progress``)."""

    def __init__(self, count: int, progress: bool):
        self.count, self.progress, self.started, self.finished = count, progress, 0, 0
        self.lock = threading.Lock()
        self.running: dict[int, WorkerPool | None] = {}  # thread certifying now -> its workers

    def interrupt(self) -> None:
        """Interrupt every certification running side by side, as Ctrl-C interrupts one (each
        stops with its worker): a KeyboardInterrupt in each thread, which its worker's end
        wakes from a wait for an answer."""
        with self.lock:
            for ident, worker in self.running.items():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                           ctypes.py_object(KeyboardInterrupt))
                if worker is not None:
                    worker.close(kill=True)

    def say(self, text: str) -> None:
        if self.progress:
            print(f"[matrix] {text}", file=sys.stderr, flush=True)

    def start(self, name: str) -> None:
        with self.lock:
            self.started += 1
            self.say(f"{name}: certifying ({self.started} of {self.count}; "
                     f"{self.count - self.started} waiting)")

    def finish(self, name: str, seconds: float, how: str = "done") -> None:
        with self.lock:
            self.finished += 1
            self.say(f"{name}: {how} after {seconds:.1f} s ({self.count - self.finished} of {self.count} "
                     "remain)")


def build(names: Sequence[str] | None = None, *, device: str = "cpu",
          on_certificate: Callable[[str, Certificate], None] | None = None, logs: Path | None = None,
          cache: CertificateCache | None = None, jobs: int = 1, **options: Any) -> dict[str, Any]:
    """Certify every named (default: every registered) implementation on ``device``, every
    dtype, each in a worker of its own (``options``: fields of ``CertifyOptions``, such as
    ``quick``, ``case_timeout``, ``sweep_examples``, ``seed``, ``max_memory``, ``max_seconds``);
    each plug-in's output goes to ``logs/<certificate stem>.log`` when ``logs`` is given.
    ``cache`` (a :class:`~conformance.verdicts.cache.CertificateCache`) reuses the certificate of
    an implementation none of whose inputs changed. ``jobs`` certifications run side by side
    (threads, each with its worker process; the entries keep the order of ``names``, and each
    verdict is the one a serial run gives); the longest known from the cache starts first, and once
    none waits, a running certification takes the free slots for more workers of its own.

    Registered implementations that are unavailable, or that fail to load, appear with
    the reason instead of a verdict; one on which the certifier itself fails appears as
    ``could not run`` (``could_not_run``), and every other one is still judged. Findings
    shown are those of float32 (else the first dtype).
    """
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: must be >= 1")
    opts = CertifyOptions(devices=(device,), dtypes=DTYPES, **options)
    quick = opts.quick
    t0 = time.perf_counter()
    verify_golden()  # bad golden data stop the matrix before any implementation is judged
    names = list(names) if names else registered()
    schedule = _Schedule(len(names), opts.progress is True)
    slots = Slots(jobs, waiting=len(names))

    def judge(name: str) -> dict[str, Any]:
        """The entry of ``name``: its certificate, or why it has none."""
        # availability from metadata; the claims from the worker (no plug-in runs here)
        reason = None if ":" in name else unavailable_reason(name)
        if reason:
            slots.skip()
            return _entry(name, None, reason)
        schedule.start(name)
        slots.begin()
        started = time.perf_counter()
        try:
            entry = certified(name)
        except KeyboardInterrupt:
            schedule.finish(name, time.perf_counter() - started, "interrupted")
            raise
        finally:
            slots.end()
        schedule.finish(name, time.perf_counter() - started)
        return entry

    def certified(name: str) -> dict[str, Any]:
        log = None if logs is None else logs / f"{certificate_stem(name, (device,))}.log"
        if log is not None:
            log.unlink(missing_ok=True)
        try:
            with Worker(name, opts.case_timeout, log=log, max_memory=opts.max_memory) as worker, \
                    WorkerPool(worker, slots) as pool:
                with schedule.lock:
                    if threading.get_ident() in schedule.running:
                        schedule.running[threading.get_ident()] = pool
                cert = certify_or_reuse(name, opts, worker=pool, cache=cache)
        except LoadError as exc:  # an adapter that fails to import is reported, not raised
            return _entry(name, None, f"failed to load: {exc}")
        except DeviceUnavailable as exc:
            return _entry(name, None, str(exc))
        except Exception as exc:  # the certifier failed on this one: the others are still judged
            return dict(_entry(name, None, f"could not run: {type(exc).__name__}: {exc}"), could_not_run=True)
        impl = cert.implementation
        if device not in impl["devices"]:
            reason = f"does not run on {device} (devices: {tuple(impl['devices'])})"
            return _entry(impl["name"], None, reason)
        if on_certificate:
            on_certificate(impl["name"], cert)
        return _entry(impl["name"], cert)

    entries: dict[str, dict[str, Any]] = {}
    if jobs == 1 or len(names) < 2:
        for name in names:
            entries[name] = judge(name)
    else:
        order = sorted(names, key=lambda n: -(cache.last_seconds(certificate_stem(n, (device,)))
                                              if cache else 0.0))

        def judge_in_thread(name: str) -> dict[str, Any]:
            with schedule.lock:
                schedule.running[threading.get_ident()] = None
            try:
                return judge(name)
            finally:
                with schedule.lock:
                    schedule.running.pop(threading.get_ident(), None)

        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="matrix")
        try:
            futures = {name: pool.submit(judge_in_thread, name) for name in order}
            for name in order:
                entries[name] = futures[name].result()
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            schedule.interrupt()
            pool.shutdown(wait=True)
            raise
        pool.shutdown()
    return {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "selection": "quick" if quick else "full",
        "cases": len(quick_cases() if quick else all_cases()),
        "dtypes": list(DTYPES),
        "features": list(FEATURES),
        "implementations": [entries[name] for name in names],
        "seconds": round(time.perf_counter() - t0, 2),
    }
