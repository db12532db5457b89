"""tinygrad's dilated convolution gradient returns the input where it must be 0, from the
second identical call on.

A 1x1 input, a 1x2 kernel with dilation 1x2 and padding 1 on the left and right: the one
window spans 3 columns (pad, input, pad) and its two taps read only the padding, so y is the
bias and the gradient of x is 0. tinygrad 0.14.0 on its CPU device (clang) gets that right on
the first call; from the second identical call on, with the gradients of x, w and b all read
by ``.numpy()``, it returns x itself as dx (here 3, in 4 of 5 calls). Realizing the three
gradients before reading them (``dx.realize()``, as the convcert plug-in does) gives 0 on
every call. tinygrad's PYTHON interpreter device is right on every call, so this needs clang
(or CC naming one, e.g. CC=clang-14):

    CC=clang-14 python examples/repros/tinygrad_dilated_conv_backward.py
"""

import numpy as np
from tinygrad import Tensor, dtypes

x = np.array([[[[3.0]]]])  # N=1, C=1, 1x1
w = np.array([[[[2.0, -1.0]]]])  # K=1, C=1, a 1x2 kernel
b = np.array([0.5])
dy = np.array([[[[1.0]]]])  # the output is 1x1: (1 + 1 + 1 - ((2 - 1) * 2 + 1)) + 1


def gradients(realize_first: bool):
    xt, wt, bt = (Tensor(a, dtype=dtypes.float64) for a in (x, w, b))
    y = xt.conv2d(wt, bt, dilation=(1, 2), padding=(1, 1, 0, 0))  # (left, right, top, bottom)
    grads = y.gradient(xt, wt, bt, gradient=Tensor(dy, dtype=dtypes.float64))
    if realize_first:
        grads = [g.realize() for g in grads]
    return [g.numpy() for g in grads]


for realize_first in (False, True):
    wrong = 0
    for call in range(1, 6):
        dx, dw, db = gradients(realize_first)
        wrong += bool(np.any(dx != 0))
        print(f"{'realized' if realize_first else 'read'} call {call}: dx = {dx.ravel()} (expected [0.]), "
              f"dw = {dw.ravel()}, db = {db.ravel()}")
    print(f"{'realize() then numpy()' if realize_first else 'numpy() directly'}: {wrong} of 5 calls wrong")
