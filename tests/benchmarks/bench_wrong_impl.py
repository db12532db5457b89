"""A deliberately wrong implementation: im2col with the kernel flipped (true convolution).

Fast, plausible-looking and wrong: the benchmark's reference check must flag it. Loaded
by spec ``bench_wrong_impl:FlippedKernel`` with this folder on the path.
"""

import numpy as np

from implementations import im2col
from implementations.im2col import Im2col


class FlippedKernel(Im2col):
    name = "flipped"

    def conv2d(self, x, w, b, params):
        return im2col.conv2d(x, w[:, :, ::-1, ::-1].copy(), b, params)


class Stale(Im2col):
    """Right on the first call of a problem, an uninitialised array on every later one."""

    name = "stale"

    def __init__(self):
        self.seen = set()

    def conv2d(self, x, w, b, params):
        if params in self.seen:
            return np.empty(params.y_shape, x.dtype)
        self.seen.add(params)
        return im2col.conv2d(x, w, b, params)


class Cached(Im2col):
    """Computes each problem once and returns that output for any input of the same shapes."""

    name = "cached"

    def __init__(self):
        self.kept = {}

    def conv2d(self, x, w, b, params):
        if params not in self.kept:
            self.kept[params] = im2col.conv2d(x, w, b, params)
        return self.kept[params]


class OutOfMemory(Im2col):
    """Raises MemoryError on every call, as a case under a memory cap does."""

    name = "oom"

    def conv2d(self, x, w, b, params):
        raise MemoryError("cannot allocate 4.0 GiB")
