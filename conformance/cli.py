"""``python -m conformance``: the matrix, certification of one implementation, golden references.

    python -m conformance matrix [--impl NAME ...] [--device cpu] [--quick] [--out DIR]
    python -m conformance certify SPEC [--device cpu|cuda] [--dtype D ...] [--quick] [--workers N]
                                       [--case NAME] [--case-timeout S] [--shapes FILE]
                                       [--sweep N] [--seed S] [--max-seconds S]
                                       [--export-repro DIR] [--out DIR]
    python -m conformance explore SPEC [--dtype D] [--examples N] [--seed S] [--shapes FILE]
    python -m conformance references [--check]

Exit codes: 0 certified; 1 rejected (``matrix``: any implementation rejected;
``references --check``: the golden data differ from a fresh generation); 2 could not run
(unknown spec, import or constructor error, a device or dtype asked for but not claimed
or unusable, bad golden data, interrupted, or incomplete: ``--max-seconds`` ran out),
with one line saying what and why (a
traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only light imports here: ``certify`` starts the worker process before this process
# imports NumPy and the suite, so that the two load side by side.
from implementations.arguments import Several, add_shard_argument
from implementations.contract import DEVICES
from implementations.dtypes import DTYPES
from implementations.files import writable_folder

from .execution.sources import CACHE_ENV, cache_folder
from .execution.worker import CASE_TIMEOUT, LoadError, Worker, default_max_memory
from .rendering.certificate_files import certificate_paths, summary, write_certificate, write_json

if TYPE_CHECKING:
    from .verdicts.certificate import Certificate

OUT = Path("reports") / "out"


def _cannot_run() -> tuple[type[BaseException], ...]:
    """Errors that mean "could not run" (exit code 2), never a verdict on the implementation."""
    from .judging.references import GoldenError
    from .verdicts.certify import DeviceUnavailable

    return (LoadError, GoldenError, DeviceUnavailable, ImportError, ValueError)


_VERB = {"certify": "certified", "matrix": "certified", "explore": "explored", "references": "checked"}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _sweep_budget(args: argparse.Namespace) -> tuple[int, int]:
    """(examples, seed) of the sweep: ``--sweep`` if given, else the default; none for
    ``--quick`` (meant for slow implementations). ``certify`` runs none with given cases."""
    from .search.sweep import DEFAULT_EXAMPLES, DEFAULT_SEED

    seed = DEFAULT_SEED if args.seed is None else args.seed
    if args.sweep is not None:
        return args.sweep, seed
    return (0 if args.quick else DEFAULT_EXAMPLES), seed


def _shapes(path: str):
    """The problems of a benchdnn shapes file, with what the import did printed."""
    from .catalogue.shapes import read

    imported = read(path)
    print(imported.summary(), file=sys.stderr)
    return imported


def _check_sizes(cases: list, max_bytes: int) -> None:
    """Refuse, before anything is allocated, a requested case larger than the memory limit."""
    for case in cases:
        needs = case.problem.memory_estimate()
        if needs > max_bytes:
            raise ValueError(f"case={case.name!r}: needs about {needs / 2**30:.1f} GiB of memory (inputs, "
                             f"reference and outputs), above --max-memory {max_bytes / 2**30:.1f} GiB")


def _out(args: argparse.Namespace) -> str:
    """``--out``, or its folder ``shard-K-of-N`` for a part of a sharded run."""
    return str(Path(args.out) / "shard-{}-of-{}".format(*args.shard)) if args.shard else args.out


def cmd_certify(args: argparse.Namespace) -> int:
    out = writable_folder(_out(args))
    devices = tuple(args.device or ("cpu",))
    from .verdicts.certificate import certificate_stem

    log = out / f"{certificate_stem(args.spec, devices)}.log"  # the plug-in's own output
    log.unlink(missing_ok=True)
    _use_cache_folder(args)
    # loads while this process imports the suite
    worker = Worker(args.spec, args.case_timeout, log=log, max_memory=args.max_memory)
    try:
        return _certify(args, worker)
    finally:
        worker.shutdown()


def _use_cache_folder(args: argparse.Namespace) -> None:
    """Name the cache folder in the environment, where the worker's adapters find it (JAX keeps
    its compilation cache there)."""
    os.environ[CACHE_ENV] = str(cache_folder(args.cache_dir))


def _cache(args: argparse.Namespace):
    from .verdicts.cache import CertificateCache

    return CertificateCache(args.cache_dir, fresh=args.fresh)


def _certify(args: argparse.Namespace, worker: Worker) -> int:
    from .catalogue.selection import all_cases, find_case
    from .execution.pool import WorkerPool, default_workers
    from .verdicts.cache import certify_or_reuse
    from .verdicts.certify import CertifyOptions, Interrupted

    out = Path(_out(args))
    devices = tuple(args.device or ("cpu",))
    try:
        cases = [find_case(name) for name in args.case] if args.case else None
        examples, seed = _sweep_budget(args)
        selection = None
        if args.shapes:
            imported = _shapes(args.shapes)
            cases, selection = (cases or []) + all_cases(imported.problems), imported.summary()
        _check_sizes(cases or [], worker.max_memory)
        opts = CertifyOptions(devices=args.device or None, dtypes=args.dtype or None, quick=args.quick,
                              progress=not args.no_progress, cases=cases, case_timeout=args.case_timeout,
                              require_claimed=True, on_checkpoint=lambda c: write_certificate(c, out),
                              selection=selection, sweep_examples=examples, seed=seed, shard=args.shard,
                              max_seconds=args.max_seconds, min_calls=args.min_calls)
        with WorkerPool(worker, args.workers or default_workers()) as pool:
            cert = certify_or_reuse(args.spec, opts, worker=pool, cache=_cache(args))
    except (LoadError, ValueError):  # no certificate for this spec: an older one must not outlive it
        for path in certificate_paths(args.spec, devices, out):
            path.unlink(missing_ok=True)
        raise
    except Interrupted as exc:
        print(summary(exc.certificate))
        print(f"not certified: {exc.certificate.note}; the certificate under {out} records it",
              file=sys.stderr)
        return 2
    json_path, md_path = certificate_paths(cert.spec, cert.devices, out)
    print(summary(cert))
    print(f"certificate: {json_path} and {md_path}; the plug-in's output: {worker.log_path}")
    if args.export_repro and cert.failures:
        from .verdicts.repro import export

        written = export(cert, Path(args.export_repro))
        print(f"repro scripts: {len(written)} under {args.export_repro} (run each with python, where the "
              "implementation imports)")
    if cert.state == "incomplete":
        print(f"not certified: {cert.note}", file=sys.stderr)
        return 2
    return 0 if cert.passed else 1


def cmd_matrix(args: argparse.Namespace) -> int:
    from implementations.files import write_atomic

    from .rendering.html import matrix_html
    from .rendering.markdown import matrix_markdown
    from .verdicts.matrix import build

    out = writable_folder(_out(args))
    _use_cache_folder(args)
    verdicts, incomplete = [], []

    def keep(name: str, cert: Certificate) -> None:
        write_certificate(cert, out / "certificates")
        verdicts.append(cert.passed)
        if cert.state == "incomplete":
            incomplete.append(f"{name}: {cert.note}")
        print(summary(cert), flush=True)

    examples, seed = _sweep_budget(args)
    if args.jobs is None:
        from .execution.pool import default_workers

        args.jobs = default_workers()  # worker processes in all, one per usable core as memory allows
    data = build(args.impl or None, device=args.device, quick=args.quick, on_certificate=keep,
                 logs=writable_folder(str(out / "certificates")), cache=_cache(args), jobs=args.jobs,
                 progress=not args.no_progress, case_timeout=args.case_timeout,
                 sweep_examples=examples, seed=seed, max_memory=args.max_memory, shard=args.shard,
                 max_seconds=args.max_seconds, min_calls=args.min_calls)
    write_json(out / "matrix.json", data)
    write_atomic(out / "matrix.md", matrix_markdown(data).encode())
    write_atomic(out / "matrix.html", matrix_html(data).encode())
    for entry in data["implementations"]:
        if not entry["available"]:
            print(f"{entry['name']}: not certified ({entry['reason']})")
    print(f"matrix: {out / 'matrix.md'}, {out / 'matrix.html'} and {out / 'matrix.json'} "
          f"({data['seconds']} s)")
    for line in incomplete:
        print(f"not certified: {line}", file=sys.stderr)
    if incomplete or any(entry.get("could_not_run") for entry in data["implementations"]):
        return 2  # stopped by its time budget, or the certifier failed on one: not a verdict
    return 0 if all(verdicts) else 1


def cmd_references(args: argparse.Namespace) -> int:
    from .judging import references

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
    from implementations.contract import check_implementation

    from .search.explore import explore

    impl = load(args.spec)
    check_implementation(impl)
    if args.dtype not in impl.dtypes:
        raise ValueError(f"dtype={args.dtype!r}: {impl.name} does not claim it (it claims "
                         f"{', '.join(impl.dtypes)})")
    if args.shapes:
        return _explore_shapes(impl, args)
    found = explore(impl, args.dtype, args.examples, args.seed)
    for problem, messages in found:
        print(f"minimal failing problem: {problem.family}-{problem.descriptor}")
        for m in messages[:5]:
            print(f"  {m}")
    if not found:
        print(f"{impl.name}: no failure in {args.examples} random problems per family ({args.dtype})")
    return 1 if found else 0


def _explore_shapes(impl, args: argparse.Namespace) -> int:
    """Every problem of a shapes file, forward and backward, at ``--dtype``: the failures."""
    from .search.explore import failures

    try:
        imported = _shapes(args.shapes)
    except ValueError as exc:
        print(f"not explored: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for problem in imported.problems:
        messages = failures(impl, problem, args.dtype)
        if messages:
            failed += 1
            print(f"failing problem: {problem.family}-{problem.descriptor} ({problem.note})")
            for m in messages[:5]:
                print(f"  {m}")
    print(f"{impl.name}: {failed} of {len(imported.problems)} problems from {args.shapes} fail "
          f"({args.dtype})")
    return 1 if failed else 0


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    # defaults live in conformance.sweep, which is not imported before the worker starts
    p.add_argument("--sweep", type=int, default=None, metavar="N",
                   help="random sweep after the catalogue: N problems per family, device and dtype "
                        "(default sweep.DEFAULT_EXAMPLES; none with --quick, --case or --shapes; 0 turns it "
                        "off)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sweep (default sweep.DEFAULT_SEED)")
    p.add_argument("--max-seconds", type=_seconds, default=None, metavar="S",
                   help="time budget of each certification (default: none); a run it stops is "
                        "'incomplete' (exit code 2), never a pass")
    p.add_argument("--fresh", action="store_true",
                   help="certify again even when the cache holds a certificate none of whose inputs changed")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="the cache folder (default $CONVCERT_CACHE_DIR, else .convcert-cache in the current "
                        "folder): reused certificates, and JAX's compiled programs")
    p.add_argument("--min-calls", type=int, default=None, metavar="N",
                   help="calls of each operation, device and dtype the determinism stage makes at least "
                        "(default determinism.MIN_CALLS, 120); fewer: a weaker guarantee against wrong "
                        "answers that appear at random (recorded in the certificate)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")

    m = sub.add_parser("matrix", parents=[common],
                       help="certify every available implementation and write the matrix")
    m.add_argument("--impl", action=Several, default=[], metavar="NAME",
                   help="implementation names or specs (one or more, repeatable; default: every registered)")
    m.add_argument("--device", default="cpu", choices=DEVICES)
    m.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="worker processes in all (default: one per usable core, as many as memory allows): "
                        "implementations certified side by side, and once none waits, the last ones share "
                        "their cases among the free ones; the verdicts are those of one at a time")
    m.add_argument("--quick", action="store_true", help="a representative subset of the catalogue")
    _sweep_arguments(m)
    add_shard_argument(m, "cases of each implementation (the random sweep runs in part 1)")
    m.add_argument("--out", default=str(OUT / "conformance"), help="output folder (default %(default)s)")
    m.add_argument("--no-progress", action="store_true")
    m.add_argument("--case-timeout", type=_seconds, default=CASE_TIMEOUT, metavar="S",
                   help="seconds one case may run before its worker is stopped (default %(default)g)")
    m.add_argument("--max-memory", type=_gib, default=default_max_memory(), metavar="GIB",
                   help="memory one problem and the worker may use, in GiB (default: a quarter of this "
                        "machine's, %(default).3g bytes); a larger problem is refused unrun")
    m.set_defaults(run=cmd_matrix)

    c = sub.add_parser("certify", parents=[common], help="certify one implementation")
    c.add_argument("spec", metavar="SPEC", help="registered name or module:Class")
    c.add_argument("--device", action=Several, choices=DEVICES, default=[],
                   help="one or more (repeatable); default cpu (or the implementation's only device)")
    c.add_argument("--dtype", action=Several, default=[], choices=DTYPES,
                   help="one or more (repeatable); default: every claimed dtype")
    c.add_argument("--quick", action="store_true", help="a representative subset (for slow implementations)")
    c.add_argument("--workers", type=_jobs, default=None, metavar="N",
                   help="worker processes sharing the cases (default: one per usable core, as many as memory "
                        "allows); the certificate is that of one")
    c.add_argument("--case", action=Several, default=[], metavar="NAME",
                   help="run only these cases (one or more, repeatable)")
    c.add_argument("--shapes", metavar="FILE",
                   help="run the problems of a benchdnn shapes file (descriptors such as "
                   "mb1ic3ih224oc64oh112kh7sh2ph3n\"conv1\") instead of the catalogue")
    _sweep_arguments(c)
    add_shard_argument(c, "cases (the random sweep runs in part 1; `convcert merge` joins the parts)")
    c.add_argument("--export-repro", metavar="DIR", help="write each failing case as a script that needs "
                   "only NumPy and the implementation, with an .npz of its inputs")
    c.add_argument("--out", default=str(OUT / "certificates"), help="output folder (default %(default)s)")
    c.add_argument("--no-progress", action="store_true")
    c.add_argument("--case-timeout", type=_seconds, default=CASE_TIMEOUT, metavar="S",
                   help="seconds one case may run before its worker is stopped (default %(default)g)")
    c.add_argument("--max-memory", type=_gib, default=default_max_memory(), metavar="GIB",
                   help="memory one problem and the worker may use, in GiB (default: a quarter of this "
                        "machine's, %(default).3g bytes); a larger problem is refused unrun")
    c.set_defaults(run=cmd_certify)

    e = sub.add_parser("explore", parents=[common],
                       help="search random problems for a failure and shrink it (Hypothesis)")
    e.add_argument("spec", metavar="SPEC", help="registered name or module:Class")
    e.add_argument("--dtype", default="float32", choices=DTYPES)
    e.add_argument("--examples", type=int, default=500,
                   help="random problems per family (default %(default)s)")
    e.add_argument("--seed", type=int, default=None, help="reproducible search (default: free exploration)")
    e.add_argument("--shapes", metavar="FILE", help="check the problems of a benchdnn shapes file instead of "
                   "random ones")
    e.set_defaults(run=cmd_explore)

    r = sub.add_parser("references", parents=[common], help="regenerate the golden reference data")
    r.add_argument("--check", action="store_true", help="prove the stored files equal a fresh generation")
    r.set_defaults(run=cmd_references)
    return p


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number of {what}")
    return value


def _seconds(text: str) -> float:
    return _positive(text, "seconds")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number >= 1")
    return value


def _gib(text: str) -> int:
    return int(_positive(text, "GiB") * 2**30)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _with_sigterm(run: Callable[[], int]) -> int:
    """Run with SIGTERM turned into KeyboardInterrupt, so an interrupted run is recorded as such."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        return run()
    try:
        return run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _with_sigterm(lambda: args.run(args))
    except Exception as exc:  # could not run: never exit 1, the "rejected" verdict
        if args.debug:
            traceback.print_exc()
        what = "" if isinstance(exc, _cannot_run()) else f"{type(exc).__name__}: "
        print(f"not {_VERB.get(args.command, 'done')}: {what}{_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc or 'KeyboardInterrupt'})", file=sys.stderr)
        return 2

