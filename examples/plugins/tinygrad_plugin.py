"""tinygrad: ``Tensor.conv2d``, ``max_pool2d`` and ``avg_pool2d`` behind the convcert contract.

tinygrad is NCHW and cross-correlation and takes explicit per-side padding in the order
``(left, right, top, bottom)``, dilation, ``ceil_mode`` and ``count_include_pad``, so the
adapter translates names only. Gradients come from tinygrad's autograd (``Tensor.gradient``
with ``dy`` as the upstream gradient).
"""

from __future__ import annotations

import os
import shutil

# tinygrad's CPU device compiles C with clang (or $CC); where it is missing, its PYTHON device
# (an interpreter of the same kernels, slow) runs them. TINYGRAD_DEVICE overrides.
DEVICE = os.environ.get("TINYGRAD_DEVICE") or (
    "CPU" if shutil.which(os.environ.get("CC", "clang")) else "PYTHON"
)
os.environ.setdefault("DEV", DEVICE)  # the default device of tensors made inside tinygrad

from importlib.metadata import version

import numpy as np
from tinygrad import Tensor, dtypes

from implementations import Implementation

_DT = {np.dtype("float64"): dtypes.float64, np.dtype("float32"): dtypes.float32}


def _pad(padding):
    (top, bottom), (left, right) = padding
    return (left, right, top, bottom)


class Tinygrad(Implementation):
    name = "tinygrad"
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
            "ceil_mode",
            "count_include_pad",
            "pool_dilation",
        }
    )

    def to_device(self, array, device):
        self._check_device(device)
        a = np.array(array, copy=True, order="C")
        return Tensor(a, dtype=_DT[a.dtype], device=DEVICE).realize()

    def to_numpy(self, tensor):
        return tensor.numpy().copy()

    def tensor_info(self, tensor):
        return tuple(tensor.shape), {dtypes.float64: "float64", dtypes.float32: "float32"}.get(
            tensor.dtype, str(tensor.dtype)
        )

    # forward ---------------------------------------------------------------------
    @staticmethod
    def _conv(x, w, b, p):
        return x.conv2d(w, b, groups=p.groups, stride=p.stride, dilation=p.dilation, padding=_pad(p.padding))

    @staticmethod
    def _max(x, p):
        return x.max_pool2d(p.kernel, p.stride, p.dilation, _pad(p.padding), ceil_mode=p.ceil_mode)

    @staticmethod
    def _avg(x, p):
        return x.avg_pool2d(
            p.kernel,
            p.stride,
            p.dilation,
            _pad(p.padding),
            ceil_mode=p.ceil_mode,
            count_include_pad=p.count_include_pad,
        )

    def conv2d(self, x, w, b, params):
        return self._conv(x, w, b, params).realize()

    def max_pool2d(self, x, params):
        return self._max(x, params).realize()

    def avg_pool2d(self, x, params):
        return self._avg(x, params).realize()

    # backward --------------------------------------------------------------------
    def conv2d_backward(self, x, w, dy, params):
        b = Tensor.zeros(params.w_shape[0], dtype=x.dtype, device=x.device)
        y = self._conv(x, w, b, params)
        dx, dw, db = y.gradient(x, w, b, gradient=dy)
        return dx.realize(), dw.realize(), db.realize()

    def max_pool2d_backward(self, x, dy, params):
        (dx,) = self._max(x, params).gradient(x, gradient=dy)
        return dx.realize()

    def avg_pool2d_backward(self, x, dy, params):
        (dx,) = self._avg(x, params).gradient(x, gradient=dy)
        return dx.realize()

    def environment(self):
        return {"tinygrad": version("tinygrad"), "numpy": np.__version__}
