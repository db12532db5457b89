"""A deliberately wrong implementation: im2col with the kernel flipped (true convolution).

Fast, plausible-looking and wrong: the benchmark's reference check must flag it. Loaded
by spec ``bench_wrong_impl:FlippedKernel`` with this folder on the path.
"""

from implementations import im2col
from implementations.im2col import Im2col


class FlippedKernel(Im2col):
    name = "flipped"

    def conv2d(self, x, w, b, params):
        return im2col.conv2d(x, w[:, :, ::-1, ::-1].copy(), b, params)
