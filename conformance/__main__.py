"""``python -m conformance``: the matrix, certification of one implementation, golden references.

    python -m conformance matrix [--impl NAME ...] [--device cpu] [--quick] [--out DIR]
    python -m conformance certify SPEC [--device cpu|cuda] [--dtype D ...] [--quick]
                                       [--case NAME] [--sweep N] [--seed S] [--out DIR]
    python -m conformance explore SPEC [--dtype D] [--examples N] [--seed S]
    python -m conformance references [--check]

``certify`` exits 0 only when everything claimed passes (2 when the device is unusable); ``matrix`` exits 1 when any
certified implementation fails; ``references --check`` exits 1 when the golden data differs
from a fresh generation.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from .certify import DTYPES, Certificate, DeviceUnavailable, certify
from .references import write_atomic
from .sweep import DEFAULT_EXAMPLES, DEFAULT_SEED

OUT = Path("reports") / "out"


def _write_json(path: Path, data: Any) -> None:
    write_atomic(path, (json.dumps(data, indent=1, sort_keys=False, default=str) + "\n").encode())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "implementation"


def write_certificate(cert: Certificate, out: Path) -> tuple[Path, Path]:
    """Write ``NAME.json`` and ``NAME.md`` under ``out`` (atomically)."""
    from reports.conformance_render import certificate_markdown

    data = cert.to_dict()
    stem = _slug(cert.implementation["name"]) + ("-" + _slug("-".join(cert.devices)) if cert.devices != ("cpu",) else "")
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    _write_json(json_path, data)
    write_atomic(md_path, certificate_markdown(data).encode())
    return json_path, md_path


def _summary(cert: Certificate) -> str:
    verdict = "PASSED" if cert.passed else "FAILED"
    counts = ", ".join(f"{n} {k}" for k, n in sorted(cert.counts().items()))
    lines = [f"{cert.implementation['name']}: {verdict} ({counts}; {cert.seconds:.1f} s)"]
    if cert.sweep:
        lines.append(f"  sweep: seed {cert.sweep['seed']}, {cert.sweep['problems_tried']} random problems, "
                     f"{len(cert.sweep['failures'])} shrunk failure(s), {cert.sweep['seconds']} s")
    for s in cert.features:
        if s.diagnosis:
            lines.append(f"  DIAGNOSIS [{s.feature}, {s.device}/{s.dtype}] {s.diagnosis}")
    failures = cert.failures
    for f in failures[:10]:
        lines.append(f"  FAIL [{f['feature']}] {f.get('message') or f['case']}")
        if f.get("repro"):
            lines.append(f"       reproduce: {f['repro']}")
    if len(failures) > 10:
        lines.append(f"  ... {len(failures) - 10} more failures in the certificate")
    return "\n".join(lines)


def _sweep_budget(args: argparse.Namespace) -> int:
    """``--sweep`` if given, else the default; none for ``--quick`` (meant for slow implementations)."""
    if args.sweep is not None:
        return args.sweep
    return 0 if args.quick else DEFAULT_EXAMPLES


def cmd_certify(args: argparse.Namespace) -> int:
    from .cases import find_case

    try:
        cases = [find_case(name) for name in args.case] if args.case else None
        cert = certify(args.spec, devices=args.device or None, dtypes=args.dtype or None, quick=args.quick,
                       progress=not args.no_progress, cases=cases, sweep_examples=_sweep_budget(args),
                       seed=args.seed)
    except (DeviceUnavailable, ImportError, ValueError) as exc:
        print(f"not certified: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    json_path, md_path = write_certificate(cert, out)
    print(_summary(cert))
    print(f"certificate: {json_path} and {md_path}")
    return 0 if cert.passed else 1


def cmd_matrix(args: argparse.Namespace) -> int:
    from reports.conformance_render import matrix_html, matrix_markdown

    from .matrix import build

    out = Path(args.out)
    verdicts = []

    def keep(name: str, cert: Certificate) -> None:
        write_certificate(cert, out / "certificates")
        verdicts.append(cert.passed)
        print(_summary(cert), flush=True)

    data = build(args.impl or None, device=args.device, quick=args.quick, on_certificate=keep,
                 sweep_examples=_sweep_budget(args), seed=args.seed,
                 progress=not args.no_progress)
    _write_json(out / "matrix.json", data)
    write_atomic(out / "matrix.md", matrix_markdown(data).encode())
    write_atomic(out / "matrix.html", matrix_html(data).encode())
    for entry in data["implementations"]:
        if not entry["available"]:
            print(f"{entry['name']}: not certified ({entry['reason']})")
    print(f"matrix: {out / 'matrix.md'}, {out / 'matrix.html'} and {out / 'matrix.json'} ({data['seconds']} s)")
    return 0 if all(verdicts) else 1


def cmd_references(args: argparse.Namespace) -> int:
    from . import references

    if args.check:
        differences = references.check(log=print)
        for d in differences:
            print(f"DIFFERENT: {d}")
        print("golden data unchanged" if not differences else
              "golden data differs from a fresh generation: inspect, then regenerate with "
              "`python -m conformance references`")
        return 1 if differences else 0
    files = references.write(log=print)
    size = sum(len(b) for b in files.values())
    print(f"wrote {len(files)} files, {size / 1024:.0f} KiB, to {references.GOLDEN_DIR}")
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from implementations import load

    from .properties import explore

    impl = load(args.spec)
    found = explore(impl, args.dtype, args.examples, args.seed)
    for problem, messages in found:
        print(f"minimal failing problem: {problem.family}-{problem.descriptor}")
        for m in messages[:5]:
            print(f"  {m}")
    if not found:
        print(f"{impl.name}: no failure in {args.examples} random problems per family ({args.dtype})")
    return 1 if found else 0


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sweep", type=int, default=None, metavar="N",
                   help=f"random sweep after the catalogue: N problems per family, device and dtype "
                        f"(default {DEFAULT_EXAMPLES}, none with --quick; 0 turns it off)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the sweep (default %(default)s)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("matrix", help="certify every available implementation and write the matrix")
    m.add_argument("--impl", action="append", default=[], metavar="NAME",
                   help="implementation name or module:Class (repeatable; default: every registered one)")
    m.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    m.add_argument("--quick", action="store_true", help="a representative subset of the catalogue")
    _sweep_arguments(m)
    m.add_argument("--out", default=str(OUT / "conformance"), help="output folder (default %(default)s)")
    m.add_argument("--no-progress", action="store_true")
    m.set_defaults(run=cmd_matrix)

    c = sub.add_parser("certify", help="certify one implementation")
    c.add_argument("spec", metavar="SPEC", help="registered name or module:Class")
    c.add_argument("--device", action="append", choices=("cpu", "cuda"), default=[],
                   help="repeatable; default cpu (or the implementation's only device)")
    c.add_argument("--dtype", action="append", choices=DTYPES, default=[], help="repeatable; default: every claimed dtype")
    c.add_argument("--quick", action="store_true", help="a representative subset (for slow implementations)")
    c.add_argument("--case", action="append", default=[], metavar="NAME", help="run only this case (repeatable)")
    _sweep_arguments(c)
    c.add_argument("--out", default=str(OUT / "certificates"), help="output folder (default %(default)s)")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(run=cmd_certify)

    e = sub.add_parser("explore", help="search random problems for a failure and shrink it (Hypothesis)")
    e.add_argument("spec", metavar="SPEC", help="registered name or module:Class")
    e.add_argument("--dtype", default="float32", choices=DTYPES)
    e.add_argument("--examples", type=int, default=500, help="random problems per family (default %(default)s)")
    e.add_argument("--seed", type=int, default=None, help="reproducible search (default: free exploration)")
    e.set_defaults(run=cmd_explore)

    r = sub.add_parser("references", help="regenerate the golden reference data")
    r.add_argument("--check", action="store_true", help="prove the stored files equal a fresh generation")
    r.set_defaults(run=cmd_references)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
