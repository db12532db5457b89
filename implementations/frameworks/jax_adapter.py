"""``jax``: ``jax.lax.conv_general_dilated`` and ``reduce_window`` pooling behind the contract.

Every operation is a jitted function built once per geometry, keyed on what its program is
built from (convolution: shapes, stride, padding pairs, dilation, groups; max pooling: the
windows; average pooling: the windows and what they count), so that geometries written
differently (``same`` or its explicit pairs; ``count_include_pad`` for a max pool) share one
traced and compiled program; jit itself re-specialises per dtype and device.
Gradients are ``jax.vjp`` of the forward function inside the jitted
function, so XLA drops the unused forward output.

- convolution: lhs NCHW, rhs OIHW, ``feature_group_count`` for groups, the resolved
  padding pairs as they are, ``precision=HIGHEST`` so float32 is never silently run as
  bfloat16/TF32 passes on a GPU;
- max pooling: ``reduce_window`` max with a -inf initial value (``window_dilation`` for
  dilated windows); padding pairs are grown at
  the bottom/right to the windows' extent for ``ceil_mode``. Its VJP (XLA's
  select-and-scatter with ``>=``) sends a tie to the first maximum in row-major order,
  as the contract requires (checked on CPU by the tests; on GPU the conformance suite's
  tie cases check it); that VJP has no window dilation, so a dilated max-pool gradient is
  the VJP of an explicit gather of the window taps and an ``argmax`` pick;
- average pooling: ``reduce_window`` sums divided by the number of counting elements,
  ``geometry.pool_counts`` (input, and padding with ``count_include_pad``; never the
  ``ceil_mode`` overhang). float16/bfloat16 windows are summed in
  float32, as ``jnp.mean`` does (a bfloat16 ``reduce_window`` add accumulates in
  bfloat16: 64 ulps off on a 32x32 window).

Layout: the contract's arrays are logical NCHW (weights OIHW), and the adapter holds them
that way by default. ``Jax(layout="NHWC")`` (benchmarks time both on a GPU) holds 4-D
arrays as NHWC (weights as OHWI) on the device: ``to_device`` transposes them, the same
operations run with NHWC dimension numbers, and ``to_numpy`` transposes back.

Importing this module turns on ``jax_enable_x64`` (process-wide) so that float64 is
float64; without it JAX silently computes float64 inputs in float32.

Compiled programs persist across runs when ``CONVCERT_CACHE_DIR`` names convcert's cache
folder (the ``convcert`` command sets it for its workers): JAX's own persistent compilation
cache in its ``jax`` subfolder, every program kept however small or quick to compile (a
certification compiles thousands of small ones, one per geometry, operation and dtype). The
cache stores what XLA compiled, with the same passes: a program read from it is the program
compiled. A cache folder the process already set (``jax_compilation_cache_dir``) is kept.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from ..contract import FEATURES, Implementation  # noqa: E402
from ..geometry import ConvParams, PoolParams, pool_counts  # noqa: E402
from ..host import cpu_name, usable_cores  # noqa: E402

#: The variable naming convcert's cache folder (``conformance.execution.sources.CACHE_ENV``).
CACHE_ENV = "CONVCERT_CACHE_DIR"


def _persistent_compilation_cache() -> str:
    """Turn JAX's persistent compilation cache on under ``$CONVCERT_CACHE_DIR/jax``; its folder, or ""."""
    folder = os.environ.get(CACHE_ENV)
    if folder and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", os.path.join(folder, "jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return jax.config.jax_compilation_cache_dir or ""


_persistent_compilation_cache()

#: contract device name -> JAX platform names that provide it.
_PLATFORMS = {"cpu": ("cpu",), "cuda": ("gpu", "cuda")}
CONV_PRECISION = lax.Precision.HIGHEST
_HALF = (jnp.float16, jnp.bfloat16)
#: layout -> (input/output, kernel) dimension numbers; position of H and W; channel axis.
_DIMS = {"NCHW": ("NCHW", "OIHW"), "NHWC": ("NHWC", "OHWI")}
_TO_NHWC, _TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


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


def _conv(p: ConvParams, layout: str) -> Callable:
    io, kernel = _DIMS[layout]

    def conv(x, w):
        return lax.conv_general_dilated(
            x, w, p.stride, p.padding, rhs_dilation=p.dilation,
            dimension_numbers=(io, kernel, io), feature_group_count=p.groups,
            precision=CONV_PRECISION,
        )
    return conv


def _spatial(layout: str, hw: tuple, fill: Any) -> tuple:
    """(h, w) placed as a 4-entry tuple in ``layout`` order."""
    return (fill, fill, *hw) if layout == "NCHW" else (fill, *hw, fill)


def _window(p: PoolParams, layout: str) -> dict[str, Any]:
    """reduce_window arguments; bottom/right padding grows to the windows' extent."""
    return dict(window_dimensions=_spatial(layout, p.kernel, 1), window_strides=_spatial(layout, p.stride, 1),
                padding=_spatial(layout, p.window_padding, (0, 0)),
                window_dilation=_spatial(layout, p.dilation, 1))


def _max_pool(p: PoolParams, layout: str) -> Callable:
    def pool(x):
        return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, **_window(p, layout))
    return pool


