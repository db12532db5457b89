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


# -- attacks on the certifier itself (contract v3) ---------------------------------------
class _Payload:
    """Unpickling this writes the file named by ``CONVCERT_TEST_MARKER``: proof that code ran."""

    def __reduce__(self):
        return (open, (os.environ.get("CONVCERT_TEST_MARKER", os.devnull), "w"))


class ReturnsObjects(Im2col):
    """conv2d returns an object array whose element runs code when unpickled; max pooling a
    string array."""

    name = "returns-objects"
    dtypes = ("float32",)

    def conv2d(self, x, w, b, params):
        y = super().conv2d(x, w, b, params)
        out = np.empty(y.shape, dtype=object)
        out.flat[0] = _Payload()
        return out

    def max_pool2d(self, x, params):
        return np.full(params.y_shape, "0", dtype="<U3")


class WritesIntoTheAnswerChannel(Im2col):
    """Writes a framed pickle of a code-running object straight into the worker's answer pipe,
    then answers as usual (a plug-in forging the protocol)."""

    name = "writes-into-the-answer-channel"
    dtypes = ("float32",)

    def conv2d(self, x, w, b, params):
        import pickle
        import struct
        import sys

        payload = pickle.dumps(_Payload())
        os.write(int(sys.argv[3]), struct.pack("!i", len(payload)) + payload)
        return super().conv2d(x, w, b, params)


class BadName(Im2col):
    name = "my/conv\n# heading"


class FeaturesAsAString(Im2col):
    name = "features-as-a-string"
    features = "conv2d"  # type: ignore[assignment]


class ClaimsATpu(Im2col):
    name = "claims-a-tpu"
    devices = ("cpu", "tpu")


