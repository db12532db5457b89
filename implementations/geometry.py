"""The one place that decides 2-D convolution and pooling geometry.

Every padding spec is resolved here, once, into explicit ``((top, bottom), (left, right))``
pairs; output sizes and input validation live here too. Implementations, the conformance
suite and the benchmarks all read :class:`ConvParams` / :class:`PoolParams` and never
recompute a shape by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dtypes import DTYPES, dtype_name

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]
PaddingSpec = int | str | Sequence[int] | Sequence[Sequence[int]]

PADDING_MODES = ("valid", "same", "same_lower", "full")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _pair(name: str, value: Any, *, minimum: int) -> Pair:
    """An int or a pair of ints, each >= minimum, as a pair."""
    if _is_int(value):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(_is_int(v) for v in value)
    ):
        raise ValueError(f"{name}={value!r}: must be an int or a pair of ints")
    if any(v < minimum for v in value):
        raise ValueError(f"{name}={tuple(value)!r}: every entry must be >= {minimum}")
    return int(value[0]), int(value[1])


def _shape(name: str, shape: Any) -> tuple[int, int, int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"{name}={shape!r}: must be a 4-d shape (N, C, H, W)") from None
    if len(dims) != 4 or not all(_is_int(d) for d in dims):
        raise ValueError(f"{name}={dims!r}: must have 4 integer dimensions, got {len(dims)}")
    if any(d <= 0 for d in dims):
        raise ValueError(f"{name}={dims!r}: every dimension must be positive")
    return tuple(int(d) for d in dims)  # type: ignore[return-value]


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Extent of a dilated kernel: ``(k - 1) * dilation + 1``."""
    return (kernel - 1) * dilation + 1


