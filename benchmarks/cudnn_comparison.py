"""``python -m benchmarks triton-vs-cudnn``: the Triton convolution against cuDNN on one GPU.

Times the convolution layers of the benchmark workload table (ResNet-50 by default) at one
batch size, both implementations on the same tensors: forward ``torch.ops.convcert.conv2d``
against ``F.conv2d``; backward ``conv2d_backward_input`` + ``conv2d_backward_weight``
against ``aten.convolution_backward`` (dx and dw, no autograd overhead on either side).
TF32 is off on both sides; cuDNN's autotuner (``cudnn.benchmark``) is on unless asked
otherwise, and recorded. Each Triton result is compared with cuDNN's before it is timed.

Timing: after warm-up calls (which include Triton's tile choice and cuDNN's autotuning),
``--rounds`` calls are queued back to back, each between its own pair of CUDA events with
the L2 cache flushed before it, and one synchronisation at the end (the queue never runs
dry, so host launch gaps stay out of the figures). The statistics are
``benchmarks.stats.measurement_of``'s (median and IQR); ratio = cuDNN time / Triton time, i.e.
Triton's share of cuDNN's throughput.

The JSON document (rows, summary, environment) and its Markdown rendering are rewritten
atomically after every layer, so an interrupted run keeps the layers that finished.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from implementations.arguments import Several
from implementations.geometry import ConvParams

from . import timers
from .environment import collect
from .stats import Measurement, measurement_of
from .workloads import NETWORKS, Workload

LAYOUTS = ("channels_last", "nchw")
PASSES = ("forward", "backward")
DTYPES = ("float16", "bfloat16", "float32")
#: The issue's targets (ratio = Triton's share of cuDNN's throughput), channels_last:
#: (what, dtypes, passes, 3x3 layers only, per layer or geometric mean, threshold).
TARGETS = (
    ("every 3x3 forward", ("float16", "bfloat16"), ("forward",), True, "each", 0.8),
    ("forward, all layers", ("float16", "bfloat16"), ("forward",), False, "geomean", 0.7),
    ("backward (dx + dw), all layers", ("float16", "bfloat16"), ("backward",), False, "geomean", 0.5),
    ("float32 forward, all layers", ("float32",), ("forward",), False, "geomean", 0.5),
)
Timer = Callable[[Callable[[], Any], int, int], list[float]]


@dataclass(frozen=True)
class LayerCase:
    """One comparison: a workload in a dtype, a memory layout and a pass."""

    workload: Workload
    dtype: str
    layout: str
    pass_: str

    @property
    def params(self) -> ConvParams:
        p = self.workload.params
        assert isinstance(p, ConvParams)
        return p

    @property
    def is_3x3(self) -> bool:
        return self.workload.layer.kernel == (3, 3)


@dataclass(frozen=True)
class Row:
    """A case's two measurements (seconds per call) and how well Triton agreed with cuDNN."""

    case: LayerCase
    cudnn: Measurement
    triton: Measurement
    max_rel_err: float
    tiles: dict[str, str] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.cudnn.median_s / self.triton.median_s

    @property
    def flops(self) -> int:
        return self.case.workload.flops(self.case.pass_)

    def as_dict(self) -> dict[str, Any]:
        c, p = self.case, self.case.params
        return {
            "layer": c.workload.layer.key, "batch": c.workload.batch, "dtype": c.dtype, "layout": c.layout,
            "pass": c.pass_, "x_shape": list(p.x_shape), "w_shape": list(p.w_shape),
            "stride": list(p.stride), "flops": self.flops, "ratio": self.ratio,
            "cudnn": self.cudnn.as_dict(), "triton": self.triton.as_dict(),
            "cudnn_tflops": self.flops / self.cudnn.median_s / 1e12,
            "triton_tflops": self.flops / self.triton.median_s / 1e12,
            "max_rel_err_vs_cudnn": self.max_rel_err, "triton_tiles": self.tiles,
        }


