"""The Triton implicit-GEMM convolution against cuDNN (torch's own convolution) on one GPU.

    PYTHONPATH=. python benchmarks/triton_vs_cudnn.py --out DIR [--dtypes float16 float32]
        [--layouts nchw channels_last] [--passes forward backward] [--batch 64]
        [--networks resnet50 vgg16] [--rounds 50] [--only SUBSTRING]

Times the ResNet-50 and VGG-16 convolution layers, both implementations on the same
tensors: forward ``torch.ops.convcert.conv2d`` vs ``F.conv2d``; backward
``conv2d_backward_input`` + ``conv2d_backward_weight`` vs ``aten.convolution_backward``
(dx and dw, no autograd overhead on either side). TF32 is off on both sides; whether
``cudnn.benchmark`` (cuDNN's own autotuning) is on is recorded. Each timing is the median
(with 20th/80th percentiles) of ``--rounds`` calls, each between CUDA events after the L2
cache was flushed, following warm-up calls (which include Triton's autotuning). Before
timing, each Triton result is compared with torch's; a mismatch is reported in the row.

Results go to ``DIR/triton_vs_cudnn.json`` and ``.md``, rewritten atomically after every
layer, so an interrupted run keeps the layers that finished. Exits with status 2 and a
message when there is no CUDA device.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from implementations.files import write_atomic
from implementations.geometry import ConvParams, conv_flops

#: Conv layers (network, name, (C, H, W), K, kernel, stride, padding), used when the
#: benchmarks package's workload table is not importable. Same shapes as
#: ``benchmarks.workloads``: VGG-16 (Simonyan & Zisserman 2014) and the unique ResNet-50
#: convolutions (torchvision v1.5, stride on the 3x3).
LOCAL_LAYERS: tuple[tuple[str, str, tuple[int, int, int], int, int, int, int], ...] = (
    ("resnet50", "conv1", (3, 224, 224), 64, 7, 2, 3),
    ("resnet50", "res2_reduce_first", (64, 56, 56), 64, 1, 1, 0),
    ("resnet50", "res2_conv3x3", (64, 56, 56), 64, 3, 1, 1),
    ("resnet50", "res2_expand", (64, 56, 56), 256, 1, 1, 0),
    ("resnet50", "res2_reduce", (256, 56, 56), 64, 1, 1, 0),
    ("resnet50", "res3_reduce_first", (256, 56, 56), 128, 1, 1, 0),
    ("resnet50", "res3_conv3x3_s2", (128, 56, 56), 128, 3, 2, 1),
    ("resnet50", "res3_expand", (128, 28, 28), 512, 1, 1, 0),
    ("resnet50", "res3_shortcut", (256, 56, 56), 512, 1, 2, 0),
    ("resnet50", "res3_reduce", (512, 28, 28), 128, 1, 1, 0),
    ("resnet50", "res3_conv3x3", (128, 28, 28), 128, 3, 1, 1),
    ("resnet50", "res4_reduce_first", (512, 28, 28), 256, 1, 1, 0),
    ("resnet50", "res4_conv3x3_s2", (256, 28, 28), 256, 3, 2, 1),
    ("resnet50", "res4_expand", (256, 14, 14), 1024, 1, 1, 0),
    ("resnet50", "res4_shortcut", (512, 28, 28), 1024, 1, 2, 0),
    ("resnet50", "res4_reduce", (1024, 14, 14), 256, 1, 1, 0),
    ("resnet50", "res4_conv3x3", (256, 14, 14), 256, 3, 1, 1),
    ("resnet50", "res5_reduce_first", (1024, 14, 14), 512, 1, 1, 0),
    ("resnet50", "res5_conv3x3_s2", (512, 14, 14), 512, 3, 2, 1),
    ("resnet50", "res5_expand", (512, 7, 7), 2048, 1, 1, 0),
    ("resnet50", "res5_shortcut", (1024, 14, 14), 2048, 1, 2, 0),
    ("resnet50", "res5_reduce", (2048, 7, 7), 512, 1, 1, 0),
    ("resnet50", "res5_conv3x3", (512, 7, 7), 512, 3, 1, 1),
    ("vgg16", "conv1_1", (3, 224, 224), 64, 3, 1, 1),
    ("vgg16", "conv1_2", (64, 224, 224), 64, 3, 1, 1),
    ("vgg16", "conv2_1", (64, 112, 112), 128, 3, 1, 1),
    ("vgg16", "conv2_2", (128, 112, 112), 128, 3, 1, 1),
    ("vgg16", "conv3_1", (128, 56, 56), 256, 3, 1, 1),
    ("vgg16", "conv3_2", (256, 56, 56), 256, 3, 1, 1),
    ("vgg16", "conv4_1", (256, 28, 28), 512, 3, 1, 1),
    ("vgg16", "conv4_2", (512, 28, 28), 512, 3, 1, 1),
    ("vgg16", "conv5_1", (512, 14, 14), 512, 3, 1, 1),
)
#: The issue's target: Triton >= half of cuDNN's float16 forward throughput on these.
TARGET_LAYERS = ("resnet50.res2_conv3x3", "resnet50.res3_conv3x3", "resnet50.res4_conv3x3", "resnet50.res5_conv3x3")
TARGET_RATIO = 0.5
LAYOUTS = ("nchw", "channels_last")
PASSES = ("forward", "backward")


@dataclass(frozen=True)
class Layer:
    key: str  # "network.name"
    params: ConvParams


def conv_layers(networks: Iterable[str], batch: int) -> tuple[list[Layer], str]:
    """The conv layers of ``networks`` at ``batch``, and where their table came from."""
    networks = tuple(networks)
    try:
        from benchmarks.workloads import NETWORKS, Workload

        layers = [
            Layer(lay.key, Workload(lay, batch).params)
            for net in networks for lay in NETWORKS[net] if lay.op == "conv2d"
        ]
        return layers, "benchmarks.workloads"
    except ImportError:
        pass
    layers = [
        Layer(f"{net}.{name}", ConvParams.create((batch, *chw), (k, chw[0], kern, kern), stride, pad))
        for net, name, chw, k, kern, stride, pad in LOCAL_LAYERS if net in networks
    ]
    return layers, "local table in benchmarks/triton_vs_cudnn.py"


# -- measuring ---------------------------------------------------------------------------

@dataclass
class Timing:
    median_ms: float
    p20_ms: float
    p80_ms: float
    rounds: int


def time_calls(fn: Callable[[], Any], rounds: int, warmup: int, device: str) -> Timing:
    """Median of ``rounds`` calls after ``warmup`` calls; CUDA events around each call and
    the L2 cache flushed before it on a GPU, wall clock (perf_counter) elsewhere."""
    import torch

    for _ in range(warmup):
        fn()
    times = []
    if device == "cuda":
        flush = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")
        torch.cuda.synchronize()
        for _ in range(rounds):
            flush.zero_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    q = statistics.quantiles(times, n=5) if len(times) > 1 else [times[0]] * 4
    return Timing(statistics.median(times), q[0], q[3], len(times))


def _max_rel_err(got: Any, want: Any) -> float:
    scale = want.double().abs().max().item() or 1.0
    return (got.double() - want.double()).abs().max().item() / scale


def measure(layer: Layer, dtype_name: str, layout: str, pass_: str, device: str,
            rounds: int, warmup: int) -> dict[str, Any]:
    """One row: both implementations on the same tensors, checked, then timed."""
    import torch
    import torch.nn.functional as F

    import implementations.triton_conv  # noqa: F401  (registers torch.ops.convcert.*)

    p = layer.params
    dtype = getattr(torch, dtype_name)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    gen = torch.Generator(device=device).manual_seed(0)

    def rand(shape):
        return torch.randn(shape, generator=gen, device=device, dtype=dtype).to(memory_format=fmt)

    x, w = rand(p.x_shape), rand(p.w_shape)
    (top, bottom), (left, right) = p.padding
    assert top == bottom and left == right, "torch's F.conv2d takes symmetric padding only"
    stride, pad, dil, groups = list(p.stride), [top, left], list(p.dilation), p.groups
    pad4 = [top, bottom, left, right]
    ops = torch.ops.convcert
    if pass_ == "forward":
        def ours():
            return ops.conv2d(x, w, None, stride, pad4, dil, groups)

        def theirs():
            return F.conv2d(x, w, None, stride, pad, dil, groups)
    else:
        dy = rand(p.y_shape)

        def ours():
            return (ops.conv2d_backward_input(dy, w, list(p.x_shape), stride, pad4, dil, groups),
                    ops.conv2d_backward_weight(dy, x, list(p.w_shape), stride, pad4, dil, groups))

        def theirs():
            dx, dw, _ = torch.ops.aten.convolution_backward(
                dy, x, w, None, stride, pad, dil, False, [0, 0], groups, [True, True, False])
            return dx, dw

    got, want = ours(), theirs()
    pairs = zip(got, want) if pass_ == "backward" else [(got, want)]
    err = max(_max_rel_err(a, b) for a, b in pairs)
    del got, want
    t_ours = time_calls(ours, rounds, warmup, device)
    t_theirs = time_calls(theirs, rounds, warmup, device)
    flops = conv_flops(p) * (2 if pass_ == "backward" else 1)
    return {
        "layer": layer.key, "dtype": dtype_name, "layout": layout, "pass": pass_,
        "x_shape": list(p.x_shape), "w_shape": list(p.w_shape), "stride": list(p.stride),
        "padding": [list(pair) for pair in p.padding], "flops": flops,
        "max_rel_err_vs_torch": err,
        "triton": asdict(t_ours), "torch": asdict(t_theirs),
        "triton_tflops": flops / t_ours.median_ms / 1e9,
        "torch_tflops": flops / t_theirs.median_ms / 1e9,
        "throughput_ratio": t_theirs.median_ms / t_ours.median_ms,
    }


# -- describing and writing --------------------------------------------------------------

def environment(device: str) -> dict[str, Any]:
    """Versions and flags behind every number."""
    import torch
    import triton

    from implementations import triton_kernels as tk

    env: dict[str, Any] = {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "torch": torch.__version__, "triton": triton.__version__,
        "triton_interpreter": tk.interpreting(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "triton_allow_tf32": False,
        "autotune_chosen": tk.chosen_configs(),
    }
    if device == "cuda":
        env.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
        if shutil.which("nvidia-smi"):
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30)
            env["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    return env


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def render_markdown(doc: dict[str, Any]) -> str:
    """The JSON document as a Markdown report: how measured, target verdicts, one table per
    (dtype, layout, pass)."""
    env, method, rows = doc["environment"], doc["method"], doc["results"]
    lines = [
        "# Triton implicit-GEMM convolution vs cuDNN",
        "",
        f"GPU {env.get('gpu', 'none')}, driver {env.get('driver', '?')}, CUDA {env.get('cuda', '?')}, "
        f"cuDNN {env.get('cudnn', '?')}, torch {env['torch']}, triton {env['triton']}. "
        f"TF32 off (cuDNN, matmul, Triton); cudnn.benchmark={env['cudnn_benchmark']}.",
        f"Each time: median of {method['rounds']} calls (20th-80th percentile in brackets) after "
        f"{method['warmup']} warm-up calls, {method['timer']}. Batch {method['batch']}; "
        f"layers from {method['layers_from']}. Ratio = cuDNN time / Triton time "
        "(Triton's share of cuDNN's throughput; > 1: Triton faster).",
        "",
    ]
    target = [r for r in rows if r["layer"] in TARGET_LAYERS and r["dtype"] == "float16" and r["pass"] == "forward"]
    if target:
        lines += [f"## Target: float16 forward on the ResNet-50 3x3 layers, ratio >= {TARGET_RATIO}", ""]
        for r in target:
            verdict = "met" if r["throughput_ratio"] >= TARGET_RATIO else "MISSED"
            lines.append(f"- {r['layer']} ({r['layout']}): {r['throughput_ratio']:.2f} -- {verdict}")
        lines.append("")
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dtype"], r["layout"], r["pass"]), []).append(r)
    for (dtype, layout, pass_), rs in groups.items():
        lines += [
            f"## {dtype}, {layout}, {pass_} (geometric-mean ratio {_geomean([r['throughput_ratio'] for r in rs]):.2f})",
            "",
            "| layer | x | w | stride | cuDNN ms | Triton ms | cuDNN TFLOP/s | Triton TFLOP/s | ratio | max rel err |",
            "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in rs:
            t, c = r["triton"], r["torch"]
            lines.append(
                f"| {r['layer']} | {'x'.join(map(str, r['x_shape']))} | {'x'.join(map(str, r['w_shape']))} "
                f"| {r['stride'][0]} | {c['median_ms']:.3f} [{c['p20_ms']:.3f}-{c['p80_ms']:.3f}] "
                f"| {t['median_ms']:.3f} [{t['p20_ms']:.3f}-{t['p80_ms']:.3f}] | {r['torch_tflops']:.1f} "
                f"| {r['triton_tflops']:.1f} | {r['throughput_ratio']:.2f} | {r['max_rel_err_vs_torch']:.1e} |"
            )
        lines.append("")
    return "\n".join(lines)


def run(out: Path, layers: list[Layer], layers_from: str, dtypes: Iterable[str], layouts: Iterable[str],
        passes: Iterable[str], rounds: int, warmup: int, device: str, batch: int) -> dict[str, Any]:
    """Measure every (layer, dtype, layout, pass); rewrite the result files after each layer."""
    out.mkdir(parents=True, exist_ok=True)
    timer = ("CUDA events, L2 flushed before each call" if device == "cuda" else "wall clock (perf_counter)")
    doc: dict[str, Any] = {
        "method": {"rounds": rounds, "warmup": warmup, "timer": timer, "batch": batch,
                   "layers_from": layers_from, "baseline": "torch F.conv2d / aten.convolution_backward"},
        "results": [],
    }
    for layer in layers:
        for dtype in dtypes:
            for layout in layouts:
                for pass_ in passes:
                    doc["results"].append(measure(layer, dtype, layout, pass_, device, rounds, warmup))
        doc["environment"] = environment(device)  # autotune choices grow as layers run
        write_atomic(out / "triton_vs_cudnn.json", json.dumps(doc, indent=1))
        write_atomic(out / "triton_vs_cudnn.md", render_markdown(doc))
        print(f"done {layer.key}", file=sys.stderr, flush=True)
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for triton_vs_cudnn.json and .md")
    ap.add_argument("--dtypes", nargs="+", default=["float16", "float32"], choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    ap.add_argument("--passes", nargs="+", default=list(PASSES), choices=PASSES)
    ap.add_argument("--networks", nargs="+", default=["resnet50", "vgg16"], choices=["resnet50", "vgg16"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--only", default="", help="keep layers whose key contains this text")
    ap.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cuDNN's autotuner off")
    args = ap.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("triton_vs_cudnn: no CUDA device visible to torch; this benchmark needs an NVIDIA "
              "GPU with CUDA torch and triton installed.", file=sys.stderr)
        return 2
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("triton_vs_cudnn: unset TRITON_INTERPRET; the interpreter cannot be benchmarked.", file=sys.stderr)
        return 2
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    layers, source = conv_layers(args.networks, args.batch)
    layers = [lay for lay in layers if args.only in lay.key]
    run(args.out, layers, source, args.dtypes, args.layouts, args.passes, args.rounds, args.warmup, "cuda", args.batch)
    print(f"wrote {args.out / 'triton_vs_cudnn.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
