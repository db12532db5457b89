"""``convcert``: the one command a library author installs (``pip install ".[conformance]"``).

Each subcommand is one of the suite's own command lines, under one name::

    convcert certify SPEC ...     python -m conformance certify
    convcert matrix ...           python -m conformance matrix
    convcert explore SPEC ...     python -m conformance explore
    convcert references ...       python -m conformance references
    convcert merge CERT.json ...  joins the certificates of ``certify --shard K/N``
    convcert bench ...            python -m benchmarks run      (the ``bench`` extra)
    convcert report ...           python -m reports             (the ``bench`` extra)
    convcert list ...             python -m implementations     (also ``convcert-list``)

A SPEC is a registered name (``convcert list``), an entry point of the group
``convcert.implementations``, ``package.module:Class`` or ``path/to/file.py:Class``.

The command sits above the four packages and imports each one's command line only when its
subcommand runs; before that it makes sure they are this installation's own packages, whatever
the working folder holds (:func:`convcert.packages.use_own`), or stops with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .packages import Shadowed, use_own


@dataclass(frozen=True)
class Command:
    """One subcommand: what it does, the command line it runs, and examples for ``--help``."""

    summary: str
    prog: str  # the ``prog`` its own parser prints, replaced by ``convcert NAME`` in help
    examples: tuple[str, ...]
    extra: str = ""  # the extra that installs what it needs, if any


def _conformance(name: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        from conformance.cli import main

        return main([name, *argv])

    return run


def _bench(argv: list[str]) -> int:
    from benchmarks.__main__ import main

    return main(["run", *argv])


def _report(argv: list[str]) -> int:
    from reports.__main__ import main

    return main(argv)


def _list(argv: list[str]) -> int:
    from implementations.__main__ import main

    return main(argv)


COMMANDS: dict[str, Command] = {
    "certify": Command(
        "certify one implementation (exit 0 certified, 1 rejected, 2 could not run)",
        "python -m conformance certify",
        ("convcert certify ./myconv.py:MyConv --quick",
         "convcert certify mypkg.conv:FastConv --dtype float32 float16 --device cpu",
         "convcert certify torch --shard 2/4 --out certs   # part 2 of 4; then convcert merge")),
    "matrix": Command(
        "certify every available implementation (or those named) and write the matrix",
        "python -m conformance matrix",
        ("convcert matrix --quick",
         "convcert matrix --impl naive im2col ./myconv.py:MyConv --out reports/out/conformance")),
    "explore": Command(
        "search random problems for a failure and shrink it (Hypothesis)",
        "python -m conformance explore",
        ("convcert explore ./myconv.py:MyConv --dtype float32 --examples 200 --seed 0",)),
    "references": Command(
        "check (or regenerate) the golden reference data",
        "python -m conformance references",
        ("convcert references --check",)),
    "merge": Command(
        "join the certificates of a sharded certification (certify --shard K/N) into one",
        "convcert merge",
        ("convcert merge certs/shard-*-of-4/myconv.json --out certs",)),
    "bench": Command(
        "time implementations on a profile's workloads (python -m benchmarks run)",
        "python -m benchmarks run",
        ("convcert bench --profile smoke --impl im2col ./myconv.py:MyConv",
         "convcert bench --profile cpu --impl torch --impl im2col --shard 1/2 --machine ci-a"),
        extra="bench"),
    "report": Command(
        "render the benchmark comparison (and the regression gate) from result files",
        "python -m reports",
        ("convcert report --results results/ --out reports/out",
         "convcert report --baseline saved.json --threshold 10"),
        extra="bench"),
    "list": Command(
        "list implementations: devices, dtypes, claimed features, why one is unavailable",
        "python -m implementations",
        ("convcert list", "convcert list --json")),
}


def _merge(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="convcert merge", description=COMMANDS["merge"].summary)
    p.add_argument("certificates", nargs="+", metavar="CERT.json", help="the N parts, in any order")
    p.add_argument("--out", default=".", help="folder for the merged certificate (default: here)")
    args = p.parse_args(argv)
    from conformance.rendering.certificate_files import summary, write_certificate
    from conformance.verdicts.merge import MergeError, merge

    try:
        documents = [json.loads(Path(path).read_text()) for path in args.certificates]
        cert = merge(documents, args.certificates)
    except (OSError, ValueError, KeyError, MergeError) as exc:
        print(f"not merged: {exc}", file=sys.stderr)
        return 2
    json_path, md_path = write_certificate(cert, Path(args.out))
    print(summary(cert))
    print(f"certificate: {json_path} and {md_path}")
    return 0 if cert.passed else 1


RUNNERS: dict[str, Callable[[list[str]], int]] = {
    **{name: _conformance(name) for name in ("certify", "matrix", "explore", "references")},
    "merge": _merge, "bench": _bench, "report": _report, "list": _list,
}


def overview() -> str:
    lines = ["usage: convcert COMMAND [options]   (convcert COMMAND --help for its options)",
             "       convcert --version", "",
             __doc__.split("\n\n")[0].replace("``", ""), "", "commands:"]
    lines += [f"  {name:<11} {c.summary}" for name, c in COMMANDS.items()]
    lines += ["", "examples:"] + [f"  {c.examples[0]}" for c in COMMANDS.values()]
    lines += ["", "A SPEC is a registered name (convcert list), package.module:Class or "
              "path/to/file.py:Class.",
              "In pytest: pytest --convcert SPEC [--convcert-quick] (the convcert pytest plugin)."]
    return "\n".join(lines)


def _help(name: str, argv: list[str]) -> int:
    """The subcommand's own help under the name ``convcert NAME``, then its examples."""
    command = COMMANDS[name]
    captured = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(captured):
        try:
            RUNNERS[name](argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
    text = captured.getvalue()
    # usage lines continue under the program's name: indent them under the new one
    old_indent, new_indent = " " * len(f"usage: {command.prog} "), " " * len(f"usage: convcert {name} ")
    text = text.replace("\n" + old_indent, "\n" + new_indent).replace(command.prog, f"convcert {name}")
    print(text.rstrip())
    print("\nexamples:\n" + "\n".join(f"  {e}" for e in command.examples))
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(overview())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"convcert {__version__}")
        return 0
    try:
        use_own()
    except Shadowed as exc:
        print(exc, file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    if name not in RUNNERS:
        print(f"convcert: unknown command {name!r}; one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    own = rest[: rest.index("--")] if "--" in rest else rest
    if "-h" in own or "--help" in own:
        return _help(name, rest)
    try:
        return RUNNERS[name](rest)
    except ModuleNotFoundError as exc:
        extra = COMMANDS[name].extra
        if not extra or exc.name not in _EXTRA_MODULES:
            raise
        print(f"convcert {name}: needs {exc.name}, which is not installed: "
              f'install the "{extra}" extra (from a checkout: pip install ".[{extra}]")', file=sys.stderr)
        return 2


#: Modules of the ``bench`` extra whose absence means "install the extra", not a bug.
_EXTRA_MODULES = {"pytest", "pandas", "matplotlib", "cpuinfo", "threadpoolctl", "rich"}


if __name__ == "__main__":
    sys.exit(main())