def cases(networks: Iterable[str], batch: int, dtypes: Iterable[str], layouts: Iterable[str],
          passes: Iterable[str], only: str = "") -> list[LayerCase]:
    """Every conv layer of ``networks`` whose key contains ``only``, in every combination."""
    for name, value, allowed in (("dtypes", dtypes, DTYPES), ("layouts", layouts, LAYOUTS),
                                 ("passes", passes, PASSES), ("networks", networks, tuple(NETWORKS))):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ValueError(f"{name}={bad!r}: each must be one of {list(allowed)}")
    if batch < 1:
        raise ValueError(f"batch={batch!r}: must be >= 1")
    layers = [lay for net in networks for lay in NETWORKS[net] if lay.op == "conv2d" and only in lay.key]
    combos = [(d, lo, pa) for d in dtypes for lo in layouts for pa in passes]
    return [LayerCase(Workload(lay, batch), *combo) for lay in layers for combo in combos]


def geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def summary(rows: Sequence[Row]) -> dict[str, Any]:
    """Geometric-mean ratio per (dtype, layout, pass), and each target's verdict on the
    rows measured (``not measured`` when none of its rows ran)."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(f"{r.case.dtype}/{r.case.layout}/{r.case.pass_}", []).append(r.ratio)
    verdicts = []
    for what, dtypes, passes, only_3x3, how, threshold in TARGETS:
        chosen = [r for r in rows if r.case.layout == "channels_last" and r.case.dtype in dtypes
                  and r.case.pass_ in passes and (r.case.is_3x3 or not only_3x3)]
        for dtype in dtypes:
            ratios = [r.ratio for r in chosen if r.case.dtype == dtype]
            value = (min(ratios) if how == "each" else geomean(ratios)) if ratios else None
            verdict = "not measured" if value is None else "met" if value >= threshold else "missed"
            verdicts.append({"target": what, "dtype": dtype, "measure": "lowest" if how == "each" else how,
                             "threshold": threshold, "value": value, "verdict": verdict})
    return {"geomean_ratio": {k: geomean(v) for k, v in groups.items()}, "targets": verdicts}


# -- measuring ---------------------------------------------------------------------------

def cuda_timer(fn: Callable[[], Any], rounds: int, warmup: int) -> list[float]:
    """Seconds per call of ``fn`` after ``warmup`` calls (autotuning included): CUDA events
    around each call, L2 flushed before each, all rounds queued before one synchronisation
    (``timers.torch_event_timer`` with a cold cache)."""
    for _ in range(warmup):
        fn()
    return timers.torch_event_timer(cold_cache=True).times(fn, rounds)


def wall_timer(fn: Callable[[], Any], rounds: int, warmup: int) -> list[float]:
    """Seconds per call by the host clock: for the CPU (interpreter) path of the tests."""
    for _ in range(warmup):
        fn()
    return timers.HostTimer(lambda: None).times(fn, rounds)


def _calls(case: LayerCase, device: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(Triton, cuDNN) calls of the case on fresh random tensors in its dtype and layout."""
    import torch
    import torch.nn.functional as F

    import implementations.triton_op.ops  # noqa: F401  (registers torch.ops.convcert.*)

    p = case.params
    dtype = getattr(torch, case.dtype)
    fmt = torch.channels_last if case.layout == "channels_last" else torch.contiguous_format
    gen = torch.Generator(device=device).manual_seed(0)

    def rand(shape: Sequence[int]) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=gen, device=device, dtype=dtype).to(memory_format=fmt)

    x, w = rand(p.x_shape), rand(p.w_shape)
    (top, bottom), (left, right) = p.padding
    if (top, left) != (bottom, right):
        raise ValueError(f"padding={p.padding}: F.conv2d takes symmetric padding only")
    stride, dil, pad4 = list(p.stride), list(p.dilation), [top, bottom, left, right]
    ops = torch.ops.convcert
    if case.pass_ == "forward":
        return (lambda: ops.conv2d(x, w, None, stride, pad4, dil, p.groups),
                lambda: F.conv2d(x, w, None, stride, [top, left], dil, p.groups))
    dy = rand(p.y_shape)

    def ours() -> tuple[torch.Tensor, torch.Tensor]:
        return (ops.conv2d_backward_input(dy, w, list(p.x_shape), stride, pad4, dil, p.groups),
                ops.conv2d_backward_weight(dy, x, list(p.w_shape), stride, pad4, dil, p.groups))

    def theirs() -> tuple[torch.Tensor, torch.Tensor]:
        dx, dw, _ = torch.ops.aten.convolution_backward(
            dy, x, w, None, stride, [top, left], dil, False, [0, 0], p.groups, [True, True, False])
        return dx, dw

    return ours, theirs


