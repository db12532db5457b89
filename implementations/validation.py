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


#: How a check reads a tensor's logical (NCHW) shape: ``shape_of``, or an implementation's
#: ``logical_shape`` for one that holds its tensors in another layout.
ShapeOf = Callable[[Any], "tuple[int, ...] | None"]


def check_tensor(name: str, tensor: Any, shape: tuple[int, ...], dtype: str | None = None,
                 logical: ShapeOf = shape_of) -> None:
    """Raise ValueError unless ``tensor`` has ``shape`` and a contract dtype (``dtype`` when given)."""
    found = logical(tensor)
    if found is None:
        raise ValueError(f"{name}: must be an array or tensor with a shape, got {type(tensor).__name__}")
    if len(found) != len(shape):
        raise ValueError(f"{name}.ndim={len(found)} (shape {found}): must be {len(shape)}, shape {shape}")
    if found != shape:
        raise ValueError(f"{name}.shape={found}: the params need {shape}")
    got = dtype_of(tensor)
    if got not in DTYPES:
        raise ValueError(f"{name}.dtype={got}: must be one of {DTYPES}")
    if dtype is not None and got != dtype:
        raise ValueError(f"{name}.dtype={got}: must equal x.dtype={dtype}")


def _params(params: Any, kind: type) -> None:
    if not isinstance(params, kind):
        raise ValueError(f"params={params!r}: must be a {kind.__name__} (use {kind.__name__}.create)")


def check_conv2d(x: Any, w: Any, b: Any, params: ConvParams, logical: ShapeOf = shape_of) -> None:
    _params(params, ConvParams)
    check_tensor("x", x, params.x_shape, logical=logical)
    dtype = dtype_of(x)
    check_tensor("w", w, params.w_shape, dtype, logical=logical)
    if b is not None:
        check_tensor("b", b, (params.w_shape[0],), dtype, logical=logical)


def check_conv2d_backward(x: Any, w: Any, dy: Any, params: ConvParams,
                          logical: ShapeOf = shape_of) -> None:
    _params(params, ConvParams)
    check_tensor("x", x, params.x_shape, logical=logical)
    dtype = dtype_of(x)
    check_tensor("w", w, params.w_shape, dtype, logical=logical)
    check_tensor("dy", dy, params.y_shape, dtype, logical=logical)


def check_pool(x: Any, params: PoolParams, logical: ShapeOf = shape_of) -> None:
    _params(params, PoolParams)
    check_tensor("x", x, params.x_shape, logical=logical)


def check_pool_backward(x: Any, dy: Any, params: PoolParams, logical: ShapeOf = shape_of) -> None:
    _params(params, PoolParams)
    check_tensor("x", x, params.x_shape, logical=logical)
    check_tensor("dy", dy, params.y_shape, dtype_of(x), logical=logical)


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
        check(*args, **kwargs, logical=self.logical_shape)
        return method(self, *args, **kwargs)

    wrapper.__convcert_validated__ = True  # type: ignore[attr-defined]
    return wrapper
