"""The compiled (GPU) path without a GPU: every kernel compiles to sm_90 machine code.

The interpreter runs the kernels' Python, not triton's compiler, so a kernel can pass
every interpreter test and still be rejected by the compiler (a type mix, a dot shape, a
constexpr misuse). triton ships ptxas, so compiling for an H100 target needs no GPU.
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

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.own_process  # starts its own compiled-mode python

COMPILE_ALL = """
    import sys
    import triton, triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction
    from implementations import triton_kernels as tk

    ELEM = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}
    for kind, fn in tk.KERNELS.items():
        jf = JITFunction(fn)
        variants = [(d, flat) for d in ("float16", "bfloat16", "float32", "float64")
                    for flat in ((False, True) if kind == "forward" else (False,))]
        for dtype, flat in variants:
            fma = dtype == "float64"
            cfg = tk.GPU_CONFIGS[fma][-1]  # the smallest tile: the quickest compile
            meta = {"PRECISION": "ieee", "FMA": fma, "UPCAST": False,
                    "ACC": tl.float64 if fma else tl.float32, "HAS_BIAS": True, "FLAT": flat, **cfg.kwargs}
            sig, const = {}, {}
            for i, name in enumerate(jf.arg_names):
                if name in meta:
                    sig[name], const[(i,)] = "constexpr", meta[name]
                elif name == "ws":
                    sig[name] = "*fp64" if fma else "*fp32"
                elif name in ("x", "w", "bias", "y", "dy", "dx"):
                    sig[name] = "*" + ELEM[dtype]
                else:
                    sig[name] = "i32"
            try:
                src = ASTSource(fn=jf, signature=sig, constexprs=const)
            except TypeError as exc:  # another triton's ASTSource signature
                print("SKIP", exc)
                sys.exit(0)
            triton.compile(src, target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": cfg.num_warps, "num_stages": cfg.num_stages})
            print("compiled", kind, dtype, flat)
"""


def test_every_kernel_compiles_for_an_h100_in_each_claimed_dtype() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(COMPILE_ALL)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode == 0 and "SKIP" in proc.stdout:
        pytest.skip(f"this triton's ASTSource takes other arguments: {proc.stdout.strip()}")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert proc.stdout.count("compiled") == 16, proc.stdout
