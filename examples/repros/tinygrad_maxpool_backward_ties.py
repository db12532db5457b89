"""tinygrad's max_pool2d gradient does not go to the first maximum of a window on ties.

PyTorch, JAX/XLA, oneDNN and cuDNN send each window's gradient to one element, the first
maximum in row-major order; tinygrad 0.14.0's autograd splits it equally among the tied
maxima. A 3x3 input of equal values (the last one lower), 2x2 windows, stride 1, upstream
gradient [[1, 2], [3, 4]]: the reference puts each window's gradient on its first element.
Needs only numpy and tinygrad (tinygrad's CPU device needs clang,
or CC pointing at one; without it, DEV=PYTHON runs the slow interpreter):

    python examples/repros/tinygrad_maxpool_backward_ties.py
"""

import os
import shutil

if not shutil.which(os.environ.get("CC", "clang")):
    os.environ.setdefault("DEV", "PYTHON")

import numpy as np
from tinygrad import Tensor, dtypes

x = np.zeros((1, 1, 3, 3))
x[0, 0, 2, 2] = -1.0  # one element below the rest: every window still has tied maxima
dy = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)

xt = Tensor(x, dtype=dtypes.float64)
(dx,) = xt.max_pool2d((2, 2), 1).gradient(xt, gradient=Tensor(dy, dtype=dtypes.float64))
got = dx.numpy()

# float64 reference: each output's gradient to the first maximum of its window (row-major)
want = np.zeros_like(x)
for i in range(2):
    for j in range(2):
        window = x[0, 0, i : i + 2, j : j + 2]
        a, b = np.unravel_index(np.argmax(window), window.shape)  # argmax = first maximum
        want[0, 0, i + a, j + b] += dy[0, 0, i, j]

print("expected\n", want[0, 0], "\ngot\n", got[0, 0])
print("worst error", np.abs(got - want).max())
