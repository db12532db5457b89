"""A certificate as files (``NAME.json`` and ``NAME.md``) and as the one summary a command prints.

Used by ``convcert certify``, ``convcert merge`` and the pytest plugin alike. Imports stay light
(the heavy modules load inside the functions): ``certify`` starts its worker process before the
parent imports NumPy and the suite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..verdicts.condition import cpu_path

if TYPE_CHECKING:
    from ..verdicts.certificate import Certificate


def write_json(path: Path, data: Any) -> None:
    from implementations.files import write_atomic

    write_atomic(path, (json.dumps(data, indent=1, sort_keys=False, default=str) + "\n").encode())


def write_certificate(cert: Certificate, out: Path) -> tuple[Path, Path]:
    """Write ``NAME.json`` and ``NAME.md`` under ``out`` (atomically)."""
    from implementations.files import write_atomic

    from .markdown import certificate_markdown

    data = cert.to_dict()
    json_path, md_path = certificate_paths(cert.spec, cert.devices, out)
    write_json(json_path, data)
    write_atomic(md_path, certificate_markdown(data).encode())
    return json_path, md_path


def certificate_paths(spec: str, devices: tuple[str, ...], out: Path) -> tuple[Path, Path]:
    from ..verdicts.certificate import certificate_stem

    stem = certificate_stem(spec, devices)
    return out / f"{stem}.json", out / f"{stem}.md"


def summary(cert: Certificate) -> str:
    verdict = "PASSED" if cert.passed else "FAILED" if cert.state == "complete" else cert.state.upper()
    counts = ", ".join(f"{n} {k}" for k, n in sorted(cert.counts().items()))
    part = (" [part {index} of {count}: `convcert merge` the parts for the verdict]".format(**cert.shard)
            if cert.shard else "")
    lines = [f"{cert.implementation['name']}: {verdict} ({counts}; {cert.seconds:.1f} s){part}"]
    if cert.reused:
        lines.append(f"  reused: certified {cert.reused['certified']}, key sha256 {cert.reused['key'][:16]} "
                     "(nothing it depends on changed; --fresh certifies again)")
    path = cpu_path(cert.environment.get("implementation", {}))
    if path and "cpu" in cert.devices:
        lines.append(f"  cpu path: {path}")
    if cert.sweep:
        sw = cert.sweep
        lines.append(f"  sweep: seed {sw['seed']}, {sw['problems_tried']} of {sw['problems_planned']} random "
                     f"problems (sha256 {sw['sha256'][:16]}), {len(sw['failures'])} failure(s) kept, "
                     f"{sw['seconds']} s")
    for s in cert.features:
        if s.diagnosis:
            lines.append(f"  DIAGNOSIS [{s.feature}, {s.device}/{s.dtype}] {s.diagnosis}")
    failures = cert.failures
    for f in failures[:10]:
        lines.append(f"  FAIL [{f['feature']}] {f.get('message') or f['case']}")
        if f.get("note"):
            lines.append(f"       note: {f['note']}")
        if f.get("repro"):
            lines.append(f"       reproduce: {f['repro']}")
    if len(failures) > 10:
        lines.append(f"  ... {len(failures) - 10} more failures in the certificate")
    return "\n".join(lines)
