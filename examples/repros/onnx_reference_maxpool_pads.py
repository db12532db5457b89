"""onnx.reference MaxPool reads ``pads`` in the wrong order.

ONNX orders ``pads`` as [H_begin, W_begin, H_end, W_end]. With all strides 1 and no dilation,
onnx.reference's MaxPool takes its ``CommonPool`` path, which gives a wrong answer (here: a
wrong output shape; elsewhere an exception) when the H and W paddings differ, symmetric
paddings included: pads (top=bottom=1, left=right=0) on a 2x5 input with a 3x2 kernel,
stride 1, should give a 2x4 output. Needs only numpy and onnx:

    python examples/repros/onnx_reference_maxpool_pads.py
"""

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

x = np.arange(10, dtype=np.float64).reshape(1, 1, 2, 5)
kernel, (top, bottom), (left, right) = (3, 2), (1, 1), (0, 0)

node = helper.make_node(
    "MaxPool", ["x"], ["y"], kernel_shape=list(kernel), strides=[1, 1], pads=[top, left, bottom, right]
)
graph = helper.make_graph(
    [node],
    "g",
    [helper.make_tensor_value_info("x", TensorProto.DOUBLE, list(x.shape))],
    [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
got = ReferenceEvaluator(model).run(None, {"x": x})[0]

# float64 reference: -inf padding, then the maximum of each 3x2 window
xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=-np.inf)
oh, ow = xp.shape[2] - kernel[0] + 1, xp.shape[3] - kernel[1] + 1
want = np.array(
    [[xp[0, 0, i : i + kernel[0], j : j + kernel[1]].max() for j in range(ow)] for i in range(oh)]
)[None, None]

print("onnx", onnx.__version__)
print("expected shape", want.shape, "got", got.shape)
if got.shape == want.shape:
    print("worst error", np.abs(got - want).max())
else:
    print("worst error: inf (wrong output shape)")
    print("expected\n", want[0, 0], "\ngot\n", got[0, 0])
