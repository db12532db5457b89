"""The conformance matrix: every available implementation certified on one device, as data.

Each implementation is certified in its own worker process, so one that crashes, hangs
or fails to load costs only its own cases (or its own entry); every other one is judged.
Which implementations are available is read from the registry's table and the entry points'
metadata, never by importing one in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conformance.catalogue.selection import all_cases, quick_cases
from conformance.execution.worker import LoadError, Worker
from conformance.judging.references import verify_golden
from implementations import FEATURES, registered, unavailable_reason
from implementations.dtypes import DTYPES
from implementations.files import json_float

from .certificate import Certificate, certificate_stem
from .certify import CertifyOptions, DeviceUnavailable, certify
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
    }


def build(names: Sequence[str] | None = None, *, device: str = "cpu",
          on_certificate: Callable[[str, Certificate], None] | None = None, logs: Path | None = None,
          **options: Any) -> dict[str, Any]:
    """Certify every named (default: every registered) implementation on ``device``, every
    dtype, each in a worker of its own (``options``: fields of ``CertifyOptions``, such as
    ``quick``, ``case_timeout``, ``sweep_examples``, ``seed``, ``max_memory``, ``max_seconds``);
    each plug-in's output goes to ``logs/<certificate stem>.log`` when ``logs`` is given.

    Registered implementations that are unavailable, or that fail to load, appear with
    the reason instead of a verdict; one on which the certifier itself fails appears as
    ``could not run`` (``could_not_run``), and every other one is still judged. Findings
    shown are those of float32 (else the first dtype).
    """
    opts = CertifyOptions(devices=(device,), dtypes=DTYPES, **options)
    quick = opts.quick
    t0 = time.perf_counter()
    verify_golden()  # bad golden data stop the matrix before any implementation is judged
    names = list(names) if names else registered()
    entries = []
    for name in names:  # availability from metadata; the claims from the worker (no plug-in runs here)
        reason = None if ":" in name else unavailable_reason(name)
        if reason:
            entries.append(_entry(name, None, reason))
            continue
        log = None if logs is None else logs / f"{certificate_stem(name, (device,))}.log"
        if log is not None:
            log.unlink(missing_ok=True)
        try:
            with Worker(name, opts.case_timeout, log=log, max_memory=opts.max_memory) as worker:
                cert = certify(name, opts, worker=worker)
        except LoadError as exc:  # an adapter that fails to import is reported, not raised
            entries.append(_entry(name, None, f"failed to load: {exc}"))
            continue
        except DeviceUnavailable as exc:
            entries.append(_entry(name, None, str(exc)))
            continue
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the certifier failed on this one: the others are still judged
            entries.append(dict(_entry(name, None, f"could not run: {type(exc).__name__}: {exc}"),
                                could_not_run=True))
            continue
        impl = cert.implementation
        if device not in impl["devices"]:
            reason = f"does not run on {device} (devices: {tuple(impl['devices'])})"
            entries.append(_entry(impl["name"], None, reason))
            continue
        if on_certificate:
            on_certificate(impl["name"], cert)
        entries.append(_entry(impl["name"], cert))
    return {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "selection": "quick" if quick else "full",
        "cases": len(quick_cases() if quick else all_cases()),
        "dtypes": list(DTYPES),
        "features": list(FEATURES),
        "implementations": entries,
        "seconds": round(time.perf_counter() - t0, 2),
    }
