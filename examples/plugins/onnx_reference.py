"""``onnx.reference``: the ONNX reference evaluator (pure NumPy) behind the convcert contract.

Each call builds a one-node model (Conv, MaxPool or AveragePool, opset 19) with explicit
``pads`` and runs it with ``onnx.reference.ReferenceEvaluator``. ONNX is NCHW and
cross-correlation, and its attributes match the contract's resolved geometry one to one, so
the adapter only translates names. ONNX has no gradient operators in the default domain,
so only the forward operations are claimed.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from implementations import Implementation

_TYPES = {np.dtype("float64"): TensorProto.DOUBLE, np.dtype("float32"): TensorProto.FLOAT}


def _pads(padding):
    (top, bottom), (left, right) = padding
    return [top, left, bottom, right]  # ONNX order: all begins, then all ends


def run_node(op: str, inputs: dict[str, np.ndarray], **attrs) -> np.ndarray:
    """Run one ONNX node named ``op`` on ``inputs`` (in order) and return its output ``y``."""
    elem = _TYPES[next(iter(inputs.values())).dtype]
    node = helper.make_node(op, list(inputs), ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(k, elem, list(v.shape)) for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", elem, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    (y,) = ReferenceEvaluator(model).run(None, inputs)
    return np.asarray(y)


class OnnxReference(Implementation):
    name = "onnx-reference"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    features = frozenset(
        {
            "conv2d",
            "max_pool2d",
            "avg_pool2d",
            "stride",
            "dilation",
            "groups",
            "asymmetric_padding",
            "ceil_mode",
            "count_include_pad",
            "pool_dilation",
        }
    )

    def conv2d(self, x, w, b, params):
        inputs = {"x": x, "w": w} if b is None else {"x": x, "w": w, "b": b}
        y = run_node(
            "Conv",
            inputs,
            kernel_shape=list(params.kernel),
            strides=list(params.stride),
            pads=_pads(params.padding),
            dilations=list(params.dilation),
            group=params.groups,
        )
        return y.astype(x.dtype, copy=False)

    def _pool(self, op, x, p, **extra):
        y = run_node(
            op,
            {"x": x},
            kernel_shape=list(p.kernel),
            strides=list(p.stride),
            pads=_pads(p.padding),
            dilations=list(p.dilation),
            ceil_mode=int(p.ceil_mode),
            **extra,
        )
        return y.astype(x.dtype, copy=False)

    def max_pool2d(self, x, params):
        return self._pool("MaxPool", x, params)

    def avg_pool2d(self, x, params):
        return self._pool("AveragePool", x, params, count_include_pad=int(params.count_include_pad))

    def environment(self):
        return {"onnx": onnx.__version__, "numpy": np.__version__}