def _max_rel_err(got: Any, want: Any) -> float:
    pairs = zip(got, want, strict=True) if isinstance(got, tuple) else [(got, want)]
    worst = 0.0
    for a, b in pairs:
        scale = b.double().abs().max().item() or 1.0
        worst = max(worst, (a.double() - b.double()).abs().max().item() / scale)
    return worst


def measure(case: LayerCase, device: str, timer: Timer, rounds: int, warmup: int) -> Row:
    """Check the Triton result against cuDNN's, then time both."""
    from implementations.triton_op import launch as tk

    ours, theirs = _calls(case, device)
    tk.LAST.clear()
    err = _max_rel_err(ours(), theirs())
    tiles = dict(tk.LAST)
    cudnn = measurement_of(timer(theirs, rounds, warmup))
    return Row(case, cudnn, measurement_of(timer(ours, rounds, warmup)), err, tiles)


# -- describing and writing --------------------------------------------------------------

def environment(device: str) -> dict[str, Any]:
    """The machine (``benchmarks.environment``) plus the versions and flags of both sides."""
    import torch
    import triton

    from implementations.triton_op import launch as tk

    env = collect((device,))
    env.update(torch=torch.__version__, triton=triton.__version__, triton_interpreter=tk.interpreting(),
               cudnn_benchmark=torch.backends.cudnn.benchmark,
               cudnn_allow_tf32=torch.backends.cudnn.allow_tf32, triton_allow_tf32=False,
               triton_tiles=tk.chosen_configs())
    return env


def _ms(m: dict[str, Any]) -> str:
    return f"{m['median_s'] * 1e3:.3f} ± {m['iqr_s'] * 1e3 / 2:.3f}"


