"""A plug-in file as a library author writes one: a direct 2-D convolution in NumPy.

``MyConv`` is right; ``WrongConv`` forgets the bias. Certify either from this folder::

    convcert certify ./myconv.py:MyConv --quick
    pytest --convcert ./myconv.py:MyConv --convcert-quick --junitxml=convcert.xml
"""

import numpy as np

from implementations import Implementation


class MyConv(Implementation):
    """Forward convolution only: every option of it, in float64 and float32."""

    name = "myconv"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    features = frozenset({"conv2d", "stride", "dilation", "groups", "asymmetric_padding"})

    def to_device(self, array, device):
        return np.array(array)

    def to_numpy(self, tensor):
        return np.asarray(tensor)

    def synchronize(self, device):
        pass

    def conv2d(self, x, w, b, p):
        # p.padding is already ((top, bottom), (left, right)); p.y_shape the output shape
        (top, bottom), (left, right) = p.padding
        x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        k, cg, r, s = w.shape
        _, _, oh, ow = p.y_shape
        (sh, sw), (dh, dw), groups = p.stride, p.dilation, p.groups
        acc = np.float64 if x.dtype == np.float64 else np.float32  # float32 accumulation or wider
        y = np.zeros(p.y_shape, acc)
        kg = k // groups
        for g in range(groups):
            xs = x[:, g * cg:(g + 1) * cg].astype(acc)
            ws = w[g * kg:(g + 1) * kg].astype(acc)
            for i in range(r):
                for j in range(s):
                    rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                    cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
                    tap = np.einsum("nchw,kc->nkhw", xs[:, :, rows, cols], ws[:, :, i, j])
                    y[:, g * kg:(g + 1) * kg] += tap
        if b is not None:
            y += b.astype(acc)[None, :, None, None]
        return y.astype(x.dtype)


class WrongConv(MyConv):
    """The same convolution with a bug: the bias is never added."""

    name = "wrongconv"

    def conv2d(self, x, w, b, p):
        return super().conv2d(x, w, None, p)