def _gathered_max_pool(p: PoolParams, layout: str) -> Callable:
    """Max pooling as an explicit gather of each window's taps and a first-maximum pick.

    XLA's max-pool VJP (``select_and_gather_add``) has no window dilation (jax raises
    NotImplementedError), so dilated max-pool gradients come from this form instead: its
    VJP sends each window's gradient to the tap ``argmax`` picks, the first maximum.
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = p.kernel, p.stride, p.dilation, p.out_hw

    def pool_nchw(x):
        xp = jnp.pad(x, ((0, 0), (0, 0), *p.window_padding), constant_values=-np.inf)
        taps = jnp.stack([
            xp[:, :, r * dh:r * dh + (oh - 1) * sh + 1:sh, s * dw:s * dw + (ow - 1) * sw + 1:sw]
            for r in range(kh) for s in range(kw)
        ], axis=-1)
        first = jnp.argmax(taps, axis=-1)[..., None]
        return jnp.take_along_axis(taps, first, axis=-1)[..., 0]

    if layout == "NCHW":
        return pool_nchw
    return lambda x: jnp.transpose(pool_nchw(jnp.transpose(x, (0, 3, 1, 2))), (0, 2, 3, 1))


def _avg_pool(p: PoolParams, layout: str) -> Callable:
    window = _window(p, layout)

    def pool(x):
        acc = jnp.float32 if x.dtype in _HALF else x.dtype  # as jnp.mean accumulates
        sums = lax.reduce_window(x.astype(acc), np.array(0, acc), lax.add, **window)
        counts = jnp.asarray(pool_counts(p), acc)
        counts = counts if layout == "NCHW" else counts[:, :, None]
        return (sums / counts).astype(x.dtype)
    return pool


def _program(op: str, p: ConvParams | PoolParams) -> tuple:
    """What the program of ``op`` at ``p`` is built from (every field the builders below read)."""
    if isinstance(p, ConvParams):
        return p.x_shape, p.w_shape, p.stride, p.padding, p.dilation, p.groups
    if op.startswith("max_"):
        return p.x_shape, p.kernel, p.stride, p.window_padding, p.dilation, p.out_hw
    return (dataclasses.replace(p, padding_mode="explicit"),)


_PROGRAMS: dict[tuple, Callable] = {}


def _compiled(op: str, params: ConvParams | PoolParams, layout: str = "NCHW") -> Callable:
    """The jitted function for ``op`` at this geometry and layout, built once for every ``params``
    with the same program."""
    key = (op, layout, _program(op, params))
    if key not in _PROGRAMS:
        _PROGRAMS[key] = _build(op, params, layout)
    return _PROGRAMS[key]


def _build(op: str, params: ConvParams | PoolParams, layout: str) -> Callable:
    """The jitted function for ``op`` at this geometry and layout."""
    channel = _DIMS[layout][0].index("C")
    spatial_and_batch = tuple(a for a in range(4) if a != channel)
    if isinstance(params, ConvParams):
        conv = _conv(params, layout)
        if op == "conv2d":
            bias_shape = (1, -1, 1, 1) if layout == "NCHW" else (1, 1, 1, -1)
            return jax.jit(lambda x, w, b: conv(x, w) if b is None else conv(x, w) + b.reshape(bias_shape))

        def conv_backward(x, w, dy):
            dx, dw = jax.vjp(conv, x, w)[1](dy)
            return dx, dw, jnp.sum(dy, axis=spatial_and_batch).astype(dy.dtype)
        return jax.jit(conv_backward)
    pool = {"max": _max_pool, "avg": _avg_pool}[op.split("_")[0]](params, layout)
    if op == "max_pool2d_backward" and params.dilation != (1, 1):
        pool = _gathered_max_pool(params, layout)
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

    #: Layouts this adapter can hold 4-D arrays in (see the module docstring).
    layouts = tuple(_DIMS)

    def __init__(self, layout: str = "NCHW") -> None:
        if layout not in _DIMS:
            raise ValueError(f"layout={layout!r}: must be one of {tuple(_DIMS)}")
        self.layout = layout
        self._devices = _jax_devices()
        self.devices = tuple(self._devices)
        self._pending: dict[str, Any] = {}  # last result per JAX platform, for synchronize

    def with_layout(self, layout: str) -> Jax:
        """The same adapter holding its arrays in ``layout``."""
        return self if layout == self.layout else Jax(layout)

    def to_device(self, array: np.ndarray, device: str) -> jax.Array:
        self._check_device(device)
        array = np.array(array, copy=True)
        if self.layout == "NHWC" and array.ndim == 4:
            array = np.ascontiguousarray(array.transpose(_TO_NHWC))
        return jax.device_put(array, self._devices[device])

    def tensor_info(self, tensor: Any) -> tuple[tuple[int, ...] | None, str]:
        shape, dtype = super().tensor_info(tensor)
        if self.layout == "NHWC" and shape is not None and len(shape) == 4:
            return tuple(shape[a] for a in _TO_NCHW), dtype
        return shape, dtype

    def to_numpy(self, tensor: jax.Array) -> np.ndarray:
        array = np.array(tensor, copy=True)
        return array.transpose(_TO_NCHW).copy() if self.layout == "NHWC" and array.ndim == 4 else array

    def synchronize(self, device: str) -> None:
        """Block until this device's last result is ready (its queue runs in order)."""
        for platform in _PLATFORMS.get(device, ()):
            pending = self._pending.pop(platform, None)
            if pending is not None:
                jax.block_until_ready(pending)

    def ready(self, result: Any) -> None:
        """Block until ``result`` (an array or a tuple of arrays) is computed."""
        jax.block_until_ready(result)

    def _call(self, op: str, params, *args):
        out = _compiled(op, params, self.layout)(*args)
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
            "devices": {name: cpu_name() if name == "cpu" else d.device_kind
                        for name, d in self._devices.items()},
            "threads": usable_cores(),  # XLA's CPU client: one intra-op thread per usable core
            "x64": bool(jax.dtypes.canonicalize_dtype(np.float64) == np.float64),
            "conv_precision": CONV_PRECISION.name,
            "layout": self.layout,
            "jit": "per program (geometry), cached",
            "persistent_compilation_cache": bool(jax.config.jax_compilation_cache_dir),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        }