def render_markdown(doc: dict[str, Any]) -> str:
    """The document as Markdown: how it was measured, the targets, the geometric means,
    then one table per (dtype, layout, pass)."""
    env, method, rows = doc["environment"], doc["method"], doc["results"]
    lines = [
        "# Triton implicit-GEMM convolution vs cuDNN",
        "",
        f"GPU {env.get('gpu', 'none')}, driver {env.get('driver', '?')}, CUDA {env.get('cuda', '?')}, "
        f"cuDNN {env.get('cudnn', '?')}, torch {env['torch']}, triton {env['triton']}. TF32 off on both "
        f"sides; cudnn.benchmark={env['cudnn_benchmark']}. Batch {method['batch']}.",
        f"Each time: median ± half the IQR of {method['rounds']} calls after {method['warmup']} warm-up "
        f"calls; {method['timer']}. Ratio = cuDNN time / Triton time (Triton's share of cuDNN's "
        "throughput; above 1, Triton is faster).",
        "",
        "## Targets (channels_last)",
        "",
        "| target | dtype | measure | threshold | value | verdict |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for t in doc["summary"]["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"| {t['target']} | {t['dtype']} | {t['measure']} | {t['threshold']} | {value} "
                     f"| {t['verdict']} |")
    lines += ["", "## Geometric-mean ratio", "", "| dtype / layout / pass | ratio |", "| --- | ---: |"]
    lines += [f"| {k} | {v:.2f} |" for k, v in doc["summary"]["geomean_ratio"].items()]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dtype"], r["layout"], r["pass"]), []).append(r)
    for (dtype, layout, pass_), rs in groups.items():
        lines += [
            "", f"## {dtype}, {layout}, {pass_}", "",
            "| layer | x | w | stride | cuDNN ms | Triton ms | cuDNN TFLOP/s | Triton TFLOP/s | ratio "
            "| max rel err | Triton tiles |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in rs:
            tiles = "; ".join(f"{k}: {v}" for k, v in r["triton_tiles"].items())
            lines.append(
                f"| {r['layer']} | {'x'.join(map(str, r['x_shape']))} | {'x'.join(map(str, r['w_shape']))} "
                f"| {r['stride'][0]} | {_ms(r['cudnn'])} | {_ms(r['triton'])} | {r['cudnn_tflops']:.1f} "
                f"| {r['triton_tflops']:.1f} | {r['ratio']:.2f} | {r['max_rel_err_vs_cudnn']:.1e} | {tiles} |"
            )
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    from implementations.files import write_atomic

    write_atomic(path, text.encode())


def run(out: Path, todo: Sequence[LayerCase], device: str, timer: Timer, rounds: int, warmup: int,
        method: dict[str, Any], stem: str) -> dict[str, Any]:
    """Measure every case; rewrite ``out/stem.json`` and ``.md`` after each layer."""
    rows: list[Row] = []
    doc: dict[str, Any] = {}
    for i, case in enumerate(todo):
        rows.append(measure(case, device, timer, rounds, warmup))
        last_of_layer = i + 1 == len(todo) or todo[i + 1].workload != case.workload
        if last_of_layer:
            doc = {"method": {**method, "rounds": rounds, "warmup": warmup},
                   "environment": environment(device), "summary": summary(rows),
                   "results": [r.as_dict() for r in rows]}
            _write(out / f"{stem}.json", json.dumps(doc, indent=1) + "\n")
            _write(out / f"{stem}.md", render_markdown(doc))
            print(f"done {case.workload.name}", file=sys.stderr, flush=True)
    return doc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("results"), help="folder for the JSON and Markdown")
    parser.add_argument("--networks", action=Several, default=["resnet50"], choices=sorted(NETWORKS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtypes", action=Several, default=["float16", "float32"], choices=DTYPES)
    parser.add_argument("--layouts", action=Several, default=["channels_last"], choices=LAYOUTS)
    parser.add_argument("--passes", action=Several, default=list(PASSES), choices=PASSES)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--only", default="", help="keep layers whose key contains this text, e.g. conv3x3")
    parser.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cuDNN's autotuner off")


def main(args: argparse.Namespace) -> int:
    """The ``triton-vs-cudnn`` command: 2 and one line on stderr where it cannot run."""
    import torch

    if not torch.cuda.is_available():
        print("triton-vs-cudnn: no CUDA device visible to torch; this comparison needs an NVIDIA GPU",
              file=sys.stderr)
        return 2
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("triton-vs-cudnn: TRITON_INTERPRET is set; unset it, the interpreter cannot be benchmarked",
              file=sys.stderr)
        return 2
    todo = cases(args.networks, args.batch, args.dtypes, args.layouts, args.passes, args.only)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    method = {"batch": args.batch, "networks": args.networks, "layers_from": "benchmarks.workloads",
              "timer": "CUDA events per call, L2 flushed before each, rounds queued then one sync",
              "baseline": "torch F.conv2d / aten.convolution_backward (cuDNN)",
              "command": "python -m benchmarks " + " ".join(sys.argv[1:])}
    run(args.out, todo, "cuda", cuda_timer, args.rounds, args.warmup, method, f"triton-vs-cudnn-{stamp}")
    print(f"wrote {args.out / f'triton-vs-cudnn-{stamp}.md'}", file=sys.stderr)
    return 0


__all__ = ["LayerCase", "Row", "cases", "main", "render_markdown", "run", "summary"]
