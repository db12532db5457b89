"""``jax``: ``jax.lax.conv_general_dilated`` and ``reduce_window`` pooling behind the contract.

Every operation is a jitted function built once per geometry (``functools.lru_cache``
keyed on the frozen ``ConvParams`` / ``PoolParams``; jit itself re-specialises per dtype
and device). Gradients are ``jax.vjp`` of the forward function inside the jitted
function, so XLA drops the unused forward output.

- convolution: lhs NCHW, rhs OIHW, ``feature_group_count`` for groups, the resolved
  padding pairs as they are, ``precision=HIGHEST`` so float32 is never silently run as
  bfloat16/TF32 passes on a GPU;
- max pooling: ``reduce_window`` max with a -inf initial value; padding pairs are grown at
  the bottom/right to the windows' extent for ``ceil_mode``. Its VJP (XLA's
  select-and-scatter with ``>=``) sends a tie to the first maximum in row-major order,
  as the contract requires (checked on CPU by the tests; on GPU the conformance suite's
  tie cases check it);
- average pooling: ``reduce_window`` sums divided by the number of counting elements, the
  window sums of a mask that is 1 on the input (and, with ``count_include_pad``, on the
  padding) and 0 on the ``ceil_mode`` overhang. float16/bfloat16 windows are summed in
  float32, as ``jnp.mean`` does (a bfloat16 ``reduce_window`` add accumulates in
  bfloat16: 64 ulps off on a 32x32 window).

Importing this module turns on ``jax_enable_x64`` (process-wide) so that float64 is
float64; without it JAX silently computes float64 inputs in float32.
"""

from __future__ import annotations

import os
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Callable

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from ._host import cpu_name, usable_cores  # noqa: E402
from .contract import FEATURES, Implementation  # noqa: E402
from .geometry import ConvParams, PoolParams  # noqa: E402

#: contract device name -> JAX platform names that provide it.
_PLATFORMS = {"cpu": ("cpu",), "cuda": ("gpu", "cuda")}
CONV_PRECISION = lax.Precision.HIGHEST
_HALF = (jnp.float16, jnp.bfloat16)


def _jax_devices() -> dict[str, Any]:
    """First JAX device of each contract device this process has."""
    found = {}
    for name, platforms in _PLATFORMS.items():
        for platform in platforms:
            try:
                found[name] = jax.devices(platform)[0]
                break
            except RuntimeError:  # backend absent
                continue
    return found


def _conv(p: ConvParams) -> Callable:
    def conv(x, w):
        return lax.conv_general_dilated(
            x, w, p.stride, p.padding, rhs_dilation=p.dilation,
            dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=p.groups,
            precision=CONV_PRECISION,
        )
    return conv


def _window(p: PoolParams) -> dict[str, Any]:
    """reduce_window arguments; bottom/right padding grows to the windows' extent."""
    return dict(window_dimensions=(1, 1, *p.kernel), window_strides=(1, 1, *p.stride),
                padding=((0, 0), (0, 0), *p.window_padding))


def _max_pool(p: PoolParams) -> Callable:
    def pool(x):
        return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, **_window(p))
    return pool


def _avg_pool(p: PoolParams) -> Callable:
    window = _window(p)

    def pool(x):
        acc = jnp.float32 if x.dtype in _HALF else x.dtype  # as jnp.mean accumulates
        sums = lax.reduce_window(x.astype(acc), np.array(0, acc), lax.add, **window)
        mask = jnp.pad(jnp.ones(p.x_shape[2:], acc), p.padding,
                       constant_values=1.0 if p.count_include_pad else 0.0)
        overhang = tuple((0, grown[1] - pad[1]) for grown, pad in zip(p.window_padding, p.padding))
        counts = lax.reduce_window(mask, np.array(0, acc), lax.add, p.kernel, p.stride, overhang)
        return (sums / counts).astype(x.dtype)
    return pool


@lru_cache(maxsize=None)
def _compiled(op: str, params: ConvParams | PoolParams) -> Callable:
    """The jitted function for ``op`` at this geometry, built once."""
    if op == "conv2d":
        conv = _conv(params)
        return jax.jit(lambda x, w, b: conv(x, w) if b is None else conv(x, w) + b[None, :, None, None])
    if op == "conv2d_backward":
        conv = _conv(params)

        def conv_backward(x, w, dy):
            dx, dw = jax.vjp(conv, x, w)[1](dy)
            return dx, dw, jnp.sum(dy, axis=(0, 2, 3)).astype(dy.dtype)
        return jax.jit(conv_backward)
    pool = {"max": _max_pool, "avg": _avg_pool}[op.split("_")[0]](params)
    if op.endswith("_backward"):
        return jax.jit(lambda x, dy: jax.vjp(pool, x)[1](dy)[0])
    return jax.jit(pool)


class Jax(Implementation):
    """JAX/XLA on CPU and, when jax sees a GPU, CUDA."""

    name = "jax"
    dtypes = ("float64", "float32", "float16", "bfloat16")
    features = frozenset(FEATURES)
    #: XLA on the CPU (jax 0.10.2) rounds half-precision partial results to the dtype
    #: (convolution up to 108x the float32-accumulation bound on the catalogue, and the
    #: overlapping-window max-pool gradient). Declared for every device (keyed by dtype).
    reduced_precision = MappingProxyType({"float16": "float16", "bfloat16": "bfloat16"})

    def __init__(self) -> None:
        self._devices = _jax_devices()
        self.devices = tuple(self._devices)
        self._pending: dict[str, Any] = {}  # last result per JAX platform, for synchronize

    def to_device(self, array: np.ndarray, device: str) -> jax.Array:
        self._check_device(device)
        return jax.device_put(np.array(array, copy=True), self._devices[device])

    def to_numpy(self, tensor: jax.Array) -> np.ndarray:
        return np.array(tensor, copy=True)

    def synchronize(self, device: str) -> None:
        """Block until this device's last result is ready (its queue runs in order)."""
        for platform in _PLATFORMS.get(device, ()):
            pending = self._pending.pop(platform, None)
            if pending is not None:
                jax.block_until_ready(pending)

    def _call(self, op: str, params, *args):
        out = _compiled(op, params)(*args)
        self._pending[args[0].devices().pop().platform] = out
        return out

    def conv2d(self, x, w, b, params: ConvParams):
        return self._call("conv2d", params, x, w, b)

    def conv2d_backward(self, x, w, dy, params: ConvParams):
        return self._call("conv2d_backward", params, x, w, dy)

    def max_pool2d(self, x, params: PoolParams):
        return self._call("max_pool2d", params, x)

    def max_pool2d_backward(self, x, dy, params: PoolParams):
        return self._call("max_pool2d_backward", params, x, dy)

    def avg_pool2d(self, x, params: PoolParams):
        return self._call("avg_pool2d", params, x)

    def avg_pool2d_backward(self, x, dy, params: PoolParams):
        return self._call("avg_pool2d_backward", params, x, dy)

    def environment(self) -> dict[str, Any]:
        import jaxlib

        return {
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "numpy": np.__version__,
            "devices": {name: cpu_name() if name == "cpu" else d.device_kind for name, d in self._devices.items()},
            "threads": usable_cores(),  # XLA's CPU client: one intra-op thread per usable core
            "x64": bool(jax.config.jax_enable_x64),
            "conv_precision": CONV_PRECISION.name,
            "jit": "per geometry, lru_cache",
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        }
