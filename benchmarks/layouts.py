"""Memory layouts as a dimension of every GPU benchmark, one small strategy per framework.

The contract's tensors are logical NCHW. How they lie in memory is the framework's
business, and on a GPU it decides which kernels run (cuDNN's float16 convolutions are
about twice as fast in channels-last on an H100/H200). Each framework that can run more
than one layout without changing its adapter says so here:

- torch (and the Triton op, which takes torch tensors of any strides): ``NCHW`` and
  ``channels_last`` (the same logical tensor, ``torch.channels_last`` strides; torch's
  convolution and pooling keep the input's memory format).
- an implementation that declares ``layouts`` and ``with_layout(layout)`` runs in each of
  them on a GPU; :func:`bind` gives the instance holding that layout. JAX: NCHW and NHWC
  dimension numbers, arrays held transposed on the device. TensorFlow: NCHW and NHWC
  (``TensorFlow(layout="NHWC")`` holds NHWC tensors and never transposes activations).
- anything else (NumPy implementations, plug-ins): NCHW.

On the CPU every implementation runs in one layout only, so the ``cpu`` profile keeps its
length: its own, except where a framework's CPU kernels compute in another
(:data:`CPU_LAYOUT`: TensorFlow's CPU convolutions are NHWC only), which it then holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NCHW = "NCHW"
CHANNELS_LAST = "channels_last"
#: framework -> the layout timed on the CPU where it is not the implementation's own.
CPU_LAYOUT = {"tensorflow": "NHWC"}


def framework(placed: Any) -> str:
    """The framework of a placed tensor, from the module of its type."""
    root = type(placed).__module__.split(".")[0]
    return {"jaxlib": "jax", "tensorflow": "tensorflow", "torch": "torch"}.get(root, root)


def layouts(impl: Any, device: str, sample: Any) -> tuple[str, ...]:
    """Layouts to time for ``impl``, whose ``to_device`` returned ``sample``, on ``device``."""
    own = tuple(getattr(impl, "layouts", ()))
    kind = framework(sample)
    if own and callable(getattr(impl, "with_layout", None)):
        if device == "cuda":
            return own
        cpu = CPU_LAYOUT.get(kind, "")
        return (cpu if cpu in own else str(getattr(impl, "layout", own[0])),)
    if kind == "torch":
        return (NCHW, CHANNELS_LAST) if device == "cuda" else (NCHW,)
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
