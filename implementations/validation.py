"""Validation at the boundary: the arrays of a call checked against its params, once.

Every operation of every :class:`~implementations.Implementation` subclass is wrapped (see
``Implementation.__init_subclass__``) so that a call whose arrays do not match its params
gets a ``ValueError`` naming the argument before the implementation runs: no
implementation needs its own checks, and none can silently truncate a batch or broadcast
a bias of the wrong shape. The checks read only ``.shape``, ``.ndim`` and ``.dtype``, so
they work on NumPy arrays and on every framework's native tensors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .geometry import DTYPES, ConvParams, PoolParams


def dtype_of(tensor: Any) -> str:
    """Contract name of a NumPy or native tensor's dtype ('float32', 'bfloat16', 'int64', ...)."""
    dtype = getattr(tensor, "dtype", None)
    if dtype is None:
        return type(tensor).__name__
    try:
        return str(np.dtype(dtype).name)
    except TypeError:  # torch.float32, tf.float32 (has .name), ...
        return str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1]


def shape_of(tensor: Any) -> tuple[int, ...] | None:
    shape = getattr(tensor, "shape", None)
    return None if shape is None else tuple(int(d) for d in shape)


def tensor_info(tensor: Any) -> tuple[tuple[int, ...] | None, str]:
    """A tensor's shape (None without one) and contract dtype name, read from ``.shape``
    and ``.dtype`` as NumPy arrays and most frameworks' tensors have them."""
    return shape_of(tensor), dtype_of(tensor)


#: How a check reads a tensor's logical (NCHW) shape and dtype: ``tensor_info``, or an
#: implementation's ``tensor_info`` for tensors held in another layout or without
#: ``.shape``/``.dtype`` attributes.
TensorInfo = Callable[[Any], "tuple[tuple[int, ...] | None, str]"]


def check_tensor(name: str, tensor: Any, shape: tuple[int, ...], dtype: str | None = None,
                 info: TensorInfo = tensor_info) -> None:
    """Raise ValueError unless ``tensor`` has ``shape`` and a contract dtype (``dtype`` when given)."""
    found, got = info(tensor)
    if found is None:
        raise ValueError(f"{name}: must be an array or tensor with a shape, got {type(tensor).__name__}")
    if len(found) != len(shape):
        raise ValueError(f"{name}.ndim={len(found)} (shape {found}): must be {len(shape)}, shape {shape}")
    if found != shape:
        raise ValueError(f"{name}.shape={found}: the params need {shape}")
    if got not in DTYPES:
        raise ValueError(f"{name}.dtype={got}: must be one of {DTYPES}")
    if dtype is not None and got != dtype:
        raise ValueError(f"{name}.dtype={got}: must equal x.dtype={dtype}")


def _params(params: Any, kind: type) -> None:
    if not isinstance(params, kind):
        raise ValueError(f"params={params!r}: must be a {kind.__name__} (use {kind.__name__}.create)")


def check_conv2d(x: Any, w: Any, b: Any, params: ConvParams, info: TensorInfo = tensor_info) -> None:
    _params(params, ConvParams)
    check_tensor("x", x, params.x_shape, info=info)
    dtype = info(x)[1]
    check_tensor("w", w, params.w_shape, dtype, info=info)
    if b is not None:
        check_tensor("b", b, (params.w_shape[0],), dtype, info=info)


def check_conv2d_backward(x: Any, w: Any, dy: Any, params: ConvParams,
                          info: TensorInfo = tensor_info) -> None:
    _params(params, ConvParams)
    check_tensor("x", x, params.x_shape, info=info)
    dtype = info(x)[1]
    check_tensor("w", w, params.w_shape, dtype, info=info)
    check_tensor("dy", dy, params.y_shape, dtype, info=info)


def check_pool(x: Any, params: PoolParams, info: TensorInfo = tensor_info) -> None:
    _params(params, PoolParams)
    check_tensor("x", x, params.x_shape, info=info)


def check_pool_backward(x: Any, dy: Any, params: PoolParams, info: TensorInfo = tensor_info) -> None:
    _params(params, PoolParams)
    check_tensor("x", x, params.x_shape, info=info)
    check_tensor("dy", dy, params.y_shape, info(x)[1], info=info)


#: The check of each operation, called with the operation's arguments (without self).
CHECKS: dict[str, Callable[..., None]] = {
    "conv2d": check_conv2d,
    "conv2d_backward": check_conv2d_backward,
    "max_pool2d": check_pool,
    "max_pool2d_backward": check_pool_backward,
    "avg_pool2d": check_pool,
    "avg_pool2d_backward": check_pool_backward,
}


def validated(op: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` preceded by the boundary check of ``op`` (idempotent)."""
    if getattr(method, "__convcert_validated__", False):
        return method
    check = CHECKS[op]

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs, info=self.tensor_info)
        return method(self, *args, **kwargs)

    wrapper.__convcert_validated__ = True  # type: ignore[attr-defined]
    return wrapper
