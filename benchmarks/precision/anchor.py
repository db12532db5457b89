"""``python -m benchmarks anchor``: convcert's numbers beside ``torch.utils.benchmark``'s, same rows.

Times the ResNet-50 batch-8 forward rows of the cpu profile for torch and im2col twice, one
right after the other: with convcert's harness (``python -m benchmarks run --profile cpu
--impl torch im2col --threads N -- -k "resnet50 and b8 and forward"``, in a process of its
own) and with ``torch.utils.benchmark.Timer(...).blocked_autorange(min_run_time=2)``, its
``num_threads`` set to the same N (its default is 1), on the same inputs and the same
adapter calls. Prints, per row, each tool's median and relative IQR and the ratio of the
medians (convcert / anchor). convcert's spread should be no worse than the anchor's and the
medians within 5% of each other; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .. import measure, storage
from .. import timed_cases as tc
from ..workloads import get_profile
from . import threads

ROWS = "resnet50 and b8 and forward"
IMPLS = ("torch", "im2col")


def convcert_rows(n_threads: int, out: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """(impl, workload) -> (median s, relative IQR) from a harness run in its own process."""
    cmd = [sys.executable, "-m", "benchmarks", "run", "--profile", "cpu", "--impl", *IMPLS,
           "--threads", str(n_threads), "--out", str(out), "--", "-k", ROWS]
    subprocess.run(cmd, check=True)
    (path,) = sorted(out.glob("*.json"))[-1:]
    doc = storage.read(path)
    return {(r.task.impl, r.task.workload): (r.timing.summary.median_s, r.timing.summary.relative_iqr)
            for r in doc.results if r.status == "ok" and r.timing is not None}


def anchor_rows(n_threads: int, min_run_time: float) -> dict[tuple[str, str], tuple[float, float]]:
    """The same rows by ``torch.utils.benchmark.Timer.blocked_autorange``."""
    from torch.utils import benchmark as tb

    from implementations import registry

    out: dict[tuple[str, str], tuple[float, float]] = {}
    workloads = [w for w in get_profile("cpu").workloads if w.layer.network == "resnet50" and w.batch == 8]
    for workload in workloads:
        for name in IMPLS:
            impl = registry.get(name)
            case = tc.TimedCase(name, "cpu", "float32", workload, "forward")
            call = tc.bound_call(impl, case, tc.place(impl, case))
            timer = tb.Timer("ready(call())", globals={"call": call, "ready": measure.ready_of(impl, "cpu")},
                             num_threads=n_threads, label=workload.name, sub_label=name)
            m: Any = timer.blocked_autorange(min_run_time=min_run_time)
            out[(name, workload.name)] = (m.median, m.iqr / m.median)
    return out


def table(ours: dict, theirs: dict) -> str:
    lines = [f"{'row':<42} {'convcert ms':>11} {'IQR':>6} {'anchor ms':>10} {'IQR':>6} {'ratio':>6}"]
    for key in sorted(set(ours) | set(theirs), key=lambda k: (k[1], k[0])):
        o, t = ours.get(key), theirs.get(key)
        cells = [f"{key[0]} {key[1]}"[:42].ljust(42)]
        cells += [f"{o[0] * 1e3:11.3f}", f"{o[1]:6.1%}"] if o else ["-".rjust(11), "-".rjust(6)]
        cells += [f"{t[0] * 1e3:10.3f}", f"{t[1]:6.1%}"] if t else ["-".rjust(10), "-".rjust(6)]
        cells.append(f"{o[0] / t[0]:6.3f}" if o and t else "-".rjust(6))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of both tools (default: the usable cores)")
    parser.add_argument("--min-run-time", type=float, default=2.0,
                        help="blocked_autorange's min_run_time per row, seconds (default 2)")
    parser.add_argument("--out", default=None,
                        help="folder for convcert's result file (default: a temporary one)")


def main(args: argparse.Namespace) -> int:
    n = args.threads or threads.default_threads()
    threads.restart_with(n, args.argv)  # the anchor's process gets the same thread settings
    threads.apply(n)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="convcert-anchor-"))
    ours = convcert_rows(n, out)
    threads.apply_to_frameworks(n)
    theirs = anchor_rows(n, args.min_run_time)
    print(f"ResNet-50 b8 forward, {n} threads: convcert (python -m benchmarks run, results in {out}) "
          f"beside torch.utils.benchmark blocked_autorange(min_run_time={args.min_run_time:g}); "
          "ratio = convcert median / anchor median")
    print(table(ours, theirs))
    return 0
