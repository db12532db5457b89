"""Launching the Triton convolution kernels: arguments, grids, the tile each launch uses.

``forward``, ``backward_input`` and ``backward_weight`` take tensors whose shapes the caller
(``ops``) has validated and a :class:`ConvArgs`; pointwise convolutions run as the plain
GEMM over channels-last pixel rows (``gemm``), the others as implicit GEMMs (``kernels``).
Every launch goes through :func:`_launch`, which takes its tile from ``tuning`` (or runs
triton's autotuner once) and records which tile ran and why (:data:`LAUNCHES`,
:func:`chosen_configs`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import triton
import triton.language as tl

from .kernels import GROUP_M, interpreting, jitted
from .tuning import TINY_FLOPS, Tile, TileCache, cache_key, choose, gemm_tma_ready, tuner


@dataclass(frozen=True)
class ConvArgs:
    """A convolution's options as the operators take them: ``stride`` and ``dilation`` as
    (h, w), ``padding`` as (top, bottom, left, right), and ``groups``."""

    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    @classmethod
    def of(cls, stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
           groups: int) -> ConvArgs:
        return cls(tuple(stride), tuple(padding), tuple(dilation), groups)


@dataclass(frozen=True)
class LaunchShape:
    """What decides a launch's tile: a GEMM of ``gemm`` = (M, N, K) sizes, run ``count``
    times (groups, taps, splits); ``shape`` and ``tensors`` key the tuning cache."""

    gemm: tuple[int, int, int]
    count: int
    shape: tuple[int, ...]
    tensors: tuple[torch.Tensor, ...]


# -- choosing tiles and launching --------------------------------------------------------

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


@functools.cache
def _descriptor_allocator() -> None:
    """Tensor descriptors made inside a kernel need global scratch memory, which triton
    takes from the allocator set here (torch's caching allocator), once per process."""
    def scratch(size: int, alignment: int, stream: Any) -> torch.Tensor:
        return torch.empty(size, dtype=torch.int8, device="cuda")

    triton.set_allocator(scratch)


def _launch(kind: str, grid: Callable[[dict[str, Any]], tuple[int, ...]], args: Sequence[Any],
            meta: dict[str, Any], problem: LaunchShape, forced: Tile | None = None,
            tma_ok: bool = False) -> None:
    """Launch ``kind`` with the tile :func:`tuning.choose` picks for ``problem`` (or
    ``forced``). A remembered persistent-TMA tile runs without TMA unless ``tma_ok`` (the
    key holds strides, not the operands' address alignment)."""
    fma = bool(meta["FMA"])
    shape, tensors = problem.shape, problem.tensors
    memo = (kind, fma, tuple(shape), *(t.dtype for t in tensors), *(t.stride() for t in tensors),
            meta["PRECISION"], tensors[0].device)

    def lookup() -> Tile | None:
        if memo not in _TUNED:
            found = TileCache().get(cache_key(kind, fma, shape, tensors, meta["PRECISION"]))
            if found is None:
                return None
            _TUNED[memo] = found
        return _TUNED[memo]

    (m, n, k), count = problem.gemm, problem.count
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


def _geometry(x_shape, w_shape, out_hw, conv: ConvArgs) -> tuple[int, ...]:
    n, c, h, w = x_shape
    k, _, r, s = w_shape
    stride, padding, dilation, groups = conv.stride, conv.padding, conv.dilation, conv.groups
    # Cg and Kg are arguments (not C // groups in the kernel) so that triton can see when
    # they are multiples of 16 and keep the channel offsets aligned for vector loads.
    return (n, c, h, w, k, r, s, *out_hw, stride[0], stride[1], padding[0], padding[2],
            dilation[0], dilation[1], c // groups, k // groups)


def pointwise(w_shape: Sequence[int], conv: ConvArgs) -> bool:
    """Whether a convolution is a plain GEMM over channels-last pixel rows: a 1x1 kernel
    (its dilation then changes nothing), stride 1, no padding, one group."""
    return (tuple(w_shape[2:]) == (1, 1) and tuple(conv.stride) == (1, 1) and not any(conv.padding)
            and conv.groups == 1)


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
    problem = LaunchShape((m, n, k), 1, (m, n, k, split, *strides[:-3], *strides[-2:]), (a, b))
    _launch("gemm", grid, args, {**meta, **layout, "HAS_BIAS": bias is not None}, problem, tile, tma_ok)


def _pointwise_forward(x, w, b, y, meta) -> None:
    out, own = _as_rows_out(y)
    gemm(_rows(x.contiguous(memory_format=torch.channels_last)), w[:, :, 0, 0].t(), out, b, meta)
    if not own:
        y.copy_(out.view(y.shape[0], y.shape[2], y.shape[3], y.shape[1]).permute(0, 3, 1, 2))


def forward(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, y: torch.Tensor, conv: ConvArgs,
    tf32: bool = False, flat: bool | None = None,
) -> None:
    """Write conv2d(x, w) + b into ``y`` (shapes already validated by the caller).

    Pointwise convolutions run as a plain GEMM (see :func:`pointwise`). ``flat`` picks the
    flattened (r, s, c) reduction; by default when a group has fewer than 16 input
    channels (the smallest reduction tile). Passing ``flat`` forces the implicit GEMM.
    """
    meta = _common(x.dtype, x.device, tf32)
    if flat is None and pointwise(w.shape, conv):
        _pointwise_forward(x, w, b, y, meta)
        return
    geo = _geometry(x.shape, w.shape, y.shape[2:], conv)
    m = y.shape[0] * y.shape[2] * y.shape[3]
    groups = conv.groups
    kg = w.shape[0] // groups

    def grid(cfg: dict[str, int]) -> tuple[int, int, int]:
        return triton.cdiv(m, cfg["BLOCK_M"]) * triton.cdiv(kg, cfg["BLOCK_N"]), 1, groups

    args = (x, w, b if b is not None else y, y, *geo, *x.stride(), *w.stride(), *y.stride())
    meta.update(HAS_BIAS=b is not None, FLAT=w.shape[1] < 16 if flat is None else flat)
    problem = LaunchShape((m, kg, w.shape[1] * w.shape[2] * w.shape[3]), groups, (*geo, y.stride(1)),
                          (x, w, y))
    _launch("forward", grid, args, meta, problem)


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
    dy: torch.Tensor, w: torch.Tensor, dx: torch.Tensor, conv: ConvArgs,
    tf32: bool = False, gemm_path: bool = True,
) -> None:
    """Write the input gradient into ``dx``: a plain GEMM for pointwise convolutions
    (unless ``gemm_path`` is False), else one implicit-GEMM launch per (row, column)
    stride phase."""
    meta = _common(dy.dtype, dy.device, tf32)
    if gemm_path and pointwise(w.shape, conv):
        out, own = _as_rows_out(dx)
        gemm(_rows(dy.contiguous(memory_format=torch.channels_last)), w[:, :, 0, 0], out, None, meta)
        if not own:
            dx.copy_(out.view(dx.shape[0], dx.shape[2], dx.shape[3], dx.shape[1]).permute(0, 3, 1, 2))
        return
    geo = _geometry(dx.shape, w.shape, dy.shape[2:], conv)
    n, _, h, w_ = dx.shape
    _, cg, r, s = w.shape
    stride, padding, dilation, groups = conv.stride, conv.padding, conv.dilation, conv.groups
    kg = w.shape[0] // groups
    rows = stride_phases(h, padding[0], r, stride[0], dilation[0])
    cols = stride_phases(w_, padding[2], s, stride[1], dilation[1])
    for row in rows:
        for col in cols:
            m = n * row[1] * col[1]

            def grid(cfg: dict[str, int], m: int = m) -> tuple[int, int, int]:
                return triton.cdiv(m, cfg["BLOCK_M"]) * triton.cdiv(cg, cfg["BLOCK_N"]), 1, groups

            args = (dy, w, dx, *geo, *row, *col, *dy.stride(), *w.stride(), *dx.stride())
            problem = LaunchShape((m, cg, kg * max(1, row[4] * col[4])), groups,
                                  (*geo, *row, *col, dx.stride(1)), (dy, w, dx))
            _launch("backward_input", grid, args, dict(meta), problem)


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
    dy: torch.Tensor, x: torch.Tensor, w_shape, conv: ConvArgs,
    tf32: bool = False, split: int | None = None, gemm_path: bool = True,
) -> torch.Tensor:
    """The weight gradient, shape ``w_shape``, in dy's dtype, reduced in float32 (float64
    for float64): split-K partials in a float32 workspace, summed by :func:`sum_splits`;
    unsplit, the kernel writes dw directly."""
    meta = _common(dy.dtype, dy.device, tf32)
    k, cg, r, s = w_shape
    groups = conv.groups
    pixels = dy.shape[0] * dy.shape[2] * dy.shape[3]
    split = split or split_for(w_shape, pixels, groups, dy.device)
    acc_dtype = torch.float64 if dy.dtype == torch.float64 else torch.float32
    dw = torch.empty(tuple(w_shape), dtype=dy.dtype, device=dy.device)
    ws = dw.unsqueeze(0) if split == 1 else dw.new_empty((split, k, cg, r, s), dtype=acc_dtype)
    if gemm_path and pointwise(w_shape, conv):
        dy_rows = _rows(dy.contiguous(memory_format=torch.channels_last))
        x_rows = _rows(x.contiguous(memory_format=torch.channels_last))
        gemm(dy_rows.t(), x_rows, ws.view(split, k, cg), None, meta, split)
    else:
        geo = _geometry(x.shape, w_shape, dy.shape[2:], conv)

        def grid(cfg: dict[str, int]) -> tuple[int, int, int]:
            tiles = triton.cdiv(k // groups, cfg["BLOCK_M"]) * triton.cdiv(cg, cfg["BLOCK_N"])
            return tiles, r * s, groups * split

        args = (dy, x, ws, *geo, split, *dy.stride(), *x.stride())
        gemm_sizes = (k // groups, cg, -(-pixels // split))
        problem = LaunchShape(gemm_sizes, r * s * groups * split, (*geo, split), (dy, x))
        _launch("backward_weight", grid, args, meta, problem)
    return dw if split == 1 else sum_splits(ws, dw)
