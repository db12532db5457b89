"""Plug-ins that misbehave as a hostile or buggy author's would, loadable by spec in a worker.

Each breaks on a narrow set of cases so that the tests stay fast: the rest of the run must
go on and judge the other cases. ``CONVCERT_TEST_MISBEHAVE`` switches ``Flaky`` on.
"""

from __future__ import annotations

import os
import random
import signal
import time

import numpy as np

from implementations import Limit, Unsupported
from implementations.im2col import Im2col


class Segfaults(Im2col):
    """Dies of SIGSEGV in every grouped convolution (as a bad native kernel would)."""

    name = "segfaults"
    dtypes = ("float32",)

    def conv2d(self, x, w, b, params):
        if params.groups > 1:
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().conv2d(x, w, b, params)


class Exits(Im2col):
    """Calls ``os._exit(3)`` in max pooling with a stride (a library that exits on an error)."""

    name = "exits"
    dtypes = ("float32",)

    def max_pool2d(self, x, params):
        if params.stride != params.kernel:
            os._exit(3)
        return super().max_pool2d(x, params)


class Hangs(Im2col):
    """Never returns from an average pooling with ceil_mode (a deadlock)."""

    name = "hangs"
    dtypes = ("float32",)

    def avg_pool2d(self, x, params):
        if params.ceil_mode:
            time.sleep(3600)
        return super().avg_pool2d(x, params)


class HidesErrors(Im2col):
    """Breaks for every batch larger than one and turns the error into ``Unsupported``."""

    name = "hides-errors"
    dtypes = ("float32",)

    def conv2d(self, x, w, b, params):
        try:
            if x.shape[0] > 1:
                raise IndexError("batch > 1 is broken")
            return super().conv2d(x, w, b, params)
        except Exception as exc:
            raise Unsupported(str(exc)) from exc


class DeclaresItsLimit(Im2col):
    """Refuses batches larger than one in conv2d, declared up front: limited, not failed."""

    name = "declares-its-limit"
    dtypes = ("float32",)
    limits = (Limit("batch > 1 is not implemented", ops="conv2d", when=lambda p: p.x_shape[0] > 1),)

    def conv2d(self, x, w, b, params):
        if x.shape[0] > 1:
            raise Unsupported("batch > 1 is not implemented")
        return super().conv2d(x, w, b, params)


class TruncatesOnTransfer(Im2col):
    """``to_device`` drops every image but the first: the operation must refuse the array."""

    name = "truncates-on-transfer"
    dtypes = ("float32",)

    def to_device(self, array, device):
        return super().to_device(array[:1] if array.ndim == 4 else array, device)


class Float32Only(Im2col):
    name = "float32-only"
    dtypes = ("float32",)


class BrokenConstructor(Im2col):
    name = "broken-constructor"

    def __init__(self):
        raise RuntimeError("no licence server")


class CrashingConstructor(Im2col):
    name = "crashing-constructor"

    def __init__(self):
        os.kill(os.getpid(), signal.SIGSEGV)


class Flaky(Im2col):
    """Correct, until ``CONVCERT_TEST_MISBEHAVE=1``: then every conv2d dies of SIGSEGV."""

    name = "flaky"
    dtypes = ("float32",)

    def conv2d(self, x, w, b, params):
        if os.environ.get("CONVCERT_TEST_MISBEHAVE") == "1":
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().conv2d(x, w, b, params)


class IgnoresBias(Im2col):
    """Drops the bias: passes only against golden data forged the same way."""

    name = "ignores-bias"
    dtypes = ("float32",)

    def conv2d(self, x, w, b, params):
        return super().conv2d(x, w, None if b is None else np.zeros_like(b), params)



class WrongSometimes(Im2col):
    """Wrong in about one call in twenty (1 added to its first output), at random from a seed
    (``CONVCERT_TEST_SEED``, default 0) and the call count: a race in a native kernel, as it
    looks from outside."""

    name = "wrong-sometimes"
    dtypes = ("float32",)
    RATE = 0.05

    def __init__(self):
        super().__init__()
        self.rng = random.Random(int(os.environ.get("CONVCERT_TEST_SEED", "0")))

    def _sometimes(self, out):
        if self.rng.random() >= self.RATE:
            return out
        if isinstance(out, tuple):
            return (out[0] + 1, *out[1:])
        return out + 1

    def conv2d(self, x, w, b, params):
        return self._sometimes(super().conv2d(x, w, b, params))

    def conv2d_backward(self, x, w, dy, params):
        return self._sometimes(super().conv2d_backward(x, w, dy, params))

    def max_pool2d(self, x, params):
        return self._sometimes(super().max_pool2d(x, params))

    def max_pool2d_backward(self, x, dy, params):
        return self._sometimes(super().max_pool2d_backward(x, dy, params))

    def avg_pool2d(self, x, params):
        return self._sometimes(super().avg_pool2d(x, params))

    def avg_pool2d_backward(self, x, dy, params):
        return self._sometimes(super().avg_pool2d_backward(x, dy, params))
