"""On a CUDA GPU: large problems autotune once, a second process reads the tile cache, and
the tuned tiles (Hopper shapes among them), the pointwise GEMM and the split-K weight
gradient agree with cuDNN. Skipped without CUDA (written without a GPU at hand)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the triton implementation needs torch")
pytest.importorskip("triton", reason="triton is not installed")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.own_process,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (compiled kernels)"),
]

CHECK = """
    import torch, torch.nn.functional as F
    import implementations.triton_op.ops  # registers torch.ops.convcert.*
    from implementations.triton_op import launch
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    ops = torch.ops.convcert
    # (x shape, w shape, padding): a 3x3 layer and a pointwise one, both over 1 GFLOP
    for xs, ws, pad in (((16, 128, 28, 28), (128, 128, 3, 3), 1), ((32, 256, 28, 28), (512, 256, 1, 1), 0)):
        x = torch.randn(xs, device="cuda", dtype=torch.float16).to(memory_format=torch.channels_last)
        w = torch.randn(ws, device="cuda", dtype=torch.float16).to(memory_format=torch.channels_last)
        conf = ([1, 1], [pad] * 4, [1, 1], 1)
        y = ops.conv2d(x, w, None, *conf)
        dy = torch.randn_like(y)
        dx = ops.conv2d_backward_input(dy, w, list(xs), *conf)
        dw = ops.conv2d_backward_weight(dy, x, list(ws), *conf)
        grads = torch.ops.aten.convolution_backward(dy.double(), x.double(), w.double(), None, [1, 1],
                                                    [pad, pad], [1, 1], False, [0, 0], 1, [True, True, False])
        want = (F.conv2d(x.double(), w.double(), None, 1, pad), grads[0], grads[1])
        for name, got, ref in zip(("y", "dx", "dw"), (y, dx, dw), want):
            err = ((got.double() - ref).abs().max() / ref.abs().max()).item()
            assert err < 1e-2, f"{name} {xs} {ws}: relative error {err:.3g}"
    print("LAUNCHES", sorted({source for (_, source) in launch.LAUNCHES}))
"""


def _run(cache: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(PYTHONPATH=str(ROOT), CONVCERT_TRITON_CACHE=str(cache))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CHECK)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout


def test_large_problems_autotune_once_then_a_new_process_reads_the_cache(tmp_path: Path) -> None:
    assert "LAUNCHES ['autotune']" in _run(tmp_path)
    assert list(tmp_path.glob("gemm-dot-*.json")) and list(tmp_path.glob("forward-dot-*.json"))
    assert "LAUNCHES ['cached']" in _run(tmp_path)


TMA_CHECK = """
    import torch
    from implementations.triton_op import launch, tuning
    torch.manual_seed(1)
    if torch.cuda.get_device_capability() < (9, 0):
        print("SKIP no TMA before Hopper")
        raise SystemExit(0)
    # the three pointwise GEMM layouts (b transposed, none, a transposed + split-K), with tails
    x = torch.randn(3001, 136, device="cuda")
    w = torch.randn(264, 136, device="cuda")
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        meta = launch._common(dtype, x.device, False)
        for a, b, split in ((x, w.t(), 1), (x @ w.t(), w, 1), ((x @ w.t()).t(), x, 3)):
            a, b = a.to(dtype), b.to(dtype)
            want = a.double() @ b.double()
            for tile in tuning.TMA_TILES:
                c = torch.full((split, a.shape[0], b.shape[1]), float("nan"), device="cuda")
                launch.gemm(a, b, c, None, meta, split, tile=tile)
                err = ((c.sum(0).double() - want).abs().max() / want.abs().max()).item()
                problem = f"{dtype} {tuple(a.shape)}x{tuple(b.shape)} split {split} {tile}"
                assert err < 1e-2, f"{problem}: relative error {err:.3g}"
    print("TMA OK")
"""


def test_the_persistent_tma_gemm_agrees_with_float64_on_hopper() -> None:
    from implementations.triton_op import tuning

    if not tuning.TMA_TILES:
        pytest.skip("this triton has no tl.make_tensor_descriptor")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(TMA_CHECK)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    if "SKIP" in proc.stdout:
        pytest.skip(proc.stdout.strip())
    assert "TMA OK" in proc.stdout
