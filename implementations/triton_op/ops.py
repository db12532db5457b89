"""The Triton convolution as PyTorch operators: ``torch.ops.convcert.*``.

Importing this module registers three operators with ``torch.library`` (once per process):

- ``torch.ops.convcert.conv2d(x, w, b, stride, padding, dilation, groups, allow_tf32=False)``
  with a fake (meta) implementation and an autograd formula, so it works inside ordinary
  PyTorch code, ``torch.autograd`` and ``torch.compile`` tracing;
- ``torch.ops.convcert.conv2d_backward_input(dy, w, x_shape, ...)`` and
  ``torch.ops.convcert.conv2d_backward_weight(dy, x, w_shape, ...)``: the gradients, each an
  implicit GEMM of its own (see ``kernels``); the autograd formula calls them.

``stride`` and ``dilation`` are ``[h, w]``; ``padding`` is ``[top, bottom, left, right]``.
CUDA tensors run the compiled kernels (tiles by size, or autotuned once and cached on disk: see
``tuning``); CPU tensors run the same kernels on the
Triton interpreter (slow: meant for CI and debugging). Double backward is not supported.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..geometry import ConvParams

_TORCH_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def _params(x_shape: Sequence[int], w_shape: Sequence[int], stride: Sequence[int],
            padding: Sequence[int], dilation: Sequence[int], groups: int) -> ConvParams:
    """Validate an operator call through the one geometry module."""
    if len(padding) != 4:
        raise ValueError(f"padding={list(padding)!r}: must be 4 ints (top, bottom, left, right)")
    top, bottom, left, right = (int(p) for p in padding)
    return ConvParams.create(
        tuple(int(d) for d in x_shape), tuple(int(d) for d in w_shape),
        stride=tuple(int(s) for s in stride), padding=((top, bottom), (left, right)),
        dilation=tuple(int(d) for d in dilation), groups=int(groups),
    )


def _check_tensors(**tensors: torch.Tensor | None) -> None:
    """Same dtype and device for every tensor given; a dtype the kernels support."""
    given = {k: t for k, t in tensors.items() if t is not None}
    first_name, first = next(iter(given.items()))
    if first.dtype not in _TORCH_DTYPES.values():
        raise ValueError(f"{first_name}.dtype={first.dtype}: must be one of {list(_TORCH_DTYPES)}")
    for name, t in given.items():
        if t.dtype != first.dtype:
            raise ValueError(f"{name}.dtype={t.dtype}: must equal {first_name}.dtype={first.dtype}")
        if t.device != first.device:
            raise ValueError(f"{name}.device={t.device}: must equal {first_name}.device={first.device}")


def _gemm_layout(t: torch.Tensor) -> torch.Tensor:
    """Channels-last on CUDA: the GEMM reduction dims (channels) become contiguous loads.

    The kernels take any strides; this is a layout choice for speed (a no-op for tensors
    that are already channels-last), skipped on the interpreter where it buys nothing.
    """
    return t.contiguous(memory_format=torch.channels_last) if t.is_cuda else t


def _like_input(shape: Sequence[int], x: torch.Tensor) -> torch.Tensor:
    """Empty output that keeps x's memory format, as torch's own convolution does."""
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)


def _register() -> None:
    from .launch import ConvArgs, backward_input, backward_weight, forward

    lib = "convcert"

    @torch.library.custom_op(f"{lib}::conv2d", mutates_args=())
    def conv2d(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride: Sequence[int],
               padding: Sequence[int], dilation: Sequence[int], groups: int,
               allow_tf32: bool = False) -> torch.Tensor:
        """Cross-correlation of x (N, C, H, W) with w (K, C/groups, R, S), plus b (K,)."""
        p = _params(x.shape, w.shape, stride, padding, dilation, groups)
        _check_tensors(x=x, w=w, b=b)
        y = _like_input(p.y_shape, x)
        forward(_gemm_layout(x), _gemm_layout(w), b, y, ConvArgs.of(stride, padding, dilation, groups),
                allow_tf32)
        return y

    @conv2d.register_fake
    def _(x, w, b, stride, padding, dilation, groups, allow_tf32=False):
        return _like_input(_params(x.shape, w.shape, stride, padding, dilation, groups).y_shape, x)

    @torch.library.custom_op(f"{lib}::conv2d_backward_input", mutates_args=())
    def conv2d_backward_input(dy: torch.Tensor, w: torch.Tensor, x_shape: Sequence[int],
                              stride: Sequence[int], padding: Sequence[int],
                              dilation: Sequence[int], groups: int,
                              allow_tf32: bool = False) -> torch.Tensor:
        """Gradient of conv2d with respect to its input, shape ``x_shape``."""
        p = _params(x_shape, w.shape, stride, padding, dilation, groups)
        _check_tensors(dy=dy, w=w)
        if tuple(dy.shape) != p.y_shape:
            raise ValueError(f"dy.shape={tuple(dy.shape)}: must be {p.y_shape}")
        dx = _like_input(p.x_shape, dy)
        backward_input(_gemm_layout(dy), _gemm_layout(w), dx, ConvArgs.of(stride, padding, dilation, groups),
                       allow_tf32)
        return dx

    @conv2d_backward_input.register_fake
    def _(dy, w, x_shape, stride, padding, dilation, groups, allow_tf32=False):
        return _like_input(_params(x_shape, w.shape, stride, padding, dilation, groups).x_shape, dy)

    @torch.library.custom_op(f"{lib}::conv2d_backward_weight", mutates_args=())
    def conv2d_backward_weight(dy: torch.Tensor, x: torch.Tensor, w_shape: Sequence[int],
                               stride: Sequence[int], padding: Sequence[int],
                               dilation: Sequence[int], groups: int,
                               allow_tf32: bool = False) -> torch.Tensor:
        """Gradient of conv2d with respect to its weight, shape ``w_shape``."""
        p = _params(x.shape, w_shape, stride, padding, dilation, groups)
        _check_tensors(dy=dy, x=x)
        if tuple(dy.shape) != p.y_shape:
            raise ValueError(f"dy.shape={tuple(dy.shape)}: must be {p.y_shape}")
        dw = backward_weight(_gemm_layout(dy), _gemm_layout(x), p.w_shape,
                             ConvArgs.of(stride, padding, dilation, groups), allow_tf32)
        return dw.contiguous()

    @conv2d_backward_weight.register_fake
    def _(dy, x, w_shape, stride, padding, dilation, groups, allow_tf32=False):
        return x.new_empty(_params(x.shape, w_shape, stride, padding, dilation, groups).w_shape)

    def setup_context(ctx, inputs, output):
        x, w, b, stride, padding, dilation, groups, allow_tf32 = inputs
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation, groups, allow_tf32)
        ctx.has_bias = b is not None

    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        stride, padding, dilation, groups, allow_tf32 = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = dw = db = None
        if need_x:
            dx = conv2d_backward_input(dy, w, list(x.shape), stride, padding, dilation, groups, allow_tf32)
        if need_w:
            dw = conv2d_backward_weight(dy, x, list(w.shape), stride, padding, dilation, groups, allow_tf32)
        if ctx.has_bias and need_b:
            db = bias_grad(dy)
        return dx, dw, db, None, None, None, None, None

    conv2d.register_autograd(backward, setup_context=setup_context)


def bias_grad(dy: torch.Tensor) -> torch.Tensor:
    """db = dy summed over N, H and W, accumulated in at least float32."""
    acc = torch.float64 if dy.dtype == torch.float64 else torch.float32
    return dy.sum(dim=(0, 2, 3), dtype=acc).to(dy.dtype)


# Registration is process-wide: a second import (importlib reload, a copy under another
# module name) must not register the same operator names again.
if not hasattr(torch.ops.convcert, "conv2d"):
    _register()
