"""Memory layouts as a dimension of every GPU benchmark, one small strategy per framework.

The contract's tensors are logical NCHW. How they lie in memory is the framework's
business, and on a GPU it decides which kernels run (cuDNN's float16 convolutions are
about twice as fast in channels-last on an H100/H200). Each framework that can run more
than one layout without changing its adapter says so here:

- torch (and the Triton op, which takes torch tensors of any strides): ``NCHW`` and
  ``channels_last`` (the same logical tensor, ``torch.channels_last`` strides; torch's
  convolution and pooling keep the input's memory format).
- TensorFlow: the adapter's own layout, NHWC on the CPU (its only CPU layout) and NCHW on
  a GPU.
- an implementation that declares ``layouts`` and ``with_layout(layout)`` (JAX: NCHW and
  NHWC dimension numbers, arrays held transposed on the device) runs in each of them;
  :func:`bind` gives the instance holding that layout.
- anything else (NumPy implementations, plug-ins): NCHW.

On the CPU every implementation runs in its own layout only, so the ``cpu`` profile
keeps its length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NCHW = "NCHW"
CHANNELS_LAST = "channels_last"


def framework(placed: Any) -> str:
    """The framework of a placed tensor, from the module of its type."""
    root = type(placed).__module__.split(".")[0]
    return {"jaxlib": "jax", "tensorflow": "tensorflow", "torch": "torch"}.get(root, root)


def layouts(impl: Any, device: str, sample: Any) -> tuple[str, ...]:
    """Layouts to time for ``impl``, whose ``to_device`` returned ``sample``, on ``device``."""
    own = tuple(getattr(impl, "layouts", ()))
    if own and callable(getattr(impl, "with_layout", None)):
        return own if device == "cuda" else (getattr(impl, "layout", own[0]),)
    kind = framework(sample)
    if kind == "torch":
        return (NCHW, CHANNELS_LAST) if device == "cuda" else (NCHW,)
    if kind == "tensorflow":
        return ("NCHW",) if device == "cuda" else ("NHWC",)
    return (NCHW,)


def bind(impl: Any, layout: str) -> Any:
    """The implementation instance that holds its arrays in ``layout`` (``impl`` itself
    unless it declares its own layouts)."""
    if layout in tuple(getattr(impl, "layouts", ())) and callable(getattr(impl, "with_layout", None)):
        return impl.with_layout(layout)
    return impl


def converter(layout: str) -> Callable[[Any], Any]:
    """Tensor -> the same logical tensor in ``layout`` (identity for an adapter's own layout)."""
    if layout == CHANNELS_LAST:
        return _to_channels_last
    return lambda tensor: tensor


def _to_channels_last(tensor: Any) -> Any:
    import torch

    if getattr(tensor, "ndim", 0) != 4:  # bias, 1-D
        return tensor
    return tensor.contiguous(memory_format=torch.channels_last)
