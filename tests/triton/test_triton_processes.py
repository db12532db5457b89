"""What only a fresh process can show: triton's interpreter mode is fixed at its import.

Each test starts ``python`` with the environment it needs, so these are marked
``own_process`` (the folder's conftest never re-runs them in a child of its own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the triton implementation needs torch")
pytest.importorskip("triton", reason="triton is not installed")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.own_process


def _python(code: str, *, interpret: bool, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT)
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cpu_tensors_without_the_interpreter_are_refused_with_the_fix() -> None:
    proc = _python(
        """
        import torch
        from implementations.triton_op.conv import Triton
        assert "cpu" not in Triton().devices, Triton().devices
        try:
            torch.ops.convcert.conv2d(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 1, 1), None,
                                      [1, 1], [0, 0, 0, 0], [1, 1], 1)
        except RuntimeError as exc:
            print("refused:", exc)
        """,
        interpret=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "refused:" in proc.stdout and "TRITON_INTERPRET=1" in proc.stdout, proc.stdout


def test_tests_rerun_in_an_interpreter_child_when_triton_was_imported_first() -> None:
    node = "tests/triton/test_triton_conv.py::test_registration_survives_a_second_import"  # launches a kernel
    proc = _python(
        f"""
        import sys
        import triton, pytest  # compiled mode: too late for this process to interpret
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", {node!r}]))
        """,
        interpret=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "1 passed" in proc.stdout, proc.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (compiled kernels)")
def test_compiled_kernels_match_torch_on_cuda() -> None:
    proc = _python(
        """
        import torch, torch.nn.functional as F
        import implementations.triton_op.ops  # registers torch.ops.convcert.*
        torch.backends.cudnn.allow_tf32 = False
        torch.manual_seed(0)
        for dtype, tol in ((torch.float16, 2e-2), (torch.bfloat16, 1e-1), (torch.float32, 1e-4),
                           (torch.float64, 1e-10)):
            for fmt in (torch.contiguous_format, torch.channels_last):
                x = torch.randn(4, 32, 17, 15, device="cuda", dtype=dtype).to(memory_format=fmt)
                x.requires_grad_()
                w = torch.randn(48, 16, 3, 3, device="cuda", dtype=dtype, requires_grad=True)
                y = torch.ops.convcert.conv2d(x, w, None, [2, 1], [1, 0, 2, 1], [1, 2], 2)
                y_ref = F.conv2d(F.pad(x.double(), (2, 1, 1, 0)), w.double(), None, (2, 1), 0, (1, 2), 2)
                dy = torch.randn_like(y_ref)
                got = torch.autograd.grad(y, (x, w), dy.to(dtype))
                want = torch.autograd.grad(y_ref, (x, w), dy)
                for name, a, b in (("y", y, y_ref), ("dx", got[0], want[0]), ("dw", got[1], want[1])):
                    err = ((a.double() - b).abs().max() / b.abs().max()).item()
                    assert err < tol, f"{name} {dtype} {fmt}: relative error {err:.3g} >= {tol}"
        print("cuda ok")
        """,
        interpret=False, timeout=600,
    )
    assert proc.returncode == 0 and "cuda ok" in proc.stdout, (proc.stdout + proc.stderr)[-3000:]
