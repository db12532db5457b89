"""``python -m benchmarks run --profile smoke|cpu|gpu [--impl NAME ...] [--device ...] [--dtype ...]
[--cold-cache] [--out DIR] [--shapes FILE]``.

``python -m benchmarks triton-vs-cudnn [--out DIR] ...``: see ``benchmarks.cudnn_comparison``.

``python -m benchmarks anchor [--threads N]``: see ``benchmarks.precision.anchor``.

Times every available implementation (or those named) on the profile's workloads, the
rounds of the implementations compared on a workload taking turns (pytest runs one test per
workload and pass), and writes one JSON result file, its name unique to the run, under
``--out`` (default ``results/``).
``--shapes`` replaces the profile's workloads by the problems of a benchdnn shapes file
(a path, or the name of one shipped in ``benchmarks/shapes/``), each at its own batch and
named by its label; the profile still decides devices, dtypes and time limits.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from implementations import Implementation, registry
from implementations.arguments import Several, add_shard_argument, shard_of
from implementations.files import writable_folder
from implementations.geometry import DTYPES

from . import cudnn_comparison, load
from .harness import Run, header
from .precision import anchor, threads
from .storage import ResultFile, new_result_path
from .workloads import PROFILES, Profile, get_profile, shapes_workloads

SUITE = Path(__file__).with_name("pytest_suite.py")


def _console() -> Any:
    if os.environ.get("NO_COLOR"):  # plain lines: rich would keep bold and other styles
        return None
    try:
        from rich.console import Console

        return Console(stderr=True)
    except ImportError:
        return None


def _load(names: list[str]) -> tuple[dict[str, Implementation], dict[str, str]]:
    """Load implementations by name or spec; what cannot load is reported and left out."""
    impls: dict[str, Implementation] = {}
    unloadable: dict[str, str] = {}
    for name in names:
        try:
            impl = registry.load(name)
        except Exception as exc:  # reported, and the run goes on with the others
            unloadable[name] = f"{type(exc).__name__}: {exc}"
            print(f"--impl {name}: cannot be loaded ({unloadable[name]}); not benchmarked", file=sys.stderr)
            continue
        impls[impl.name] = impl
    return impls, unloadable


def _default_impls(profile: Profile) -> list[str]:
    """Every available implementation, plus the profile's declared variants (e.g. torch-tf32)
    whose framework is available."""
    available = registry.available()
    extra = [spec for base, spec, _ in profile.variants if base in available]
    return available + extra


def _dtype_limits(profile: Profile, impls: dict[str, Implementation]) -> dict[str, tuple[str, ...]]:
    """Implementation name -> the only dtypes it runs in (the profile's variants)."""
    specs = {spec: dtypes for _, spec, dtypes in profile.variants}
    return {name: specs[impl.describe()["class"]] for name, impl in impls.items()
            if impl.describe()["class"] in specs}


def _shapes_profile(profile: Profile, shapes: str) -> Profile:
    """``profile`` timing the workloads of a benchdnn shapes file; refusals are printed."""
    try:
        workloads, refused = shapes_workloads(shapes)
    except ValueError as exc:
        raise ValueError(f"--shapes {shapes}: {exc}") from None
    for label, reason in refused.items():
        print(f"--shapes: {label} refused: {reason}", file=sys.stderr)
    if not workloads:
        raise ValueError(f"--shapes {shapes}: no descriptor convcert can run")
    return replace(profile, name=f"{profile.name}+{Path(shapes).name}", workloads=workloads)


def _check_paths(args: argparse.Namespace) -> None:
    """--out a writable folder, --machine a name that cannot reach outside it (ValueError)."""
    writable_folder(args.out)
    if args.machine and (set(args.machine) & {"/", "\\", os.sep} or args.machine.startswith(".")):
        raise ValueError(f"--machine={args.machine!r}: must be a name, without a path separator or a "
                         "leading dot (it names the result file)")


def run(args: argparse.Namespace) -> int:
    import pytest

    _check_paths(args)
    n_threads, idle = thread_count(args.threads)
    threads.restart_with(n_threads, args.argv,  # returns where the environment is already in force
                         {threads.IDLE_MARK: str(-1 if idle[1] is None else idle[1])} if idle else None)
    thread_record = threads.apply(n_threads)
    if idle:
        usable = threads.default_threads()
        thread_record["chosen"] = (f"--threads idle: {n_threads} of {usable} usable cores; "
                                   f"others kept {'?' if idle[1] is None else f'{idle[1]:.2f}'} CPUs busy "
                                   f"over {IDLE_SAMPLE_S:g} s at the start")
    profile = get_profile(args.profile)
    if args.shapes:
        profile = _shapes_profile(profile, args.shapes)
    devices = tuple(args.device or profile.devices)
    if "cuda" in devices and not args.no_cudnn_benchmark:
        # Users run cuDNN with its autotuner; the first (tuning) call is reported apart.
        os.environ.setdefault("CONVCERT_CUDNN_BENCHMARK", "1")
    impls, unloadable = _load(args.impl or _default_impls(profile))
    names = list(impls)
    if not names:
        raise ValueError("no implementation could be loaded")  # could not run: exit 2
    thread_record["frameworks"] = threads.apply_to_frameworks(n_threads)
    dtypes = tuple(args.dtype or profile.dtypes)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:])
    head = header(profile, impls, devices, dtypes, args.machine, command, args.cold_cache)
    head["not_loaded"] = unloadable
    head["threads"] = thread_record
    if args.shard:
        head["shard"] = "{}/{}".format(*args.shard)
    path = new_result_path(Path(args.out), head["machine"], profile.name)
    result_file = ResultFile(path, head)
    console = _console()
    bench = Run(profile, impls, devices, dtypes, result_file, console, args.cold_cache,
                _dtype_limits(profile, impls), threads=n_threads)
    bench.cases = [case for group in shard_of(bench.groups, args.shard) for case in group]
    started = time.perf_counter()
    say = (lambda text: console.print(text, soft_wrap=True)) if console else print
    say(f"convcert benchmarks: profile {profile.name}, {len(bench.cases)} cases "
        f"({', '.join(names)} on {', '.join(devices)} in {', '.join(dtypes)}); results -> {path}")
    at_start = load.sample()
    mark = load.Mark.now()
    bench.measure_peaks()
    code = pytest.main(
        [str(SUITE), "-q", "-s", "-p", "no:cacheprovider", *args.pytest_args],
        plugins=[bench],
    )
    bench.measure_peaks(at="end")
    during = mark.others_cpus()
    busy = load.summary(at_start, load.sample(), during, int(head["environment"].get("usable_cpus") or 1))
    wall = time.perf_counter() - started
    result_file.update(finished=datetime.now(timezone.utc).isoformat(timespec="seconds"), wall_s=wall,
                       load=busy)
    wrong = [f"{r.task.workload} {r.task.impl} {r.task.layout}"
             for r in result_file.results if r.status == "wrong"]
    errors = sum(r.status == "error" for r in result_file.results)
    timed = len(result_file.results) - errors
    say(f"{timed} timed, {len(result_file.skipped)} skipped, {errors} errors, {len(wrong)} wrong, "
        f"in {wall:.0f} s; results: {path}")
    if busy["busy"]:
        say(f"the machine was busy: {load.describe(busy)}" + (
            "; threads matched to the idle cores (--threads idle): its rankings may be read "
            "(docs/benchmarks.md, Threads)" if idle else "; re-run on a quiet machine, or with "
            "--threads idle, before reading rankings"))
    if wrong:
        say("wrong answers: " + "; ".join(wrong))
    # pytest's code 1 means a case raised (recorded as "error"); 5 means nothing ran.
    return int(code) if int(code) not in (0, 5) else 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be an integer >= 1")
    return int(text)


