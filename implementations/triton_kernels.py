"""Implicit-GEMM Triton kernels for 2-D convolution: forward, input gradient, weight gradient.

No im2col buffer exists in memory: each kernel gathers its GEMM operand tiles straight from
the NCHW-logical tensors (any strides, so NCHW and channels-last both work) and masks the
taps that fall into the padding. Per group ``g`` (``Cg = C / groups``, ``Kg = K / groups``):

- forward:  ``y[(n,oh,ow), k]  = sum_{(r,s,c)} x[n, c, oh*sh-pt+r*dh, ow*sw-pl+s*dw] * w[k, c, r, s]``
- input:    ``dx[(n,ih,iw), c] = sum_{(r,s,k)} dy[n, k, oh, ow] * w[k, c, r, s]`` where
  ``oh = (ih+pt-r*dh)/sh`` must be a whole number inside the output (likewise ``ow``);
  split by stride phase so that each launch runs only the taps that reach its pixels
- weight:   ``dw[k, c, r, s]   = sum_{(n,oh,ow)} dy[n, k, oh, ow] * x[n, c, oh*sh-pt+r*dh, ...]``
  split over the reduction (split-K) into a float32 workspace that the caller sums.

Every GEMM accumulates in float32 (float64 for float64 inputs). float64 has no portable
``tl.dot`` lowering on NVIDIA GPUs, so float64 multiplies with a broadcast-and-sum
(``FMA=True``), which every backend and the interpreter run.

Kernels are built on first use, compiled and autotuned over a handful of block shapes keyed
on the problem shape, or, when this process's triton was imported with
``TRITON_INTERPRET=1``, interpreted (CPU tensors, slow) with one small block shape. The
choice follows how triton itself was built (see ``interpreting``), not the variable's
current value, so kernel and library never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

#: Arguments the autotuner keys on: the problem shape, plus per kernel the output layout
#: (its channel stride) or the split-K factor (triton adds the tensor dtypes itself).
_SHAPE_KEY = ["N", "C", "H", "W", "K", "R", "S", "sh", "sw", "pt", "pl", "dh", "dw", "Cg", "Kg"]
TUNING_KEYS = {
    "forward": _SHAPE_KEY + ["syk"],
    "backward_input": _SHAPE_KEY + ["sxc"],
    "backward_weight": _SHAPE_KEY + ["SPLIT"],
}


@triton.jit
def _mma(a, b, acc, PRECISION: tl.constexpr, FMA: tl.constexpr, UPCAST: tl.constexpr, ACC: tl.constexpr):
    """acc + a @ b for one tile, as the dtype allows: the one place the three kernels multiply."""
    if FMA:  # float64: no portable tl.dot lowering, multiply and reduce instead
        acc += tl.sum(a[:, :, None].to(ACC) * b[None, :, :].to(ACC), axis=1)
    elif UPCAST:  # interpreter: its bf16 tl.dot is wrong; bf16 products are exact in fp32
        acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
    return acc


def _conv_fwd(
    x, w, bias, y,
    N, C, H, W, K, R, S, OH, OW,
    sh, sw, pt, pl, dh, dw, Cg, Kg,
    sxn, sxc, sxh, sxw, swk, swc, swr, sws, syn, syk, syh, syw,
    HAS_BIAS: tl.constexpr, FLAT: tl.constexpr,
    PRECISION: tl.constexpr, FMA: tl.constexpr, UPCAST: tl.constexpr, ACC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """One (BLOCK_M output pixels) x (BLOCK_N output channels) tile of group program_id(2).

    The reduction runs tap by tap over BLOCK_K channels at a time (contiguous channel
    loads), or, with ``FLAT`` (few channels per group: an RGB stem, depthwise), over the
    flattened (r, s, c) index, so that a reduction tile is not mostly empty channels.
    """
    g = tl.program_id(2)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_ok = offs_m < N * OH * OW
    n_ok = offs_n < Kg
    img = (offs_m // (OH * OW)).to(tl.int64)
    oh = (offs_m // OW) % OH
    ow = offs_m % OW
    chan_k = (g * Kg + offs_n).to(tl.int64)
    x_img = x + img * sxn + (g * Cg).to(tl.int64) * sxc
    w_out = w + chan_k * swk

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    c_steps = tl.cdiv(Cg, BLOCK_K)
    steps = tl.cdiv(R * S * Cg, BLOCK_K) if FLAT else R * S * c_steps
    for t in range(0, steps):
        if FLAT:  # r, s, c per lane of the reduction tile
            kk = t * BLOCK_K + offs_k
            c_ok = kk < R * S * Cg
            c = kk % Cg
            r = (kk // Cg) // S
            s = (kk // Cg) % S
        else:  # one tap (r, s) per step, BLOCK_K channels of it
            c = (t % c_steps) * BLOCK_K + offs_k
            c_ok = c < Cg
            r = (t // c_steps) // S
            s = (t // c_steps) % S
        ih = oh[:, None] * sh - pt + r * dh
        iw = ow[:, None] * sw - pl + s * dw
        pix_ok = m_ok[:, None] & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        a = tl.load(
            x_img[:, None] + ih * sxh + iw * sxw + c[None, :].to(tl.int64) * sxc,
            mask=pix_ok & c_ok[None, :], other=0.0,
        )
        b = tl.load(
            w_out[None, :] + (c * swc + r * swr + s * sws)[:, None],
            mask=c_ok[:, None] & n_ok[None, :], other=0.0,
        )
        acc = _mma(a, b, acc, PRECISION, FMA, UPCAST, ACC)

    if HAS_BIAS:
        acc += tl.load(bias + chan_k, mask=n_ok, other=0.0).to(ACC)[None, :]
    out = y + img[:, None] * syn + chan_k[None, :] * syk + (oh * syh + ow * syw)[:, None]
    tl.store(out, acc.to(y.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


def _conv_bwd_input(
    dy, w, dx,
    N, C, H, W, K, R, S, OH, OW,
    sh, sw, pt, pl, dh, dw, Cg, Kg,
    h0, HQ, r0, RSTEP, NR, w0, WQ, s0, SSTEP, NS,
    sdn, sdk, sdh, sdw, swk, swc, swr, sws, sxn, sxc, sxh, sxw,
    PRECISION: tl.constexpr, FMA: tl.constexpr, UPCAST: tl.constexpr, ACC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """One (BLOCK_M input pixels) x (BLOCK_N input channels) tile of dx for group program_id(2),
    over the input pixels of one stride phase.

    The pixels ``ih = h0 + sh * i`` (``i < HQ``) all receive gradient through the same
    taps, ``r = r0 + RSTEP * j`` (``j < NR``), each from output row
    ``oh = (ih + pt - r * dh) / sh``, a whole number by construction (likewise along W). So
    a strided convolution's input gradient runs only taps that contribute, with no
    divisibility masks; stride 1 is the single phase ``h0 = 0, RSTEP = 1, NR = R``.
    """
    g = tl.program_id(2)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_ok = offs_m < N * HQ * WQ
    n_ok = offs_n < Cg
    img = (offs_m // (HQ * WQ)).to(tl.int64)
    ih = h0 + sh * ((offs_m // WQ) % HQ)
    iw = w0 + sw * (offs_m % WQ)
    chan_c = (g * Cg + offs_n).to(tl.int64)
    dy_img = dy + img * sdn + (g * Kg).to(tl.int64) * sdk
    w_grp = w + (g * Kg).to(tl.int64) * swk + offs_n * swc

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    k_steps = tl.cdiv(Kg, BLOCK_K)
    for t in range(0, NR * NS * k_steps):
        tap = t // k_steps
        k = (t % k_steps) * BLOCK_K + offs_k
        r = r0 + RSTEP * (tap // NS)
        s = s0 + SSTEP * (tap % NS)
        oh = (ih + pt - r * dh) // sh  # exact division (see the docstring); may be < 0
        ow = (iw + pl - s * dw) // sw
        pix_ok = m_ok & (oh >= 0) & (oh < OH) & (ow >= 0) & (ow < OW)
        k_ok = k < Kg
        a = tl.load(
            dy_img[:, None] + (oh * sdh + ow * sdw)[:, None] + k[None, :].to(tl.int64) * sdk,
            mask=pix_ok[:, None] & k_ok[None, :], other=0.0,
        )
        b = tl.load(
            w_grp[None, :] + (k.to(tl.int64) * swk + r * swr + s * sws)[:, None],
            mask=k_ok[:, None] & n_ok[None, :], other=0.0,
        )
        acc = _mma(a, b, acc, PRECISION, FMA, UPCAST, ACC)

    out = dx + img[:, None] * sxn + chan_c[None, :] * sxc + (ih * sxh + iw * sxw)[:, None]
    tl.store(out, acc.to(dx.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


def _conv_bwd_weight(
    dy, x, ws,
    N, C, H, W, K, R, S, OH, OW,
    sh, sw, pt, pl, dh, dw, Cg, Kg, SPLIT,
    sdn, sdk, sdh, sdw, sxn, sxc, sxh, sxw,
    PRECISION: tl.constexpr, FMA: tl.constexpr, UPCAST: tl.constexpr, ACC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """One (BLOCK_M out channels) x (BLOCK_N in channels) tile of tap program_id(1) of dw.

    program_id(2) = group * SPLIT + split; split ``i`` reduces its own slice of the
    N*OH*OW output pixels into ``ws[i]`` (float32, contiguous (SPLIT, K, Cg, R, S)).
    """
    n_tiles = tl.cdiv(Cg, BLOCK_N)
    pid = tl.program_id(0)
    rs = tl.program_id(1)
    g = tl.program_id(2) // SPLIT
    split = tl.program_id(2) % SPLIT
    r = rs // S
    s = rs % S
    offs_m = (pid // n_tiles) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = (pid % n_tiles) * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = offs_m < Kg
    n_ok = offs_n < Cg
    dy_chan = dy + (g * Kg + offs_m).to(tl.int64) * sdk
    x_chan = x + (g * Cg + offs_n).to(tl.int64) * sxc

    P = N * OH * OW
    per_split = tl.cdiv(tl.cdiv(P, SPLIT), BLOCK_K) * BLOCK_K
    p_lo = split * per_split
    p_hi = tl.minimum(p_lo + per_split, P)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for p0 in range(p_lo, p_hi, BLOCK_K):
        p = p0 + tl.arange(0, BLOCK_K)
        p_ok = p < p_hi
        img = (p // (OH * OW)).to(tl.int64)
        oh = (p // OW) % OH
        ow = p % OW
        ih = oh * sh - pt + r * dh
        iw = ow * sw - pl + s * dw
        pix_ok = p_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        a = tl.load(
            dy_chan[:, None] + (img * sdn + oh * sdh + ow * sdw)[None, :],
            mask=m_ok[:, None] & p_ok[None, :], other=0.0,
        )
        b = tl.load(
            x_chan[None, :] + (img * sxn + ih * sxh + iw * sxw)[:, None],
            mask=pix_ok[:, None] & n_ok[None, :], other=0.0,
        )
        acc = _mma(a, b, acc, PRECISION, FMA, UPCAST, ACC)

    k_idx = (g * Kg + offs_m).to(tl.int64)
    out = ws + (((split * K + k_idx[:, None]) * Cg + offs_n[None, :]) * R + r) * S + s
    tl.store(out, acc.to(ws.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


KERNELS: dict[str, Callable[..., None]] = {
    "forward": _conv_fwd,
    "backward_input": _conv_bwd_input,
    "backward_weight": _conv_bwd_weight,
}


def _cfg(bm: int, bn: int, bk: int, warps: int, stages: int) -> triton.Config:
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_warps=warps, num_stages=stages)


#: Candidate tiles on a GPU: tensor-core shapes for fp16/bf16/fp32, small FMA tiles for fp64.
GPU_CONFIGS: dict[bool, list[triton.Config]] = {
    False: [
        _cfg(128, 256, 32, 8, 3),
        _cfg(256, 128, 32, 8, 3),
        _cfg(128, 128, 32, 8, 3),
        _cfg(128, 128, 64, 8, 3),
        _cfg(128, 64, 32, 4, 4),
        _cfg(64, 128, 32, 4, 4),
        _cfg(256, 64, 64, 8, 3),  # 64 output channels (ResNet stage 2): whole-K tiles
        _cfg(128, 64, 64, 4, 3),
        _cfg(64, 64, 64, 4, 3),
        _cfg(64, 32, 32, 4, 4),
    ],
    True: [_cfg(32, 32, 8, 4, 2), _cfg(64, 32, 8, 4, 2), _cfg(32, 64, 8, 4, 2)],
}
#: The interpreter runs every program in Python: one small tile, nothing to tune. 16 is the
#: smallest block ``tl.dot`` accepts.
INTERPRETER_CONFIG = _cfg(32, 16, 16, 1, 1)


def interpreting() -> bool:
    """Whether this process's triton runs on the interpreter.

    Triton decides once, when ``triton`` is first imported, from ``TRITON_INTERPRET``: its
    own library functions (``tl.zeros``, ``tl.cdiv``) are built interpreted or compiled
    then, and a kernel must match them. Setting the variable later changes nothing.
    """
    from triton.runtime.jit import JITFunction

    return not isinstance(tl.zeros, JITFunction)


_LAUNCHERS: dict[tuple[str, bool], Any] = {}


def launcher(kind: str, fma: bool) -> Any:
    """The launchable kernel ``kind``: autotuned when compiled, one small tile when interpreted."""
    key = (kind, fma)
    if key not in _LAUNCHERS:
        fn = KERNELS[kind]
        if interpreting():
            from triton.runtime.interpreter import InterpretedFunction

            _LAUNCHERS[key] = triton.autotune([INTERPRETER_CONFIG], key=[])(InterpretedFunction(fn))
        else:
            from triton.runtime.jit import JITFunction

            _LAUNCHERS[key] = triton.autotune(GPU_CONFIGS[fma], key=TUNING_KEYS[kind])(JITFunction(fn))
    return _LAUNCHERS[key]


def chosen_configs() -> dict[str, dict[str, str]]:
    """Per kernel launched so far, the tile chosen for each autotune key (shape + dtypes)."""
    out: dict[str, dict[str, str]] = {}
    for (kind, fma), tuner in _LAUNCHERS.items():
        mode = "fma" if fma else "dot"
        if len(tuner.configs) == 1:
            out[f"{kind}/{mode}"] = {"any shape": str(tuner.configs[0])}
        else:
            out[f"{kind}/{mode}"] = {str(k): str(v) for k, v in tuner.cache.items()}
    return out


# -- launching ---------------------------------------------------------------------------

ACC_DTYPE = {torch.float64: tl.float64}  # every other dtype accumulates in float32


def _common(dtype: torch.dtype, device: torch.device, tf32: bool, kind: str) -> tuple[Any, dict[str, Any]]:
    fma = dtype == torch.float64
    meta = {
        "PRECISION": "tf32" if (tf32 and dtype == torch.float32) else "ieee",
        "FMA": fma,
        "UPCAST": dtype == torch.bfloat16 and interpreting(),
        "ACC": ACC_DTYPE.get(dtype, tl.float32),
    }
    if device.type == "cpu" and not interpreting():
        raise RuntimeError(
            "CPU tensors run on the Triton interpreter only: set TRITON_INTERPRET=1 in the "
            "environment before triton is first imported (torch._dynamo imports it too)"
        )
    return launcher(kind, fma), meta


def _geometry(x_shape, w_shape, out_hw, stride, padding, dilation, groups) -> tuple[int, ...]:
    n, c, h, w = x_shape
    k, _, r, s = w_shape
    # Cg and Kg are arguments (not C // groups in the kernel) so that triton can see when
    # they are multiples of 16 and keep the channel offsets aligned for vector loads.
    return (n, c, h, w, k, r, s, *out_hw, stride[0], stride[1], padding[0], padding[2],
            dilation[0], dilation[1], c // groups, k // groups)


def forward(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, y: torch.Tensor,
    stride, padding, dilation, groups: int, tf32: bool = False, flat: bool | None = None,
) -> None:
    """Write conv2d(x, w) + b into ``y`` (shapes already validated by the caller).

    ``flat`` picks the flattened (r, s, c) reduction; by default when a group has fewer
    than 16 input channels (the smallest reduction tile).
    """
    kernel, meta = _common(x.dtype, x.device, tf32, "forward")
    geo = _geometry(x.shape, w.shape, y.shape[2:], stride, padding, dilation, groups)
    m = y.shape[0] * y.shape[2] * y.shape[3]
    kg = w.shape[0] // groups

    def grid(cfg: dict[str, int]) -> tuple[int, int, int]:
        return triton.cdiv(m, cfg["BLOCK_M"]), triton.cdiv(kg, cfg["BLOCK_N"]), groups

    kernel[grid](
        x, w, b if b is not None else y, y, *geo,
        *x.stride(), *w.stride(), *y.stride(), HAS_BIAS=b is not None,
        FLAT=w.shape[1] < 16 if flat is None else flat, **meta,
    )


def stride_phases(size: int, pad: int, taps: int, stride: int,
                  dilation: int) -> list[tuple[int, int, int, int, int]]:
    """Along one axis, per stride phase with input pixels: (first pixel, pixel count, first
    tap, tap step, tap count) for the input-gradient kernel.

    Input pixel ``i`` is reached by tap ``r`` when ``(i + pad - r * dilation) % stride == 0``.
    All pixels with the same ``(i + pad) % stride`` share their taps, and those taps are an
    arithmetic progression with step ``stride / gcd(stride, dilation)``. A phase no tap
    reaches has a tap count of 0: its pixels get a zero gradient.
    """
    step = stride // math.gcd(stride, dilation)
    phases = []
    for q in range(stride):
        first = (q - pad) % stride
        if first >= size:
            continue
        reach = [r for r in range(taps) if (r * dilation - q) % stride == 0]
        phases.append((first, -(-(size - first) // stride), reach[0] if reach else 0, step, len(reach)))
    return phases


def backward_input(
    dy: torch.Tensor, w: torch.Tensor, dx: torch.Tensor,
    stride, padding, dilation, groups: int, tf32: bool = False,
) -> None:
    """Write the input gradient into ``dx``: one launch per (row, column) stride phase."""
    kernel, meta = _common(dy.dtype, dy.device, tf32, "backward_input")
    geo = _geometry(dx.shape, w.shape, dy.shape[2:], stride, padding, dilation, groups)
    n, _, h, w_ = dx.shape
    _, cg, r, s = w.shape
    rows = stride_phases(h, padding[0], r, stride[0], dilation[0])
    cols = stride_phases(w_, padding[2], s, stride[1], dilation[1])
    for row in rows:
        for col in cols:
            m = n * row[1] * col[1]

            def grid(cfg: dict[str, int], m: int = m) -> tuple[int, int, int]:
                return triton.cdiv(m, cfg["BLOCK_M"]), triton.cdiv(cg, cfg["BLOCK_N"]), groups

            kernel[grid](dy, w, dx, *geo, *row, *col, *dy.stride(), *w.stride(), *dx.stride(), **meta)


def split_for(w_shape, out_pixels: int, groups: int, device: torch.device) -> int:
    """How many slices to split the weight-gradient reduction into (split-K).

    Few output tiles (K * Cg * R * S small) over a long reduction (N * OH * OW large) would
    leave most of a GPU idle; aim for about two waves of 64x64 tiles, with slices of at
    least 1024 pixels. The interpreter gains nothing from splitting.
    """
    if device.type != "cuda":
        return 1
    k, cg, r, s = w_shape
    tiles = triton.cdiv(k // groups, 64) * triton.cdiv(cg, 64) * r * s * groups
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    want = triton.cdiv(2 * sms, tiles)
    return max(1, min(want, out_pixels // 1024, 65535 // groups))


def backward_weight(
    dy: torch.Tensor, x: torch.Tensor, w_shape, stride, padding, dilation, groups: int,
    tf32: bool = False, split: int | None = None,
) -> torch.Tensor:
    """The weight gradient, shape ``w_shape``, in dy's dtype (reduced in float32 or float64)."""
    kernel, meta = _common(dy.dtype, dy.device, tf32, "backward_weight")
    k, cg, r, s = w_shape
    pixels = dy.shape[0] * dy.shape[2] * dy.shape[3]
    split = split or split_for(w_shape, pixels, groups, dy.device)
    acc_dtype = torch.float64 if dy.dtype == torch.float64 else torch.float32
    ws = torch.empty((split, k, cg, r, s), dtype=acc_dtype, device=dy.device)
    geo = _geometry(x.shape, w_shape, dy.shape[2:], stride, padding, dilation, groups)

    def grid(cfg: dict[str, int]) -> tuple[int, int, int]:
        tiles = triton.cdiv(k // groups, cfg["BLOCK_M"]) * triton.cdiv(cg, cfg["BLOCK_N"])
        return tiles, r * s, groups * split

    kernel[grid](dy, x, ws, *geo, split, *dy.stride(), *x.stride(), **meta)
    return (ws[0] if split == 1 else ws.sum(0)).to(dy.dtype)
