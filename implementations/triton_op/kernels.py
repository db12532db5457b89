"""Implicit-GEMM Triton kernels for 2-D convolution: forward, input gradient, weight gradient.

No im2col buffer exists in memory: each kernel gathers its GEMM operand tiles straight from
the NCHW-logical tensors (any strides, so NCHW and channels-last both work) and masks the
taps that fall into the padding. Per group ``g`` (``Cg = C / groups``, ``Kg = K / groups``):

- forward:  ``y[(n,oh,ow), k]  = sum_{(r,s,c)} x[n, c, oh*sh-pt+r*dh, ow*sw-pl+s*dw] * w[k, c, r, s]``
- input:    ``dx[(n,ih,iw), c] = sum_{(r,s,k)} dy[n, k, oh, ow] * w[k, c, r, s]`` where
  ``oh = (ih+pt-r*dh)/sh`` must be a whole number inside the output (likewise ``ow``);
  split by stride phase so that each launch runs only the taps that reach its pixels
- weight:   ``dw[k, c, r, s]   = sum_{(n,oh,ow)} dy[n, k, oh, ow] * x[n, c, oh*sh-pt+r*dh, ...]``
  split over the reduction (split-K) into float32 partials that ``_sum_splits`` adds in
  a fixed order (deterministic, no atomics).
- pointwise (1x1, stride 1, unpadded, one group): all three are plain GEMMs over the
  (N*H*W, C) pixel rows of channels-last tensors (``_gemm``). On Hopper the autotuner may
  also pick a persistent variant (``TMA``): one program per SM walks the output tiles in
  grouped order and loads operand tiles through tensor descriptors (TMA), whose
  out-of-bounds zero fill replaces the masks; it is a candidate, never a default, so it
  runs only where it was timed faster.

Every GEMM accumulates in float32 (float64 for float64 inputs). float64 has no portable
``tl.dot`` lowering on NVIDIA GPUs, so float64 multiplies with a broadcast-and-sum
(``FMA=True``), which every backend and the interpreter run. Output tiles run in grouped
order (``_tile_coords``) so that programs running together share operand tiles in L2.

Kernels are built on first use, compiled or, when this process's triton was imported with
``TRITON_INTERPRET=1``, interpreted (CPU tensors, slow). The choice follows how triton
itself was built (see ``interpreting``), not the variable's current value, so kernel and
library never disagree. Which tile a launch uses (heuristic for small problems, autotuned
and cached on disk for large ones) is ``tuning``'s decision.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
import triton
import triton.language as tl

from .tuning import FMA_TILE, TINY_FLOPS, Tile, TileCache, choose, fits, tma_ready


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


@triton.jit
def _tile_coords(pid, num_m, num_n, GROUP_M: tl.constexpr):
    """(row tile, column tile) of program ``pid`` in grouped order: ``GROUP_M`` row tiles
    sweep every column tile before the next rows start, so the rows and columns that
    programs running together read are still in L2 (triton's matmul tutorial order)."""
    per_group = GROUP_M * num_n
    first_m = (pid // per_group) * GROUP_M
    size_m = tl.minimum(num_m - first_m, GROUP_M)
    return first_m + (pid % per_group) % size_m, (pid % per_group) // size_m


def _conv_fwd(
    x, w, bias, y,
    N, C, H, W, K, R, S, OH, OW,
    sh, sw, pt, pl, dh, dw, Cg, Kg,
    sxn, sxc, sxh, sxw, swk, swc, swr, sws, syn, syk, syh, syw,
    HAS_BIAS: tl.constexpr, FLAT: tl.constexpr,
    PRECISION: tl.constexpr, FMA: tl.constexpr, UPCAST: tl.constexpr, ACC: tl.constexpr,
    GROUP_M: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """One (BLOCK_M output pixels) x (BLOCK_N output channels) tile of group program_id(2),
    tile program_id(0) in grouped order.

    The reduction runs tap by tap over BLOCK_K channels at a time (contiguous channel
    loads), or, with ``FLAT`` (few channels per group: an RGB stem, depthwise), over the
    flattened (r, s, c) index, so that a reduction tile is not mostly empty channels.
    """
    g = tl.program_id(2)
    num_m = tl.cdiv(N * OH * OW, BLOCK_M)
    pid_m, pid_n = _tile_coords(tl.program_id(0), num_m, tl.cdiv(Kg, BLOCK_N), GROUP_M)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
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
    GROUP_M: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
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
    num_m = tl.cdiv(N * HQ * WQ, BLOCK_M)
    pid_m, pid_n = _tile_coords(tl.program_id(0), num_m, tl.cdiv(Cg, BLOCK_N), GROUP_M)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
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
    GROUP_M: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """One (BLOCK_M out channels) x (BLOCK_N in channels) tile of tap program_id(1) of dw.

    program_id(2) = group * SPLIT + split; split ``i`` reduces its own slice of the
    N*OH*OW output pixels into ``ws[i]`` (contiguous (SPLIT, K, Cg, R, S): float32
    partials that :func:`_sum_splits` adds in a fixed order, or dw itself when SPLIT = 1).
    """
    pid_m, pid_n = _tile_coords(tl.program_id(0), tl.cdiv(Kg, BLOCK_M), tl.cdiv(Cg, BLOCK_N), GROUP_M)
    rs = tl.program_id(1)
    g = tl.program_id(2) // SPLIT
    split = tl.program_id(2) % SPLIT
    r = rs // S
    s = rs % S
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
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


@triton.jit
def _gemm_persistent(
    a, b, c, bias, M, N, K, SPLIT, sam, sak, sbk, sbn, scs, scm, scn,
    HAS_BIAS: tl.constexpr,
    PRECISION: tl.constexpr, FMA: tl.constexpr, UPCAST: tl.constexpr, ACC: tl.constexpr,
    GROUP_M: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    A_T: tl.constexpr, B_T: tl.constexpr,
):
    """``_gemm`` with ``TMA``: the grid's programs take (split, tile) units in turn, tiles in
    grouped order, and read operand tiles through tensor descriptors. ``A_T``/``B_T``: the
    operand is stored transposed (its reduction axis has the unit stride), so the
    descriptor spans the stored matrix and each loaded tile is transposed in registers.
    Slices of the reduction are whole BLOCK_K blocks, so a load never reads into the next
    slice; past the matrix's edge a descriptor reads zeros.
    """
    if A_T:
        a_desc = tl.make_tensor_descriptor(a, shape=[K, M], strides=[sak, 1], block_shape=[BLOCK_K, BLOCK_M])
    else:
        a_desc = tl.make_tensor_descriptor(a, shape=[M, K], strides=[sam, 1], block_shape=[BLOCK_M, BLOCK_K])
    if B_T:
        b_desc = tl.make_tensor_descriptor(b, shape=[N, K], strides=[sbn, 1], block_shape=[BLOCK_N, BLOCK_K])
    else:
        b_desc = tl.make_tensor_descriptor(b, shape=[K, N], strides=[sbk, 1], block_shape=[BLOCK_K, BLOCK_N])
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    tiles = num_m * num_n
    per_split = tl.cdiv(tl.cdiv(K, SPLIT), BLOCK_K) * BLOCK_K
    for unit in range(tl.program_id(0), tiles * SPLIT, tl.num_programs(0)):
        split = unit // tiles
        pid_m, pid_n = _tile_coords(unit % tiles, num_m, num_n, GROUP_M)
        m0 = pid_m * BLOCK_M
        n0 = pid_n * BLOCK_N
        k_lo = split * per_split
        k_hi = tl.minimum(k_lo + per_split, K)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
        for k0 in range(k_lo, k_hi, BLOCK_K):
            if A_T:
                x = a_desc.load([k0, m0]).T
            else:
                x = a_desc.load([m0, k0])
            if B_T:
                y = b_desc.load([n0, k0]).T
            else:
                y = b_desc.load([k0, n0])
            acc = _mma(x, y, acc, PRECISION, FMA, UPCAST, ACC)
        offs_m = m0 + tl.arange(0, BLOCK_M)
        offs_n = n0 + tl.arange(0, BLOCK_N)
        n_ok = offs_n < N
        if HAS_BIAS:
            acc += tl.load(bias + offs_n, mask=n_ok, other=0.0).to(ACC)[None, :]
        out = c + split.to(tl.int64) * scs + offs_m.to(tl.int64)[:, None] * scm
        out += offs_n.to(tl.int64)[None, :] * scn
        tl.store(out, acc.to(c.dtype.element_ty), mask=(offs_m < M)[:, None] & n_ok[None, :])


def _gemm(
    a, b, c, bias,
    M, N, K, SPLIT, sam, sak, sbk, sbn, scs, scm, scn,
    HAS_BIAS: tl.constexpr,
    PRECISION: tl.constexpr, FMA: tl.constexpr, UPCAST: tl.constexpr, ACC: tl.constexpr,
    GROUP_M: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    TMA: tl.constexpr = False, A_T: tl.constexpr = False, B_T: tl.constexpr = False,
):
    """``c[split] = a[:, ks] @ b[ks, :]`` (+ ``bias``) for the reduction slice ``ks`` of
    split program_id(1): a plain GEMM for pointwise (1x1, stride 1, unpadded, ungrouped)
    convolutions, whose pixels are the rows of channels-last tensors. No pixel index
    arithmetic and no padding masks; tile program_id(0) in grouped order. With ``TMA``,
    the persistent tensor-descriptor variant (``_gemm_persistent``) runs instead.
    """
    if TMA:
        _gemm_persistent(a, b, c, bias, M, N, K, SPLIT, sam, sak, sbk, sbn, scs, scm, scn, HAS_BIAS,
                         PRECISION, FMA, UPCAST, ACC, GROUP_M, BLOCK_M, BLOCK_N, BLOCK_K, A_T, B_T)
        return
    pid_m, pid_n = _tile_coords(tl.program_id(0), tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N), GROUP_M)
    split = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = offs_m < M
    n_ok = offs_n < N
    a_rows = a + offs_m.to(tl.int64)[:, None] * sam
    b_cols = b + offs_n.to(tl.int64)[None, :] * sbn
    per_split = tl.cdiv(tl.cdiv(K, SPLIT), BLOCK_K) * BLOCK_K
    k_lo = split * per_split
    k_hi = tl.minimum(k_lo + per_split, K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for k0 in range(k_lo, k_hi, BLOCK_K):
        kk = (k0 + tl.arange(0, BLOCK_K)).to(tl.int64)
        k_ok = kk < k_hi
        x = tl.load(a_rows + kk[None, :] * sak, mask=m_ok[:, None] & k_ok[None, :], other=0.0)
        y = tl.load(b_cols + kk[:, None] * sbk, mask=k_ok[:, None] & n_ok[None, :], other=0.0)
        acc = _mma(x, y, acc, PRECISION, FMA, UPCAST, ACC)
    if HAS_BIAS:
        acc += tl.load(bias + offs_n, mask=n_ok, other=0.0).to(ACC)[None, :]
    out = c + split.to(tl.int64) * scs + offs_m.to(tl.int64)[:, None] * scm
    out += offs_n.to(tl.int64)[None, :] * scn
    tl.store(out, acc.to(c.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


def _sum_splits(ws, out, NUMEL, SPLIT, BLOCK: tl.constexpr):
    """``out = ws[0] + ws[1] + ... + ws[SPLIT-1]``, added in that order, then cast to out's
    dtype: the split-K partials reduce to the same bits on every run (no atomics)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < NUMEL
    src = ws + offs
    acc = tl.load(src, mask=ok, other=0.0)
    for _ in range(1, SPLIT):
        src += NUMEL
        acc += tl.load(src, mask=ok, other=0.0)
    tl.store(out + offs, acc.to(out.dtype.element_ty), mask=ok)


KERNELS: dict[str, Callable[..., None]] = {
    "forward": _conv_fwd,
    "backward_input": _conv_bwd_input,
    "backward_weight": _conv_bwd_weight,
    "gemm": _gemm,
    "sum_splits": _sum_splits,
}

#: Arguments the autotuner keys on: the problem shape, plus per kernel the output layout
#: (its channel stride), the split-K factor or the operands' strides (triton adds the
#: tensor dtypes itself).
_SHAPE_KEY = ["N", "C", "H", "W", "K", "R", "S", "sh", "sw", "pt", "pl", "dh", "dw", "Cg", "Kg"]
TUNING_KEYS = {
    "forward": _SHAPE_KEY + ["syk"],
    "backward_input": _SHAPE_KEY + ["sxc"],
    "backward_weight": _SHAPE_KEY + ["SPLIT"],
    "gemm": ["M", "N", "K", "SPLIT", "sam", "sak", "sbk", "sbn", "scm"],
}

#: Candidate tiles on a GPU: tensor-core shapes for fp16/bf16/fp32 (BLOCK_K 64 with 3-4
#: stages and 8 warps suit Hopper), small FMA tiles for fp64. Tiles whose pipeline would
#: not fit in shared memory for the dtype are pruned before timing.
GPU_TILES: dict[bool, list[Tile]] = {
    False: [
        Tile(128, 256, 64, 8, 3),
        Tile(256, 128, 64, 8, 3),
        Tile(128, 128, 64, 8, 4),
        Tile(128, 128, 64, 8, 3),
        Tile(128, 128, 32, 8, 4),
        Tile(256, 64, 64, 8, 3),  # 64 output channels (ResNet stage 2): whole-K tiles
        Tile(128, 64, 64, 4, 4),
        Tile(64, 128, 64, 4, 4),
        Tile(128, 64, 32, 4, 4),
        Tile(64, 64, 64, 4, 3),
        Tile(64, 32, 32, 4, 4),
    ],
    True: [FMA_TILE, Tile(64, 32, 8, 4, 2), Tile(32, 64, 8, 4, 2)],
}
#: Extra candidates of the plain GEMM kernel on Hopper: persistent, TMA loads (the shapes
#: of triton's persistent matmul tutorial). Pruned where the GPU or the operands cannot.
#: None before triton 3.4 (no ``tl.make_tensor_descriptor``).
TMA_TILES = [Tile(128, 256, 64, 8, 3, tma=True), Tile(128, 128, 64, 8, 4, tma=True),
             Tile(128, 64, 64, 4, 4, tma=True)] if hasattr(tl, "make_tensor_descriptor") else []


def candidates(kind: str, fma: bool) -> list[Tile]:
    """The tiles the autotuner times for kernel ``kind``."""
    return GPU_TILES[fma] + (TMA_TILES if kind == "gemm" and not fma else [])
#: Tile rows swept together in grouped order (see ``_tile_coords``).
GROUP_M = 8


def interpreting() -> bool:
    """Whether this process's triton runs on the interpreter.

    Triton decides once, when ``triton`` is first imported, from ``TRITON_INTERPRET``: its
    own library functions (``tl.zeros``, ``tl.cdiv``) are built interpreted or compiled
    then, and a kernel must match them. Setting the variable later changes nothing.
    """
    from triton.runtime.jit import JITFunction

    return not isinstance(tl.zeros, JITFunction)


# -- choosing tiles and launching --------------------------------------------------------

_JITTED: dict[tuple[str, bool], Any] = {}
_TUNERS: dict[tuple[str, bool], Any] = {}
_TUNED: dict[tuple[Any, ...], Tile] = {}
#: Launches so far per (kernel, tile source): which path each took (see ``tuning``).
LAUNCHES: Counter[tuple[str, str]] = Counter()
#: The tile of each kernel's latest launch, and where it came from.
LAST: dict[str, str] = {}
_CHOSEN: dict[str, dict[str, str]] = {}


#: Constexpr arguments only the persistent TMA GEMM reads (which operand is stored
#: transposed): a launch without TMA leaves them at their defaults, so the plain GEMM is
#: built once for every operand layout instead of once per layout.
TMA_ONLY_ARGS = ("A_T", "B_T")
#: Kernel arguments that are tensors (pointers); every other non-constexpr one is an int.
POINTER_ARGS = frozenset({"x", "w", "bias", "y", "dy", "dx", "ws", "a", "b", "c", "out"})


def int_args(kind: str) -> list[str]:
    """The integer (shape and stride) arguments of kernel ``kind``."""
    params = inspect.signature(KERNELS[kind]).parameters.values()
    return [p.name for p in params if p.name not in POINTER_ARGS and "constexpr" not in str(p.annotation)]


def jitted(kind: str, generic: bool = False) -> Any:
    """Kernel ``kind`` built for this process: compiled, or interpreted (CPU tensors).

    ``generic``: compiled without triton's specialisation of integer arguments (equal to
    1, multiples of 16), so that one binary serves every shape. Tiny (launch-bound)
    problems lose nothing by it, and a certification over hundreds of tiny shapes compiles
    each kernel a few times instead of once per shape class.
    """
    key = (kind, generic and not interpreting())
    if key not in _JITTED:
        fn = KERNELS[kind]
        if interpreting():
            from triton.runtime.interpreter import InterpretedFunction

            _JITTED[key] = InterpretedFunction(fn)
        else:
            from triton.runtime.jit import JITFunction

            _JITTED[key] = JITFunction(fn, do_not_specialize=int_args(kind) if generic else None)
    return _JITTED[key]


def gemm_tma_ready(args: dict[str, Any]) -> bool:
    """Whether the GEMM kernel's operands (its named arguments) can be read through tensor
    descriptors on their GPU (see ``tuning.tma_ready``)."""
    a, b = args["a"], args["b"]
    if a.device.type != "cuda":
        return False
    operands = [(t.data_ptr(), (args[rows], args[cols]), t.element_size())
                for t, rows, cols in ((a, "sam", "sak"), (b, "sbk", "sbn"))]
    return tma_ready(operands, torch.cuda.get_device_capability(a.device))


def _prune(configs: list[Any], named_args: dict[str, Any], **_: Any) -> list[Any]:
    """Drop tiles whose pipeline needs more shared memory than the GPU has, and TMA tiles
    where the GPU or the operands cannot take tensor descriptors."""
    itemsize = next(v.element_size() for v in named_args.values() if isinstance(v, torch.Tensor))
    tiles = [Tile.from_config(c) for c in configs]
    tma = any(t.tma for t in tiles) and gemm_tma_ready(named_args)
    kept = [c for c, t in zip(configs, tiles, strict=True) if fits(t, itemsize) and (tma or not t.tma)]
    return kept or configs[-1:]


def tuner(kind: str, fma: bool) -> Any:
    """triton's autotuner over :func:`candidates` for kernel ``kind`` (compiled mode only)."""
    if (kind, fma) not in _TUNERS:
        configs = [t.config() for t in candidates(kind, fma)]
        _TUNERS[kind, fma] = triton.autotune(configs, key=TUNING_KEYS[kind],
                                             prune_configs_by={"early_config_prune": _prune})(jitted(kind))
    return _TUNERS[kind, fma]


@functools.cache
def _descriptor_allocator() -> None:
    """Tensor descriptors made inside a kernel need global scratch memory, which triton
    takes from the allocator set here (torch's caching allocator), once per process."""
    def scratch(size: int, alignment: int, stream: Any) -> torch.Tensor:
        return torch.empty(size, dtype=torch.int8, device="cuda")

    triton.set_allocator(scratch)


def _layout(t: torch.Tensor) -> str:
    if t.is_contiguous():
        return "contiguous"
    channels_last = t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
    return "channels_last" if channels_last else "strided"


def cache_key(kind: str, fma: bool, shape: Sequence[int], tensors: Sequence[torch.Tensor],
              precision: str) -> dict[str, Any]:
    """What an autotuned tile depends on: kernel, shape, dtypes, layout, GPU, Triton."""
    device = tensors[0].device
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return {
        "kernel": f"{kind}/{'fma' if fma else 'dot'}",
        "shape": [int(v) for v in shape],
        "dtypes": [str(t.dtype).removeprefix("torch.") for t in tensors],
        "layout": [_layout(t) for t in tensors],
        "precision": precision,
        "gpu": gpu,
        "triton": triton.__version__,
        "candidates": [str(t) for t in candidates(kind, fma)],
    }


def _launch(kind: str, grid: Callable[[dict[str, Any]], tuple[int, ...]], args: Sequence[Any],
            meta: dict[str, Any], gemm: tuple[int, int, int], count: int, shape: Sequence[int],
            tensors: Sequence[torch.Tensor], forced: Tile | None = None, tma_ok: bool = False) -> None:
    """Launch ``kind`` with the tile :func:`tuning.choose` picks (or ``forced``) for
    a GEMM of ``gemm`` = (M, N, K) sizes, ``count`` of them (groups, taps); ``shape`` and
    ``tensors`` key the tuning cache. A remembered persistent-TMA tile runs without TMA
    unless ``tma_ok`` (the key holds strides, not the operands' address alignment)."""
    fma = bool(meta["FMA"])
    memo = (kind, fma, tuple(shape), *(t.dtype for t in tensors), *(t.stride() for t in tensors),
            meta["PRECISION"], tensors[0].device)

    def lookup() -> Tile | None:
        if memo not in _TUNED:
            found = TileCache().get(cache_key(kind, fma, shape, tensors, meta["PRECISION"]))
            if found is None:
                return None
            _TUNED[memo] = found
        return _TUNED[memo]

    m, n, k = gemm
    source, tile = ("forced", forced) if forced else choose(m, n, k * count, fma, interpreting(), lookup)
    if tile is not None and tile.tma and not tma_ok and source != "forced":
        tile = dataclasses.replace(tile, tma=False)
    if tile is not None and not tile.tma:  # arguments only TMA reads: defaults, one plain build
        meta = {k: v for k, v in meta.items() if k not in TMA_ONLY_ARGS}
    if tile is None:
        tuned = tuner(kind, fma)
        tuned[grid](*args, **meta)
        tile = _TUNED[memo] = Tile.from_config(tuned.best_config)
        _save(cache_key(kind, fma, shape, tensors, meta["PRECISION"]), tile)
    else:
        generic = source == "heuristic" and 2 * m * n * k * count < TINY_FLOPS
        jitted(kind, generic=generic)[grid](*args, **meta, **tile.meta())
    LAUNCHES[kind, source] += 1
    LAST[kind] = f"{tile} ({source})"
    if source in ("interpreter", "heuristic", "forced"):  # few tiles, many shapes: one entry per tile
        _CHOSEN.setdefault(f"{kind}/{'fma' if fma else 'dot'}", {})[str(tile)] = source
    else:
        label = f"M={m} N={n} K={k}x{count} {str(tensors[0].dtype).removeprefix('torch.')}"
        _CHOSEN.setdefault(f"{kind}/{'fma' if fma else 'dot'}", {})[label] = f"{tile} ({source})"


def _save(key: dict[str, Any], tile: Tile) -> None:
    """Keep an autotuned tile for later processes; an unwritable cache costs only time."""
    try:
        TileCache().put(key, tile)
    except OSError as exc:
        warnings.warn(f"triton tile cache {TileCache().folder}: not written ({exc})", stacklevel=3)


def chosen_configs() -> dict[str, dict[str, str]]:
    """Per kernel launched so far: the tile autotuning chose (or the disk cache held) per
    GEMM shape and dtype, and each heuristic (size-based) or interpreter tile that ran."""
    return {kind: dict(entries) for kind, entries in _CHOSEN.items()}


# -- launching ---------------------------------------------------------------------------

ACC_DTYPE = {torch.float64: tl.float64}  # every other dtype accumulates in float32


def _common(dtype: torch.dtype, device: torch.device, tf32: bool) -> dict[str, Any]:
    if device.type == "cpu" and not interpreting():
        raise RuntimeError(
            "CPU tensors run on the Triton interpreter only: set TRITON_INTERPRET=1 in the "
            "environment before triton is first imported (torch._dynamo imports it too)"
        )
    return {
        "PRECISION": "tf32" if (tf32 and dtype == torch.float32) else "ieee",
        "FMA": dtype == torch.float64,
        "UPCAST": dtype == torch.bfloat16 and interpreting(),
        "ACC": ACC_DTYPE.get(dtype, tl.float32),
        "GROUP_M": GROUP_M,
    }


def _geometry(x_shape, w_shape, out_hw, stride, padding, dilation, groups) -> tuple[int, ...]:
    n, c, h, w = x_shape
    k, _, r, s = w_shape
    # Cg and Kg are arguments (not C // groups in the kernel) so that triton can see when
    # they are multiples of 16 and keep the channel offsets aligned for vector loads.
    return (n, c, h, w, k, r, s, *out_hw, stride[0], stride[1], padding[0], padding[2],
            dilation[0], dilation[1], c // groups, k // groups)


def pointwise(w_shape: Sequence[int], stride: Sequence[int], padding: Sequence[int], groups: int) -> bool:
    """Whether a convolution is a plain GEMM over channels-last pixel rows: a 1x1 kernel
    (its dilation then changes nothing), stride 1, no padding, one group."""
    return tuple(w_shape[2:]) == (1, 1) and tuple(stride) == (1, 1) and not any(padding) and groups == 1


def _rows(t: torch.Tensor) -> torch.Tensor:
    """The (N*H*W, C) matrix of a 4-D tensor's pixels: a view when channels-last."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def _as_rows_out(t: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A rows matrix to write ``t``'s values into, and whether it is ``t``'s own memory."""
    rows = t.permute(0, 2, 3, 1)
    if rows.is_contiguous():
        return rows.view(-1, t.shape[1]), True
    pixels = rows.shape[0] * rows.shape[1] * rows.shape[2]
    return torch.empty((pixels, t.shape[1]), dtype=t.dtype, device=t.device), False


def gemm(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, bias: torch.Tensor | None, meta: dict[str, Any],
         split: int = 1, tile: Tile | None = None) -> None:
    """``c = a @ b (+ bias)`` for 2-D a (M, K), b (K, N); with ``split`` > 1, c is a
    (split, M, N) workspace that gets one partial product per slice of K. ``tile`` forces
    a tile (tests) instead of :func:`tuning.choose`'s."""
    m, k = a.shape
    n = b.shape[1]
    c3 = c if c.dim() == 3 else c.unsqueeze(0)
    programs = torch.cuda.get_device_properties(a.device).multi_processor_count if a.is_cuda else 4

    def grid(cfg: dict[str, Any]) -> tuple[int, int]:
        tiles = triton.cdiv(m, cfg["BLOCK_M"]) * triton.cdiv(n, cfg["BLOCK_N"])
        if cfg.get("TMA"):  # persistent: at most one program per SM, each walking its units
            return min(programs, tiles * split), 1
        return tiles, split

    strides = (*a.stride(), *b.stride(), *c3.stride())
    args = (a, b, c3, bias if bias is not None else c3, m, n, k, split, *strides)
    # which operand is stored transposed (reduction axis contiguous): read by TMA tiles only
    layout = {"A_T": a.stride(1) != 1, "B_T": b.stride(1) != 1}
    tma_ok = gemm_tma_ready({"a": a, "b": b, "sam": strides[0], "sak": strides[1], "sbk": strides[2],
                             "sbn": strides[3]})
    if tma_ok:
        _descriptor_allocator()
    _launch("gemm", grid, args, {**meta, **layout, "HAS_BIAS": bias is not None}, (m, n, k), 1,
            (m, n, k, split, *strides[:-3], *strides[-2:]), (a, b), tile, tma_ok)


def _pointwise_forward(x, w, b, y, meta) -> None:
    out, own = _as_rows_out(y)
    gemm(_rows(x.contiguous(memory_format=torch.channels_last)), w[:, :, 0, 0].t(), out, b, meta)
    if not own:
        y.copy_(out.view(y.shape[0], y.shape[2], y.shape[3], y.shape[1]).permute(0, 3, 1, 2))


def forward(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, y: torch.Tensor,
    stride, padding, dilation, groups: int, tf32: bool = False, flat: bool | None = None,
) -> None:
    """Write conv2d(x, w) + b into ``y`` (shapes already validated by the caller).

    Pointwise convolutions run as a plain GEMM (see :func:`pointwise`). ``flat`` picks the
    flattened (r, s, c) reduction; by default when a group has fewer than 16 input
    channels (the smallest reduction tile). Passing ``flat`` forces the implicit GEMM.
    """
    meta = _common(x.dtype, x.device, tf32)
    if flat is None and pointwise(w.shape, stride, padding, groups):
        _pointwise_forward(x, w, b, y, meta)
        return
    geo = _geometry(x.shape, w.shape, y.shape[2:], stride, padding, dilation, groups)
    m = y.shape[0] * y.shape[2] * y.shape[3]
    kg = w.shape[0] // groups

    def grid(cfg: dict[str, int]) -> tuple[int, int, int]:
        return triton.cdiv(m, cfg["BLOCK_M"]) * triton.cdiv(kg, cfg["BLOCK_N"]), 1, groups

    args = (x, w, b if b is not None else y, y, *geo, *x.stride(), *w.stride(), *y.stride())
    meta.update(HAS_BIAS=b is not None, FLAT=w.shape[1] < 16 if flat is None else flat)
    _launch("forward", grid, args, meta, (m, kg, w.shape[1] * w.shape[2] * w.shape[3]), groups,
            (*geo, y.stride(1)), (x, w, y))


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
    stride, padding, dilation, groups: int, tf32: bool = False, gemm_path: bool = True,
) -> None:
    """Write the input gradient into ``dx``: a plain GEMM for pointwise convolutions
    (unless ``gemm_path`` is False), else one implicit-GEMM launch per (row, column)
    stride phase."""
    meta = _common(dy.dtype, dy.device, tf32)
    if gemm_path and pointwise(w.shape, stride, padding, groups):
        out, own = _as_rows_out(dx)
        gemm(_rows(dy.contiguous(memory_format=torch.channels_last)), w[:, :, 0, 0], out, None, meta)
        if not own:
            dx.copy_(out.view(dx.shape[0], dx.shape[2], dx.shape[3], dx.shape[1]).permute(0, 3, 1, 2))
        return
    geo = _geometry(dx.shape, w.shape, dy.shape[2:], stride, padding, dilation, groups)
    n, _, h, w_ = dx.shape
    _, cg, r, s = w.shape
    kg = w.shape[0] // groups
    rows = stride_phases(h, padding[0], r, stride[0], dilation[0])
    cols = stride_phases(w_, padding[2], s, stride[1], dilation[1])
    for row in rows:
        for col in cols:
            m = n * row[1] * col[1]

            def grid(cfg: dict[str, int], m: int = m) -> tuple[int, int, int]:
                return triton.cdiv(m, cfg["BLOCK_M"]) * triton.cdiv(cg, cfg["BLOCK_N"]), 1, groups

            args = (dy, w, dx, *geo, *row, *col, *dy.stride(), *w.stride(), *dx.stride())
            _launch("backward_input", grid, args, dict(meta), (m, cg, kg * max(1, row[4] * col[4])), groups,
                    (*geo, *row, *col, dx.stride(1)), (dy, w, dx))


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


def sum_splits(ws: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out`` = the sum of ``ws`` over its first dimension, in index order, cast to out's
    dtype in the same pass (deterministic: no atomics, one fixed order)."""
    numel = out.numel()
    if ws.shape[1:] != out.shape or not ws.is_contiguous() or not out.is_contiguous():
        raise ValueError(f"ws.shape={tuple(ws.shape)}: must be contiguous (split, *{tuple(out.shape)}) "
                         "over a contiguous out")
    block = 1024

    def grid(cfg: dict[str, Any]) -> tuple[int]:
        return (triton.cdiv(numel, block),)

    jitted("sum_splits")[grid](ws, out, numel, ws.shape[0], BLOCK=block)
    return out


def backward_weight(
    dy: torch.Tensor, x: torch.Tensor, w_shape, stride, padding, dilation, groups: int,
    tf32: bool = False, split: int | None = None, gemm_path: bool = True,
) -> torch.Tensor:
    """The weight gradient, shape ``w_shape``, in dy's dtype, reduced in float32 (float64
    for float64): split-K partials in a float32 workspace, summed by :func:`sum_splits`;
    unsplit, the kernel writes dw directly."""
    meta = _common(dy.dtype, dy.device, tf32)
    k, cg, r, s = w_shape
    pixels = dy.shape[0] * dy.shape[2] * dy.shape[3]
    split = split or split_for(w_shape, pixels, groups, dy.device)
    acc_dtype = torch.float64 if dy.dtype == torch.float64 else torch.float32
    dw = torch.empty(tuple(w_shape), dtype=dy.dtype, device=dy.device)
    ws = dw.unsqueeze(0) if split == 1 else dw.new_empty((split, k, cg, r, s), dtype=acc_dtype)
    if gemm_path and pointwise(w_shape, stride, padding, groups):
        dy_rows = _rows(dy.contiguous(memory_format=torch.channels_last))
        x_rows = _rows(x.contiguous(memory_format=torch.channels_last))
        gemm(dy_rows.t(), x_rows, ws.view(split, k, cg), None, meta, split)
    else:
        geo = _geometry(x.shape, w_shape, dy.shape[2:], stride, padding, dilation, groups)

        def grid(cfg: dict[str, int]) -> tuple[int, int, int]:
            tiles = triton.cdiv(k // groups, cfg["BLOCK_M"]) * triton.cdiv(cg, cfg["BLOCK_N"])
            return tiles, r * s, groups * split

        args = (dy, x, ws, *geo, split, *dy.stride(), *x.stride())
        gemm_sizes = (k // groups, cg, -(-pixels // split))
        count = r * s * groups * split
        _launch("backward_weight", grid, args, meta, gemm_sizes, count, (*geo, split), (dy, x))
    return dw if split == 1 else sum_splits(ws, dw)