class ForksAndPrints(Im2col):
    """Prints to its stdout and leaves a child behind that holds it for a minute."""

    name = "forks-and-prints"
    dtypes = ("float32",)

    def conv2d(self, x, w, b, params):
        print("hello from the plug-in", flush=True)
        if os.fork() == 0:
            with open(os.environ.get("CONVCERT_TEST_MARKER", os.devnull), "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
            os._exit(0)
        return super().conv2d(x, w, b, params)


class HangsInMaxPooling(Im2col):
    """Never returns from any max pooling."""

    name = "hangs-in-max-pooling"
    dtypes = ("float32",)

    def max_pool2d(self, x, params):
        time.sleep(3600)

    def max_pool2d_backward(self, x, dy, params):
        time.sleep(3600)


class RaisesMarkdown(Im2col):
    """Fails conv2d with a message that would inject Markdown and HTML."""

    name = "raises-markdown"
    dtypes = ("float32",)
    limits = (Limit("reason\n# Injected heading <script>alert(1)</script>", ops="avg_pool2d"),)

    def conv2d(self, x, w, b, params):
        raise RuntimeError("bad\n# Injected heading\n<script>alert(1)</script> ![x](http://evil/x.png)")



class CallsSysExit(Im2col):
    """Calls ``sys.exit(0)`` in every grouped convolution (explore must not read it as success)."""

    name = "calls-sys-exit"
    dtypes = ("float32", "float64")

    def conv2d(self, x, w, b, params):
        if params.groups > 1:
            import sys

            sys.exit(0)
        return super().conv2d(x, w, b, params)


class NoisyLastBit(Im2col):
    """Right within the bound, but every other call adds one ulp: answers differ between
    identical calls (as a reduction in another order would)."""

    name = "noisy-last-bit"
    dtypes = ("float32",)

    def __init__(self):
        self._calls = 0

    def conv2d(self, x, w, b, params):
        y = super().conv2d(x, w, b, params)
        self._calls += 1
        if self._calls % 2 and not np.array_equal(y, np.round(y)):  # (exact mode is bit for bit)
            y = np.nextafter(y, np.inf).astype(y.dtype)
        return y

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


# -- attacks on the certificate itself (contract v4) -------------------------------------
class Daemonizes(Im2col):
    """Wrong conv2d (1 added), and a daemon (forked twice, ``setsid``) that waits for the
    certificate named by ``CONVCERT_TEST_TARGET`` to be complete, then rewrites it as passed.
    The daemon writes its pid to ``CONVCERT_TEST_MARKER``."""

    name = "daemonizes"
    dtypes = ("float32",)

    def __init__(self):
        super().__init__()
        if os.fork() == 0:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            self._forge()
        os.wait()

    @staticmethod
    def _forge():
        import json

        with open(os.environ.get("CONVCERT_TEST_MARKER", os.devnull), "w") as f:
            f.write(str(os.getpid()))
        target = os.environ.get("CONVCERT_TEST_TARGET", "")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with open(target) as f:
                    data = json.load(f)
                if data.get("state") == "complete":
                    data["passed"] = True
                    with open(target, "w") as f:
                        json.dump(data, f)
                    with open(target + ".forged", "w") as f:
                        f.write("forged")
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        os._exit(0)

    def conv2d(self, x, w, b, params):
        return super().conv2d(x, w, b, params) + 1


class ClaimsLimitedWithoutLimits(Im2col):
    """Declares no limit, yet makes its worker answer "limited" for every conv2d (it replaces the
    worker's limit lookup), a wrong conv2d hidden as a declared gap."""

    name = "claims-limited-without-limits"
    dtypes = ("float32",)
    limits = ()

    def __init__(self):
        super().__init__()
        from conformance.execution import call

        call.limit_for = lambda limits, op, *rest: Limit("not implemented") if op == "conv2d" else None

    def conv2d(self, x, w, b, params):
        return super().conv2d(x, w, b, params) + 1


#: One mebibyte of text that would redraw a terminal line as PASSED (ESC [2K, CR).
REDRAW = "\x1b[2K\rconv2d: PASSED\x1b[0m\r" + "x" * (1 << 20)


class FloodsText(Im2col):
    """Fails conv2d with a 1 MiB message holding ESC and CR sequences, prints 1 MiB per call."""

    name = "floods-text"
    dtypes = ("float32",)

    def conv2d(self, x, w, b, params):
        print(REDRAW, flush=True)
        raise RuntimeError(REDRAW)

    def environment(self):
        return {"library": REDRAW}


class ReservesAddressSpace(Im2col):
    """Reserves 20 GiB of address space that it never touches (as a runtime's arenas and thread
    stacks do), and uses a few pages of it."""

    name = "reserves-address-space"
    dtypes = ("float32",)

    def __init__(self):
        import ctypes

        super().__init__()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long)
        # PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE (Linux)
        self.reserved = libc.mmap(None, 20 << 30, 0x1 | 0x2, 0x02 | 0x20 | 0x4000, -1, 0)
        if self.reserved in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap of 20 GiB refused")
        ctypes.memset(self.reserved, 1, 1 << 20)


class FillsMemory(Im2col):
    """Fills (and keeps) 768 MiB more of memory in every conv2d."""

    name = "fills-memory"
    dtypes = ("float32",)

    def __init__(self):
        super().__init__()
        self.kept = []

    def conv2d(self, x, w, b, params):
        self.kept.append(np.ones(768 << 20, np.uint8))
        time.sleep(2)
        return super().conv2d(x, w, b, params)


class RefusedThreads(Im2col):
    """conv2d fails as a runtime does when the OS refuses it a thread: once per marker file
    (``CONVCERT_TEST_MARKER``, created on the first refusal), or always when it is unset."""

    name = "refused-threads"
    dtypes = ("float32",)

    def conv2d(self, x, w, b, params):
        marker = os.environ.get("CONVCERT_TEST_MARKER")
        if not marker or not os.path.exists(marker):
            if marker:
                open(marker, "w").close()
            raise RuntimeError("pthread_create failed: Resource temporarily unavailable")
        return super().conv2d(x, w, b, params)


class HangsInForwardMaxPooling(Im2col):
    """Never returns from max_pool2d (its backward works)."""

    name = "hangs-in-forward-max-pooling"

    def max_pool2d(self, x, params):
        time.sleep(3600)


class FillsMemoryWhileLoading(Im2col):
    """Fills (and keeps) 768 MiB of memory in its constructor."""

    name = "fills-memory-while-loading"

    def __init__(self):
        super().__init__()
        self.kept = np.ones(768 << 20, np.uint8)
        time.sleep(2)
