"""Keras 3 (``keras.ops.conv``, ``max_pool``, ``average_pool``) on the JAX backend, behind
the convcert contract.

Keras speaks ``channels_first`` (NCHW) and cross-correlation; its kernels are
``(R, S, C // groups, K)`` and the number of groups follows from the channel counts.
Keras has only the padding modes ``"valid"`` and ``"same"`` (TensorFlow SAME: the odd
pixel bottom/right), no pooling dilation, no ceil mode, and its ``"same"`` average pooling
never counts the padding: the adapter claims what it can say and declares a limit for
explicit padding that is neither mode. Gradients come from ``jax.vjp`` through the same
Keras calls. ``KERAS_BACKEND`` (default ``jax``) and ``JAX_ENABLE_X64`` (for float64) are
set before Keras is imported.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_ENABLE_X64", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from implementations import Implementation, Limit  # noqa: E402


def _same(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def keras_padding(p) -> str | None:
    """``"valid"`` or ``"same"`` when one of them is exactly ``p.padding``, else None."""
    if p.padding == ((0, 0), (0, 0)):
        return "valid"
    same = tuple(
        _same(n, k, s, d) for n, k, s, d in zip(p.x_shape[2:], p.kernel, p.stride, p.dilation, strict=True)
    )
    return "same" if p.padding == same else None


class Keras3(Implementation):
    name = "keras3-jax"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    features = frozenset(
        {
            "conv2d",
            "conv2d_backward",
            "max_pool2d",
            "max_pool2d_backward",
            "avg_pool2d",
            "avg_pool2d_backward",
            "stride",
            "dilation",
            "groups",
            "asymmetric_padding",
        }
    )
    limits = (
        Limit(
            "Keras pads only 'valid' or 'same' (TensorFlow SAME); other explicit padding cannot be expressed",
            when=lambda p: keras_padding(p) is None,
        ),
    )

    def to_device(self, array, device):
        self._check_device(device)
        return jnp.array(np.array(array, copy=True))

    def to_numpy(self, tensor):
        return np.array(tensor, copy=True)

    # forward functions of the differentiable inputs ---------------------------------
    @staticmethod
    def _conv_fn(p):
        def f(x, w):
            return keras.ops.conv(
                x,
                keras.ops.transpose(w, (2, 3, 1, 0)),
                strides=p.stride,
                padding=keras_padding(p),
                data_format="channels_first",
                dilation_rate=p.dilation,
            )

        return f

    @staticmethod
    def _pool_fn(pool, p):
        return lambda x: pool(
            x, p.kernel, strides=p.stride, padding=keras_padding(p), data_format="channels_first"
        )

    def conv2d(self, x, w, b, params):
        y = self._conv_fn(params)(x, w)
        return y if b is None else y + b[None, :, None, None]

    def conv2d_backward(self, x, w, dy, params):
        _, vjp = jax.vjp(self._conv_fn(params), x, w)
        dx, dw = vjp(dy)
        return dx, dw, jnp.sum(dy, axis=(0, 2, 3))

    def max_pool2d(self, x, params):
        return self._pool_fn(keras.ops.max_pool, params)(x)

    def avg_pool2d(self, x, params):
        return self._pool_fn(keras.ops.average_pool, params)(x)

    def max_pool2d_backward(self, x, dy, params):
        _, vjp = jax.vjp(self._pool_fn(keras.ops.max_pool, params), x)
        return vjp(dy)[0]

    def avg_pool2d_backward(self, x, dy, params):
        _, vjp = jax.vjp(self._pool_fn(keras.ops.average_pool, params), x)
        return vjp(dy)[0]

    def environment(self):
        return {
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "jax": jax.__version__,
            "jax_enable_x64": bool(jax.config.jax_enable_x64),
            "numpy": np.__version__,
        }
