"""onnx.reference AveragePool with ``ceil_mode=1`` (``count_include_pad=0``, no padding at all)
returns wrong averages: on onnx 1.23.2 every window below is wrong, not only the last one
that ceil mode adds.

A 1x7 input [1..7], kernel 1x3, stride 3, ceil_mode: windows start at 0, 3 and 6; the last
covers only x[6]. Expected [2, 5, 7] (onnxruntime 1.x gives [2, 5, 7] too); onnx.reference
gives [1.5, 4, 6]. Needs only numpy and
onnx:

    python examples/repros/onnx_reference_avgpool_ceil_divisor.py
"""

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

x = np.arange(1, 8, dtype=np.float64).reshape(1, 1, 1, 7)
node = helper.make_node(
    "AveragePool",
    ["x"],
    ["y"],
    kernel_shape=[1, 3],
    strides=[1, 3],
    pads=[0, 0, 0, 0],
    ceil_mode=1,
    count_include_pad=0,
)
graph = helper.make_graph(
    [node],
    "g",
    [helper.make_tensor_value_info("x", TensorProto.DOUBLE, list(x.shape))],
    [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
got = ReferenceEvaluator(model).run(None, {"x": x})[0]

# float64 reference: windows start at 0, 3, 6 (ceil mode keeps the last, which starts inside
# the input); each average divides by the number of input elements in the window
row = x[0, 0, 0]
want = np.array([row[s : s + 3].mean() for s in (0, 3, 6)])[None, None, None]

print("onnx", onnx.__version__)
print("expected", want.ravel(), "got", got.ravel())
print("worst error", np.abs(got - want).max() if got.shape == want.shape else "inf (shape)")