def resolve_padding(
    padding: PaddingSpec, in_hw: Pair, eff_k: Pair, stride: Pair
) -> tuple[Padding, str]:
    """Resolve a padding spec into ``((top, bottom), (left, right))`` and its mode name.

    ``"same"`` follows TensorFlow SAME / ONNX SAME_UPPER: output = ceil(in / stride), and
    the odd pixel of the total padding goes to the bottom/right; ``"same_lower"`` puts it
    top/left; ``"full"`` pads ``eff_k - 1`` on every side.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in PADDING_MODES:
            raise ValueError(
                f"padding={padding!r}: a padding string must be one of {PADDING_MODES}"
            )
        if mode == "valid":
            return ((0, 0), (0, 0)), mode
        if mode == "full":
            return ((eff_k[0] - 1,) * 2, (eff_k[1] - 1,) * 2), mode
        pads = []
        for n, k, s in zip(in_hw, eff_k, stride, strict=True):
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if mode == "same" else (big, small))
        return (pads[0], pads[1]), mode
    if _is_int(padding) or (
        isinstance(padding, (tuple, list)) and len(padding) == 2 and all(_is_int(p) for p in padding)
    ):
        ph, pw = _pair("padding", padding, minimum=0)
        return ((ph, ph), (pw, pw)), "explicit"
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        rows, cols = padding
        if isinstance(rows, (tuple, list)) and isinstance(cols, (tuple, list)):
            top_bottom = _pair("padding", tuple(rows), minimum=0)
            left_right = _pair("padding", tuple(cols), minimum=0)
            return (top_bottom, left_right), "explicit"
    raise ValueError(
        f"padding={padding!r}: must be an int, (ph, pw), ((top, bottom), (left, right)) "
        f"or one of {PADDING_MODES}"
    )


def output_size(
    size: int, before: int, after: int, eff_k: int, stride: int, ceil_mode: bool = False
) -> int:
    """Output length along one axis.

    ``floor((in + before + after - eff_k) / stride) + 1``; with ``ceil_mode`` the division
    rounds up, but a last window that would start inside the bottom/right padding is
    dropped (the PyTorch and ONNX rule). May return <= 0; callers validate.
    """
    span = size + before + after - eff_k
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def _check_output(what: str, in_hw: Pair, padding: Padding, eff_k: Pair, out_hw: Pair) -> None:
    if min(out_hw) <= 0:
        raise ValueError(
            f"{what}: input {in_hw} padded by {padding} is smaller than the effective "
            f"kernel {eff_k}, so the output {out_hw} would be empty"
        )


@dataclass(frozen=True)
class ConvParams:
    """Resolved geometry of one 2-D convolution (cross-correlation) call, NCHW."""

    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    stride: Pair
    padding: Padding
    dilation: Pair
    groups: int
    padding_mode: str

    @classmethod
    def create(
        cls,
        x_shape: Sequence[int],
        w_shape: Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: PaddingSpec = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
    ) -> ConvParams:
        """Validate shapes and options and resolve the padding spec."""
        xs = _shape("x_shape", x_shape)
        ws = _shape("w_shape", w_shape)
        st = _pair("stride", stride, minimum=1)
        dil = _pair("dilation", dilation, minimum=1)
        if not _is_int(groups) or groups < 1:
            raise ValueError(f"groups={groups!r}: must be a positive int")
        n, c, h, w = xs
        k, cg, r, s = ws
        if c % groups:
            raise ValueError(f"groups={groups}: must divide the input channels C={c}")
        if k % groups:
            raise ValueError(f"groups={groups}: must divide the output channels K={k}")
        if cg * groups != c:
            raise ValueError(
                f"w_shape={ws}: w.shape[1]={cg} must equal C // groups = {c} // {groups}"
                f" = {c // groups}"
            )
        eff = (effective_kernel(r, dil[0]), effective_kernel(s, dil[1]))
        pad, mode = resolve_padding(padding, (h, w), eff, st)
        params = cls(xs, ws, st, pad, dil, int(groups), mode)
        _check_output("conv2d", (h, w), pad, eff, params.out_hw)
        return params

    @property
    def kernel(self) -> Pair:
        return self.w_shape[2], self.w_shape[3]

    @property
    def eff_kernel(self) -> Pair:
        return (
            effective_kernel(self.kernel[0], self.dilation[0]),
            effective_kernel(self.kernel[1], self.dilation[1]),
        )

    @property
    def out_hw(self) -> Pair:
        eff = self.eff_kernel
        return (
            output_size(self.x_shape[2], *self.padding[0], eff[0], self.stride[0]),
            output_size(self.x_shape[3], *self.padding[1], eff[1], self.stride[1]),
        )

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        return (self.x_shape[0], self.w_shape[0], *self.out_hw)

    @property
    def is_symmetric(self) -> bool:
        """True when top == bottom and left == right."""
        return all(a == b for a, b in self.padding)


@dataclass(frozen=True)
class PoolParams:
    """Resolved geometry of one 2-D pooling call, NCHW."""

    x_shape: tuple[int, int, int, int]
    kernel: Pair
    stride: Pair
    padding: Padding
    ceil_mode: bool
    count_include_pad: bool
    padding_mode: str
    dilation: Pair = (1, 1)

    @classmethod
    def create(
        cls,
        x_shape: Sequence[int],
        kernel: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: PaddingSpec = 0,
        dilation: int | Sequence[int] = 1,
        ceil_mode: bool = False,
        count_include_pad: bool = False,
    ) -> PoolParams:
        """Validate shapes and options and resolve the padding spec.

        ``stride=None`` means stride = kernel. The window is dilated like a convolution
        kernel, spanning ``(k - 1) * dilation + 1``. Each padding must be smaller than that
        span, and every window must read at least one input element (with dilation a
        window can otherwise skip over a small input entirely).
        """
        xs = _shape("x_shape", x_shape)
        ks = _pair("kernel", kernel, minimum=1)
        st = ks if stride is None else _pair("stride", stride, minimum=1)
        dil = _pair("dilation", dilation, minimum=1)
        for name, flag in (("ceil_mode", ceil_mode), ("count_include_pad", count_include_pad)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ValueError(f"{name}={flag!r}: must be a bool")
        eff = (effective_kernel(ks[0], dil[0]), effective_kernel(ks[1], dil[1]))
        pad, mode = resolve_padding(padding, xs[2:], eff, st)
        for axis, (pair, k) in enumerate(zip(pad, eff, strict=True)):
            if max(pair) >= k:
                raise ValueError(
                    f"padding={pad}: padding {pair} on axis {axis + 2} must be smaller than "
                    f"the {'dilated ' if k != ks[axis] else ''}kernel {k}, so that every "
                    "window overlaps the input"
                )
        params = cls(xs, ks, st, pad, bool(ceil_mode), bool(count_include_pad), mode, dil)
        _check_output("pool2d", xs[2:], pad, eff, params.out_hw)
        _check_windows_read_input(params)
        return params

    @property
    def eff_kernel(self) -> Pair:
        return (
            effective_kernel(self.kernel[0], self.dilation[0]),
            effective_kernel(self.kernel[1], self.dilation[1]),
        )

    @property
    def out_hw(self) -> Pair:
        eff = self.eff_kernel
        return (
            output_size(self.x_shape[2], *self.padding[0], eff[0], self.stride[0], self.ceil_mode),
            output_size(self.x_shape[3], *self.padding[1], eff[1], self.stride[1], self.ceil_mode),
        )

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        return (*self.x_shape[:2], *self.out_hw)

    @property
    def is_symmetric(self) -> bool:
        return all(a == b for a, b in self.padding)

    @property
    def padded_extent(self) -> Pair:
        """Height and width the output windows reach: input, padding and ceil_mode overhang.

        ``count_include_pad`` counts window elements inside ``input + padding`` only; the
        overhang that ``ceil_mode`` adds beyond the padding never counts.
        """
        return tuple(  # type: ignore[return-value]
            (o - 1) * s + k for o, s, k in zip(self.out_hw, self.stride, self.eff_kernel, strict=True)
        )

    @property
    def window_padding(self) -> Padding:
        """``padding`` with bottom/right grown to :attr:`padded_extent` (the ``ceil_mode``
        overhang), so that floor-mode pooling over it gives exactly ``out_hw`` windows."""
        return tuple(  # type: ignore[return-value]
            (before, max(after, extent - before - size))
            for (before, after), extent, size
            in zip(self.padding, self.padded_extent, self.x_shape[2:], strict=True)
        )


def _taps_in_range(starts: np.ndarray, kernel: int, dilation: int, lo: int, hi: int) -> np.ndarray:
    """For windows starting at ``starts`` (positions on the padded axis), how many of the
    taps ``start + j * dilation``, ``0 <= j < kernel``, fall in ``[lo, hi)``."""
    first = np.maximum(0, -((starts - lo) // dilation))  # ceil((lo - start) / dilation)
    last = np.minimum(kernel - 1, (hi - 1 - starts) // dilation)
    return np.maximum(0, last - first + 1)


def _check_windows_read_input(p: PoolParams) -> None:
    """Only a window starting in the padding can miss the input; those are checked."""
    for axis, (out, k, s, d, (before, _), size) in enumerate(
        zip(p.out_hw, p.kernel, p.stride, p.dilation, p.padding, p.x_shape[2:], strict=True)
    ):
        in_top = range(min(out, -(-before // s)))  # windows starting in the top/left padding
        in_bottom = range(max(0, -(-(before + size) // s)), out)  # ... in the bottom/right padding
        starts = np.asarray([*in_top, *in_bottom], dtype=np.int64) * s
        empty = starts[_taps_in_range(starts, k, d, before, before + size) == 0]
        if empty.size:
            raise ValueError(
                f"dilation={p.dilation}: window {int(empty[0]) // s} on axis {axis + 2} reads only padding "
                f"(input {size} padded by {p.padding[axis]}, kernel {k}, stride {s}); every window "
                "must read at least one input element"
            )


def pool_counts(p: PoolParams) -> np.ndarray:
    """``(OH, OW)`` float64: the average-pool divisor, how many elements of each window count.

    An element counts when it lies inside the input (``count_include_pad=False``) or inside
    the padded input (``count_include_pad=True``); the overhang that ``ceil_mode`` adds past
    the padding never counts (the PyTorch rule). The counting region is a rectangle, so the
    count is the product of one count per axis.
    """
    per_axis = []
    for out, k, s, d, (before, after), size in zip(
        p.out_hw, p.kernel, p.stride, p.dilation, p.padding, p.x_shape[2:], strict=True
    ):
        lo, hi = (0, before + size + after) if p.count_include_pad else (before, before + size)
        per_axis.append(_taps_in_range(np.arange(out) * s, k, d, lo, hi))
    return np.outer(per_axis[0], per_axis[1]).astype(np.float64)


def conv_flops(params: ConvParams) -> int:
    """Multiply-adds x 2 of the direct algorithm (the 'effective' FLOP count)."""
    n, k, oh, ow = params.y_shape
    _, cg, r, s = params.w_shape
    return 2 * n * k * oh * ow * cg * r * s


__all__ = [
    "ConvParams",
    "PoolParams",
    "PADDING_MODES",
    "DTYPES",
    "effective_kernel",
    "resolve_padding",
    "output_size",
    "pool_counts",
    "conv_flops",
    "dtype_name",
]
