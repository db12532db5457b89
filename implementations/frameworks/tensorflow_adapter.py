"""``tensorflow``: ``tf.nn.conv2d``, ``max_pool2d`` and ``avg_pool2d`` behind the contract.

Layout: ``TensorFlow()`` holds 4-D tensors as the contract's logical NCHW (weights OIHW)
and computes in NCHW on a GPU (cuDNN's native layout: no transposes) and in NHWC on the
CPU (TensorFlow's CPU Conv2D supports nothing else), transposing around each operation
there, as a user with NCHW data pays. ``TensorFlow(layout="NHWC")`` holds 4-D tensors as
NHWC (weights as OHWI) and computes in NHWC on every device, so activations are never
transposed: ``to_device`` transposes once, ``tensor_info`` and ``to_numpy`` turn them
back. The filter is always HWIO inside (one small transpose of the weight per call).
Benchmarks time both layouts on a GPU and NHWC on the CPU. Each operation:

- padding: ``"VALID"`` when there is none, ``"SAME"`` when the caller asked for same (the
  contract's rule is TensorFlow's), the explicit padding list otherwise.
- convolution gradients: the raw backprop ops ``Conv2DBackpropInput`` /
  ``Conv2DBackpropFilter`` (no forward recomputation); ``db`` is a ``reduce_sum``.
  TensorFlow's CPU backprop kernels only handle dilation and groups through oneDNN, i.e.
  for float32/bfloat16 with oneDNN enabled, and oneDNN's only for VALID/SAME padding: on
  the CPU explicit padding is therefore a ``tf.pad`` of x, a VALID backprop and a crop of
  dx. For float64/float16 (Eigen kernels) grouped gradients are built from the same ops
  one group at a time, and dilated gradients are a declared limit (building them from
  space-to-batch ops would be a new implementation, not TensorFlow's).
- max pooling: native ``SAME`` when equivalent, otherwise ``tf.pad`` with -inf (grown at
  the bottom/right for ``ceil_mode``) and ``VALID``: not every MaxPool GPU kernel takes
  an explicit padding list (the Eigen one refuses it), and one path for every device is
  one path tested.
  TensorFlow drops NaN in max pooling (PyTorch propagates it); the adapter does not hide
  that, conformance reports it.
- average pooling: ``tf.nn.avg_pool2d`` takes no explicit padding, so unless the geometry
  is VALID or TensorFlow's SAME (which excludes padding from the count), the average is
  built from TensorFlow ops: ``avg_pool2d(VALID)`` of the zero-padded input divided by
  the share of each window that counts (``geometry.pool_counts`` / window size: input,
  plus padding with ``count_include_pad``; never the ``ceil_mode`` overhang).
- dilated pooling: ``tf.nn.pool`` with ``dilations``, which refuses strides > 1 with a
  dilation: the windows are pooled at stride 1 and every stride-th one is kept (more work,
  the same windows and the same first maximum).
- pooling gradients: ``tf.GradientTape`` over the forward (forward time included).

Importing the module silences TensorFlow's C++ logging (``TF_CPP_MIN_LOG_LEVEL=3`` unless
set) and sets its inter-op pool to one thread (eager ops run one at a time); the intra-op
pool is TensorFlow's default unless ``CONVCERT_TF_THREADS`` is set.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import os
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# TensorFlow and Triton each bundle LLVM and register its command-line options; loading
# Triton after TensorFlow aborts the process ("Option ... registered more than once"),
# loading it first works (TF 2.21, Triton 3.x). So a process that may use both (the
# listing, the matrix, the benchmarks) imports Triton first when it is installed.
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: E402,F401

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..contract import FEATURES, Implementation, Limit, Unsupported  # noqa: E402
from ..geometry import ConvParams, PoolParams, pool_counts  # noqa: E402
from ..host import cpu_name  # noqa: E402

#: dtypes whose CPU backprop kernels come from oneDNN (dilation and groups supported).
_ONEDNN_DTYPES = (tf.float32, tf.bfloat16)
#: held layout of activations -> held layout of weights (the same axis permutation of OIHW).
_WEIGHT_LAYOUT = {"NCHW": "OIHW", "NHWC": "OHWI"}


def _perm(src: str, dst: str) -> list[int]:
    """The axes of a tensor laid out as ``src`` that give it in ``dst`` (e.g. NCHW -> NHWC)."""
    return [src.index(axis) for axis in dst]


def _permute(t, src: str, dst: str):
    """``t`` (laid out as ``src``) transposed to ``dst``; no op at all when they are equal."""
    return t if src == dst else tf.transpose(t, _perm(src, dst))


def _configure_threads() -> None:
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
        threads = int(os.environ.get("CONVCERT_TF_THREADS", "0") or 0)
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already started in this process: its pools stay
        pass


_configure_threads()


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its CPU kernels through oneDNN (TF_ENABLE_ONEDNN_OPTS)."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"


def cpu_isa() -> str:
    """The vector extensions that decide TensorFlow's default CPU path: oneDNN is on by default
    on x86 CPUs with AVX-512 VNNI/BF16 (or AMX), off elsewhere ("" where /proc/cpuinfo is absent)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return ""
    if "avx512f" in flags:
        named = (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16"), ("amx_tile", "AMX"))
        extras = [name for flag, name in named if flag in flags]
        return " ".join(["AVX-512", *extras])
    return "AVX2" if "avx2" in flags else ("x86" if flags else "")


def _spatial(values: tuple[int, int], layout: str, fill: int = 1) -> list[int]:
    """(h, w) as a 4-entry list in ``layout`` order."""
    return [fill, *values, fill] if layout == "NHWC" else [fill, fill, *values]


def _explicit(padding, layout: str) -> list[list[int]]:
    pads = [list(pair) for pair in padding]
    return [[0, 0], *pads, [0, 0]] if layout == "NHWC" else [[0, 0], [0, 0], *pads]


def _conv_padding(p: ConvParams, layout: str) -> str | list[list[int]]:
    if not any(sum(p.padding, ())):
        return "VALID"
    if p.padding_mode == "same":
        return "SAME"
    return _explicit(p.padding, layout)


def _dilated_backward_limit(onednn: bool) -> Limit:
    """TensorFlow's CPU backprop kernels: dilation only through oneDNN (float32/bfloat16)."""
    eigen = ("float64", "float16") if onednn else ("float64", "float32", "float16", "bfloat16")
    return Limit(f"TensorFlow CPU has no dilated Conv2DBackpropInput/Filter for {'/'.join(eigen)} "
                 f"(only its oneDNN kernels, float32/bfloat16, have them; oneDNN on: {onednn})",
                 ops="conv2d_backward", features="dilation", dtypes=eigen, devices="cpu",
                 when=_dilates_a_tap)


def _dilates_a_tap(p: ConvParams) -> bool:
    """Dilation on an axis with more than one tap (a one-tap axis runs undilated, see below)."""
    return any(k > 1 and d > 1 for k, d in zip(p.kernel, p.dilation, strict=True))


def _undilate_unit_axes(p: ConvParams) -> ConvParams:
    """Dilation 1 along an axis whose kernel has one tap: the same convolution.

    TensorFlow 2.21's CPU bfloat16 Conv2D crashes (SIGSEGV) on a dilated 1-tap axis with
    stride 2 and explicit padding, e.g. x (1, 6, 1, 1) NHWC, w (2, 1, 1, 2), strides 2,
    padding [[0, 0], [0, 0], [1, 2], [0, 0]], dilations [1, 1, 3, 1] (found by the sweep).
    """
    (kh, kw), (dh, dw) = p.kernel, p.dilation
    dilation = (1 if kh == 1 else dh, 1 if kw == 1 else dw)
    return p if dilation == p.dilation else dataclasses.replace(p, dilation=dilation)


class TensorFlow(Implementation):
    """TensorFlow (eager) on CPU and, when it sees one, a GPU."""

    name = "tensorflow"
    dtypes = ("float64", "float32", "float16", "bfloat16")
    features = frozenset(FEATURES)
    #: TensorFlow 2.21 on the CPU rounds half-precision partial results to the dtype
    #: (convolution, its gradients, average pooling): up to 40x the float32-accumulation
    #: bound on the catalogue. Declared for every device (the contract keys it by dtype).
    reduced_precision = MappingProxyType({"float16": "float16", "bfloat16": "bfloat16"})

    #: Layouts this adapter can hold 4-D tensors in (see the module docstring).
    layouts = ("NCHW", "NHWC")

    def __init__(self, layout: str = "NCHW") -> None:
        if layout not in self.layouts:
            raise ValueError(f"layout={layout!r}: must be one of {self.layouts}")
        self.layout = layout
        self._tf_devices = {"cpu": "/CPU:0"}
        if tf.config.list_physical_devices("GPU"):
            self._tf_devices["cuda"] = "/GPU:0"
        self.devices = tuple(self._tf_devices)
        self.onednn = onednn_enabled()
        self.limits = (_dilated_backward_limit(self.onednn),)
        # TensorFlow runs float32 convolutions as TF32 on Ampere+ GPUs by default; the
        # contract's float32 means float32.
        tf.config.experimental.enable_tensor_float_32_execution(False)

    def with_layout(self, layout: str) -> TensorFlow:
        """The same adapter (a shallow copy: subclasses keep what they add) holding its 4-D
        tensors in ``layout``."""
        if layout not in self.layouts:
            raise ValueError(f"layout={layout!r}: must be one of {self.layouts}")
        if layout == self.layout:
            return self
        other = copy.copy(self)
        other.layout = layout
        return other

    # -- data movement ---------------------------------------------------------------
    def to_device(self, array: np.ndarray, device: str) -> tf.Tensor:
        self._check_device(device)
        array = np.array(array, copy=True)
        if array.ndim == 4:
            array = np.ascontiguousarray(array.transpose(_perm("NCHW", self.layout)))
        with tf.device(self._tf_devices[device]):
            return tf.identity(tf.convert_to_tensor(array))

    def tensor_info(self, tensor: Any) -> tuple[tuple[int, ...] | None, str]:
        shape, dtype = super().tensor_info(tensor)
        if shape is not None and len(shape) == 4:
            return tuple(shape[a] for a in _perm(self.layout, "NCHW")), dtype
        return shape, dtype

    def to_numpy(self, tensor: tf.Tensor) -> np.ndarray:
        array = np.array(tensor.numpy(), copy=True)
        return array.transpose(_perm(self.layout, "NCHW")).copy() if array.ndim == 4 else array

    def synchronize(self, device: str) -> None:
        if device == "cuda":
            tf.test.experimental.sync_devices()

    @staticmethod
    def _on_gpu(x: tf.Tensor) -> bool:
        return "GPU" in x.device.upper()

    def _compute_layout(self, x: tf.Tensor) -> str:
        """The layout TensorFlow computes in: the held one, except NCHW on the CPU (NHWC)."""
        return "NHWC" if self.layout == "NHWC" or not self._on_gpu(x) else "NCHW"

    # -- convolution -----------------------------------------------------------------
    def conv2d(self, x, w, b, params: ConvParams):
        p, layout = _undilate_unit_axes(params), self._compute_layout(x)
        with tf.device(x.device):
            y = tf.nn.conv2d(
                _permute(x, self.layout, layout), _permute(w, _WEIGHT_LAYOUT[self.layout], "HWIO"),
                _spatial(p.stride, layout), _conv_padding(p, layout), layout,
                _spatial(p.dilation, layout),
            )
            if b is not None:
                y = tf.nn.bias_add(y, b, layout)
            return _permute(y, layout, self.layout)

    def conv2d_backward(self, x, w, dy, params: ConvParams):
        p, layout, gpu = _undilate_unit_axes(params), self._compute_layout(x), self._on_gpu(x)
        native = gpu or (self.onednn and x.dtype in _ONEDNN_DTYPES)
        if not native and p.dilation != (1, 1):
            raise Unsupported(_dilated_backward_limit(self.onednn).reason)  # the limit it declares
        padding = _conv_padding(p, layout)
        with tf.device(x.device):
            xl, dyl = _permute(x, self.layout, layout), _permute(dy, self.layout, layout)
            wl = _permute(w, _WEIGHT_LAYOUT[self.layout], "HWIO")
            crop = None
            if not gpu and not isinstance(padding, str):
                # oneDNN's CPU backprop handles VALID/SAME only: pad, run VALID, crop dx.
                xl, padding, crop = tf.pad(xl, padding), "VALID", p.padding
            channels = layout.index("C")
            groups = 1 if native else p.groups  # Eigen CPU kernels: one group at a time
            parts = [
                self._backprop(xg, wg, dyg, p, layout, padding)
                for xg, wg, dyg in zip(tf.split(xl, groups, axis=channels), tf.split(wl, groups, axis=3),
                                       tf.split(dyl, groups, axis=channels), strict=True)
            ]
            dx = tf.concat([d for d, _ in parts], axis=channels)
            dw = tf.concat([d for _, d in parts], axis=3)
            if crop is not None:
                (top, _), (left, _) = crop
                dx = dx[:, top:top + p.x_shape[2], left:left + p.x_shape[3], :]
            return (_permute(dx, layout, self.layout), _permute(dw, "HWIO", _WEIGHT_LAYOUT[self.layout]),
                    tf.reduce_sum(dyl, axis=[a for a in range(4) if a != channels]))

    @staticmethod
    def _backprop(x, w, dy, p: ConvParams, layout: str, padding: str | list):
        """(dx, dw) of one convolution (or one group of it) through the raw backprop ops."""
        common = dict(
            strides=_spatial(p.stride, layout), dilations=_spatial(p.dilation, layout),
            padding=padding if isinstance(padding, str) else "EXPLICIT",
            explicit_paddings=[] if isinstance(padding, str) else sum(padding, []),
            data_format=layout, out_backprop=dy,
        )
        dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, **common)
        dw = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), **common)
        return dx, dw

    # -- pooling ---------------------------------------------------------------------
    @staticmethod
    def _valid_pool(x, p: PoolParams, layout: str, pooling_type: str):
        """VALID pooling of an input padded to the windows' extent. ``tf.nn.pool`` takes a
        dilation but refuses it with strides > 1, so dilated windows are pooled at stride 1
        and every stride-th window is kept (the same windows, the same first maximum)."""
        if p.dilation == (1, 1):
            op = tf.nn.max_pool2d if pooling_type == "MAX" else tf.nn.avg_pool2d
            return op(x, p.kernel, _spatial(p.stride, layout), "VALID", layout)
        y = tf.nn.pool(x, p.kernel, pooling_type, strides=(1, 1), padding="VALID",
                       data_format=layout, dilations=p.dilation)
        sh, sw = p.stride
        return y[:, ::sh, ::sw, :] if layout == "NHWC" else y[:, :, ::sh, ::sw]

    def _max_pool(self, x, p: PoolParams, layout: str):
        pads = p.window_padding
        if p.padding_mode == "same" and pads == p.padding and p.dilation == (1, 1):
            return tf.nn.max_pool2d(x, p.kernel, _spatial(p.stride, layout), "SAME", layout)
        if any(sum(pads, ())):
            x = tf.pad(x, _explicit(pads, layout), constant_values=float("-inf"))
        return self._valid_pool(x, p, layout, "MAX")

    def _avg_pool(self, x, p: PoolParams, layout: str):
        pads = p.window_padding
        if not any(sum(pads, ())):
            return self._valid_pool(x, p, layout, "AVG")
        native_same = p.padding_mode == "same" and pads == p.padding and p.dilation == (1, 1)
        if native_same and not p.count_include_pad:
            return tf.nn.avg_pool2d(x, p.kernel, _spatial(p.stride, layout), "SAME", layout)
        sums = self._valid_pool(tf.pad(x, _explicit(pads, layout)), p, layout, "AVG")
        share = pool_counts(p) / (p.kernel[0] * p.kernel[1])  # what avg_pool2d of a 0/1 mask gives
        return sums / tf.reshape(tf.constant(share, x.dtype), _spatial(p.out_hw, layout))

    def _pool(self, pool: Callable, x, params: PoolParams):
        layout = self._compute_layout(x)
        with tf.device(x.device):
            y = pool(_permute(x, self.layout, layout), params, layout)
            return _permute(y, layout, self.layout)

    def _pool_backward(self, pool: Callable, x, dy, params: PoolParams):
        with tf.device(x.device), tf.GradientTape() as tape:
            tape.watch(x)
            y = self._pool(pool, x, params)
        return tape.gradient(y, x, output_gradients=dy)

    def max_pool2d(self, x, params: PoolParams):
        return self._pool(self._max_pool, x, params)

    def max_pool2d_backward(self, x, dy, params: PoolParams):
        return self._pool_backward(self._max_pool, x, dy, params)

    def avg_pool2d(self, x, params: PoolParams):
        return self._pool(self._avg_pool, x, params)

    def avg_pool2d_backward(self, x, dy, params: PoolParams):
        return self._pool_backward(self._avg_pool, x, dy, params)

    # -- description -----------------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        devices = {"cpu": cpu_name()}
        if "cuda" in self.devices:
            details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
            devices["cuda"] = details.get("device_name", "GPU:0")
        build = tf.sysconfig.get_build_info()
        return {
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "devices": devices,
            "threads": {  # 0 = TensorFlow's default (one per core)
                "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            },
            "onednn": self.onednn,
            "cpu_isa": cpu_isa(),
            "layout": {"held": self.layout,
                       "computed": {"cpu": "NHWC", "cuda": "NHWC" if self.layout == "NHWC" else "NCHW"}},
            "built_with_cuda": build.get("cuda_version"),
            "built_with_cudnn": build.get("cudnn_version"),
            "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
            "conv_backward": "raw Conv2DBackpropInput/Filter",
            "pool_backward": "GradientTape (forward included)",
        }
