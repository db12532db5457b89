"""tinygrad's dilated convolution gradient returns the input where it must be 0, from the
second identical call on.

A 1x1 input, a 1x2 kernel with dilation 1x2 and padding 1 on the left and right: the one
window spans 3 columns (pad, input, pad) and its two taps read only the padding, so y is the
bias and the gradient of x is 0. tinygrad 0.14.0 on its CPU device (clang) gets that right on
the first call; from the second identical call on, with the gradients of x, w and b all
read, it returns x itself as dx (the convcert certificate saw it in 19 of 20 calls).
tinygrad's PYTHON interpreter device gets every call right, so this needs clang (or CC
naming one, e.g. CC=clang-14):

    CC=clang-14 python examples/repros/tinygrad_dilated_conv_backward.py
"""

import numpy as np
from tinygrad import Tensor, dtypes

x = np.array([[[[3.0]]]])  # N=1, C=1, 1x1
w = np.array([[[[2.0, -1.0]]]])  # K=1, C=1, a 1x2 kernel
b = np.array([0.5])
dy = np.array([[[[1.0]]]])  # the output is 1x1: (1 + 1 + 1 - ((2 - 1) * 2 + 1)) + 1

wrong = 0
for call in range(1, 6):
    xt, wt, bt = (Tensor(a, dtype=dtypes.float64) for a in (x, w, b))
    y = xt.conv2d(wt, bt, dilation=(1, 2), padding=(1, 1, 0, 0))  # (left, right, top, bottom)
    dx, dw, db = y.gradient(xt, wt, bt, gradient=Tensor(dy, dtype=dtypes.float64))
    got = dx.numpy()
    wrong += bool(np.any(got != 0))
    print(f"call {call}: dx = {got.ravel()} (expected [0.]), dw = {dw.numpy().ravel()}, db = {db.numpy().ravel()}")
print(f"{wrong} of 5 calls wrong")
