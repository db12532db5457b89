"""``onnxruntime``: ONNX Runtime's Conv, MaxPool and AveragePool kernels behind the contract.

Each call runs a one-node ONNX model built for its geometry and dtype (opset 19, the first
with dilated AveragePool) and cached with its inference session, so a benchmark times the
kernel and not the model construction. Geometry goes in as the node's attributes:
explicit ``pads`` (ONNX order: top, left, bottom, right), ``strides``, ``dilations``,
``group``, ``ceil_mode`` and ``count_include_pad``, whose rules are the contract's.

Forward operations only: ONNX Runtime is an inference engine and its training kernels
are a separate build. Tensors are ``OrtValue``s on the device (CPU, or CUDA where the
CUDA execution provider is installed); calls go through I/O binding, so the output stays
on the device until ``to_numpy``.

Dtypes: float32 and float16. The CPU provider has no float64 Conv or AveragePool kernel
(float64 MaxPool exists) and no bfloat16 kernel for any of the three, so neither dtype is
claimed; a direct call with one raises ``Unsupported``.

Limits: what ONNX Runtime documents it refuses, in its own words. Its pooling kernels
(``MaxPool``, ``AveragePool``) refuse a padding side that is not smaller than the kernel,
the *undilated* kernel even where a dilation widens the window
(``onnxruntime/core/providers/cpu/nn/pool_attributes.h``: ``pads[dim] < kernel_shape[dim]``,
"Pad should be smaller than kernel"); the contract allows it wherever the dilated window
overlaps the input, so the adapter declares it (:data:`POOL_PAD_LIMIT`). A refusal the
library does not document is not declared: it stays a failure.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from ..contract import Implementation, Limit, Unsupported
from ..dtypes import dtype_name
from ..geometry import ConvParams, PoolParams
from ..host import cpu_name

OPSET = 19
#: IR version written into the models: the one that introduced opset 19, so that any
#: onnxruntime able to run opset 19 accepts it whatever newer IR the onnx package defaults to.
IR_VERSION = 9
_ELEMENT = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}
_NODE = {"conv2d": "Conv", "max_pool2d": "MaxPool", "avg_pool2d": "AveragePool"}
_DEVICE = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
#: OrtValue.data_type() -> contract dtype name.
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def _pad_not_below_kernel(p: PoolParams) -> bool:
    """A padding side as large as the (undilated) kernel on its axis: ONNX Runtime refuses it."""
    return any(max(pair) >= k for pair, k in zip(p.padding, p.kernel, strict=True))


#: ONNX Runtime's pooling refuses pads[dim] >= kernel_shape[dim] (pool_attributes.h).
POOL_PAD_LIMIT = Limit(
    "ONNX Runtime pooling: 'Pad should be smaller than kernel' (pool_attributes.h: pads[dim] < "
    "kernel_shape[dim], the undilated kernel)", ops=("max_pool2d", "avg_pool2d"), when=_pad_not_below_kernel)


def _pads(padding) -> list[int]:
    (top, bottom), (left, right) = padding
    return [top, left, bottom, right]


def _attributes(op: str, p: ConvParams | PoolParams) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "pads": _pads(p.padding), "strides": list(p.stride), "dilations": list(p.dilation),
    }
    if isinstance(p, ConvParams):
        return {**attrs, "kernel_shape": list(p.kernel), "group": p.groups}
    attrs.update(kernel_shape=list(p.kernel), ceil_mode=int(p.ceil_mode))
    if op == "avg_pool2d":
        attrs["count_include_pad"] = int(p.count_include_pad)
    return attrs


def build_model(op: str, p: ConvParams | PoolParams, dtype: str, bias: bool = False) -> onnx.ModelProto:
    """The one-node model computing ``op`` at geometry ``p`` in ``dtype``."""
    element = _ELEMENT[dtype]
    shapes: dict[str, tuple[int, ...]] = {"x": p.x_shape}
    if isinstance(p, ConvParams):
        shapes["w"] = p.w_shape
        if bias:
            shapes["b"] = (p.w_shape[0],)
    inputs = [helper.make_tensor_value_info(name, element, list(shape)) for name, shape in shapes.items()]
    output = helper.make_tensor_value_info("y", element, list(p.y_shape))
    node = helper.make_node(_NODE[op], list(shapes), ["y"], **_attributes(op, p))
    graph = helper.make_graph([node], f"convcert_{op}", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no per-session provider chatter
    threads = os.environ.get("CONVCERT_ORT_THREADS")
    if threads:
        options.intra_op_num_threads = int(threads)
    if os.environ.get("CONVCERT_ORT_SPINNING") == "0":  # idle threads sleep instead of spinning
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


@lru_cache(maxsize=256)
def _session(
    op: str, p: ConvParams | PoolParams, dtype: str, bias: bool, device: str
) -> ort.InferenceSession:
    """The inference session for one geometry, dtype and device, built once."""
    model = build_model(op, p, dtype, bias)
    return ort.InferenceSession(model.SerializeToString(), _session_options(), providers=[_DEVICE[device]])


class OnnxRuntime(Implementation):
    """ONNX Runtime on its CPU execution provider and, where installed, the CUDA one."""

    name = "onnxruntime"
    dtypes = ("float32", "float16")
    features = frozenset({
        "conv2d", "max_pool2d", "avg_pool2d", "stride", "dilation", "groups", "asymmetric_padding",
        "ceil_mode", "count_include_pad", "pool_dilation",
    })
    limits = (POOL_PAD_LIMIT,)

    def __init__(self) -> None:
        providers = ort.get_available_providers()
        self.devices = ("cpu", "cuda") if _DEVICE["cuda"] in providers else ("cpu",)

    # -- data movement ---------------------------------------------------------------
    def to_device(self, array: np.ndarray, device: str) -> ort.OrtValue:
        self._check_device(device)
        if dtype_name(array) == "bfloat16":  # OrtValue cannot hold ml_dtypes.bfloat16 arrays
            raise Unsupported("ONNX Runtime adapter: bfloat16 is not claimed (no bfloat16 kernels)")
        # A copy: on the CPU an OrtValue may alias the array it was made from.
        return ort.OrtValue.ortvalue_from_numpy(np.array(array, copy=True, order="C"), device, 0)

    def to_numpy(self, tensor: ort.OrtValue) -> np.ndarray:
        return np.array(tensor.numpy(), copy=True)

    def tensor_info(self, tensor: Any) -> tuple[tuple[int, ...] | None, str]:
        if isinstance(tensor, ort.OrtValue):  # shape() and data_type() are methods here
            return tuple(tensor.shape()), _ORT_TYPES.get(tensor.data_type(), tensor.data_type())
        return super().tensor_info(tensor)

    # -- operations ------------------------------------------------------------------
    def _run(
        self, op: str, params: ConvParams | PoolParams, x: ort.OrtValue, **inputs: ort.OrtValue | None
    ) -> ort.OrtValue:
        dtype = _ORT_TYPES.get(x.data_type(), x.data_type())
        if dtype not in _ELEMENT:
            raise Unsupported(f"ONNX Runtime adapter: {dtype} is not claimed (the CPU provider has no "
                              f"float64 Conv or AveragePool and no bfloat16 kernels)")
        device = x.device_name().lower()
        present = {"x": x, **{name: value for name, value in inputs.items() if value is not None}}
        session = _session(op, params, dtype, "b" in present, device)
        binding = session.io_binding()
        for name, value in present.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output("y", device)
        session.run_with_iobinding(binding)
        return binding.get_outputs()[0]

    def conv2d(self, x, w, b, params: ConvParams):
        return self._run("conv2d", params, x=x, w=w, b=b)

    def max_pool2d(self, x, params: PoolParams):
        return self._run("max_pool2d", params, x=x)

    def avg_pool2d(self, x, params: PoolParams):
        return self._run("avg_pool2d", params, x=x)

    # -- description -----------------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        devices = {"cpu": cpu_name()}
        if "cuda" in self.devices:
            devices["cuda"] = "CUDAExecutionProvider"
        return {
            "onnxruntime": ort.__version__,
            "onnx": onnx.__version__,
            "numpy": np.__version__,
            "devices": devices,
            "providers": ort.get_available_providers(),
            "opset": OPSET,
            "threads": int(os.environ.get("CONVCERT_ORT_THREADS", "0")),  # 0 = ONNX Runtime's default
            "spinning": os.environ.get("CONVCERT_ORT_SPINNING", "1") != "0",
            "graph": "one node per call, session cached per geometry and dtype",
        }