#: ``--threads idle`` watches the machine this long before choosing.
IDLE_SAMPLE_S = 2.0


def thread_count(requested: int | str | None) -> tuple[int, tuple[int, float | None] | None]:
    """The threads to run with, and for ``--threads idle`` (threads, others' CPUs measured): the
    cores other processes left idle, measured before anything loads (in a process restarted
    for it, the choice made before the restart)."""
    if requested != "idle":
        return int(requested or threads.default_threads()), None
    idle = threads.chosen_idle()
    if idle is None:
        others = load.sample(IDLE_SAMPLE_S)["others_cpus"]
        idle = threads.idle_threads(others), others
    return idle[0], idle


def _threads(text: str) -> int | str:
    return text if text == "idle" else _positive(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="convcert benchmarks: time implementations with "
                                     "interleaved rounds and write a JSON result file.")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="time implementations on a profile's workloads")
    r.add_argument("--profile", choices=sorted(PROFILES), default="cpu",
                   help="smoke: seconds (tests); cpu: minutes on 2 cores (default); "
                        "gpu: real batch sizes on CUDA")
    r.add_argument("--impl", action=Several, metavar="NAME",
                   help="registered names or module:Class specs (default: all available)")
    r.add_argument("--device", action=Several, choices=("cpu", "cuda"), help="default: the profile's")
    r.add_argument("--dtype", action=Several, choices=DTYPES, help="default: the profile's")
    r.add_argument("--out", default="results", help="folder for the result file (default: results/)")
    r.add_argument("--machine", default="", help="machine name in the results (default: hostname)")
    r.add_argument("--cold-cache", action="store_true",
                   help="GPU device time: flush the L2 cache before each call (outside the CUDA events)")
    r.add_argument("--no-cudnn-benchmark", action="store_true",
                   help="on CUDA, leave cuDNN's autotuner off (default: on, as users run it)")
    r.add_argument("--shapes", metavar="FILE",
                   help="time the problems of a benchdnn shapes file instead of the profile's workloads "
                   "(a path, or a file name in benchmarks/shapes/)")
    r.add_argument("--threads", type=_threads, metavar="N|idle",
                   help="CPU threads of every implementation (intra-op N, inter-op 1; BLAS and OpenMP "
                        "pools N, their idle threads yielding); 'idle': the usable cores other "
                        "processes left idle at the start (at least 1); default: the usable cores")
    add_shard_argument(r, "groups of compared cases (a workload and pass)")
    r.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments, e.g. -k resnet50")
    cudnn_comparison.add_arguments(sub.add_parser(
        "triton-vs-cudnn", help="the Triton convolution against cuDNN on a CUDA GPU (JSON + Markdown)"))
    anchor.add_arguments(sub.add_parser(
        "anchor", help="ResNet-50 b8 forward rows of torch and im2col by convcert and by "
                       "torch.utils.benchmark blocked_autorange, side by side"))
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command == "triton-vs-cudnn":
        return cudnn_comparison.main(args)
    if args.command == "anchor":
        return anchor.main(args)
    try:
        return run(args)
    except ValueError as exc:  # a bad path or name: one line, exit 2 (1 means a wrong answer)
        print(f"python -m benchmarks run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
