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
and cached on disk for large ones) is ``tuning``'s decision; ``launch`` runs the kernels.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import triton
import triton.language as tl


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

#: Tile rows swept together in grouped order (see ``_tile_coords``).
GROUP_M = 8


# -- building the kernels ----------------------------------------------------------------

def interpreting() -> bool:
    """Whether this process's triton runs on the interpreter.

    Triton decides once, when ``triton`` is first imported, from ``TRITON_INTERPRET``: its
    own library functions (``tl.zeros``, ``tl.cdiv``) are built interpreted or compiled
    then, and a kernel must match them. Setting the variable later changes nothing.
    """
    from triton.runtime.jit import JITFunction

    return not isinstance(tl.zeros, JITFunction)


_JITTED: dict[tuple[str, bool], Any] = {}
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
