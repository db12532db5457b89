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
    from implementations.triton_op import kernels, tuning

    ELEM = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}
    POINTERS = ("x", "w", "bias", "y", "dy", "dx", "a", "b", "c", "out")
    HOPPER = tuning.Tile(128, 128, 64, 8, 4)  # the largest pipeline among the candidate tiles
    PART, PARTS = int(sys.argv[1]), int(sys.argv[2])  # this process compiles every PARTS-th kernel
    order = iter(range(10**6))

    def compile_one(kind, dtype, flat, tile, transposed=(False, False)):
        if next(order) % PARTS != PART:
            return
        jf = JITFunction(kernels.KERNELS[kind])
        fma = dtype == "float64"
        meta = {"PRECISION": "ieee", "FMA": fma, "UPCAST": False, "GROUP_M": kernels.GROUP_M,
                "ACC": tl.float64 if fma else tl.float32, "HAS_BIAS": True, "FLAT": flat,
                "BLOCK": 1024, "A_T": transposed[0], "B_T": transposed[1], "TMA": False,
                **tile.config().kwargs}
        sig, const = {}, {}
        for i, name in enumerate(jf.arg_names):
            if name in meta:
                sig[name], const[(i,)] = "constexpr", meta[name]
            elif name == "ws":
                sig[name] = "*fp64" if fma else "*fp32"
            elif name in POINTERS:
                sig[name] = "*" + ELEM[dtype]
            else:
                sig[name] = "i32"
        try:
            src = ASTSource(fn=jf, signature=sig, constexprs=const)
        except TypeError as exc:  # another triton's ASTSource signature
            print("SKIP", exc)
            sys.exit(0)
        kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                                options={"num_warps": tile.warps, "num_stages": tile.stages})
        if tile.tma:  # really the Hopper path: TMA loads, feeding warpgroup MMAs in fp16/bf16
            ptx = kernel.asm["ptx"]
            assert "cp.async.bulk.tensor" in ptx, (kind, dtype, tile)
            assert dtype == "float32" or "wgmma.mma_async" in ptx, (kind, dtype, tile)  # ieee fp32: FMA
        print("compiled", kind, dtype, flat, tile, transposed)

    for kind in kernels.KERNELS:
        variants = [(d, flat) for d in ("float16", "bfloat16", "float32", "float64")
                    for flat in ((False, True) if kind == "forward" else (False,))]
        for dtype, flat in variants:
            compile_one(kind, dtype, flat, tuning.GPU_TILES[dtype == "float64"][-1])  # smallest: quickest
    for kind in ("forward", "gemm"):
        compile_one(kind, "float16", False, HOPPER)
    # the persistent TMA GEMM: the pointwise forward (b stored transposed), dx, dw (a)
    assert tuning.TMA_TILES, "this triton has no tl.make_tensor_descriptor"
    for transposed in ((False, True), (False, False), (True, False)):
        compile_one("gemm", "float16", False, tuning.TMA_TILES[0], transposed)
    for dtype in ("bfloat16", "float32"):
        compile_one("gemm", dtype, False, tuning.TMA_TILES[-1], (False, True))
    for kind in kernels.KERNELS:  # the unspecialised builds that tiny problems launch
        generic = kernels.jitted(kind, generic=True)
        assert [p.name for p in generic.params if p.do_not_specialize] == kernels.int_args(kind), kind
        assert not any(p.do_not_specialize for p in kernels.jitted(kind).params), kind
    print("generic builds ok")
"""
#: Processes compiling side by side (each every PARTS-th kernel): the compiler is single-threaded.
PARTS = 2


def test_every_kernel_compiles_for_an_h100_in_each_claimed_dtype() -> None:
    from implementations.triton_op import kernels

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT)
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(COMPILE_ALL), str(part), str(PARTS)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for part in range(PARTS)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    stdout = "".join(out for out, _ in outputs)
    if all(proc.returncode == 0 for proc in procs) and "SKIP" in stdout:
        pytest.skip(f"this triton's ASTSource takes other arguments: {stdout.strip()}")
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, (out + err)[-4000:]
    # forward twice (flat or not), two Hopper tiles, five persistent TMA GEMMs
    kernels = 4 * 2 + 4 * (len(kernels.KERNELS) - 1) + 2 + 5
    assert stdout.count("compiled") == kernels and stdout.count("generic builds ok") == PARTS, stdout
