"""Behavioural probes whose answers are findings, not verdicts: what NaN and Inf do.

IEEE arithmetic propagates NaN through sums and products, but "the maximum of a window
holding a NaN" has no single right answer: PyTorch returns NaN, TensorFlow drops it. The
certificate and the matrix record what each implementation does, per dtype and device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from implementations import ConvParams, Implementation, PoolParams, Unsupported

NAN, INF = float("nan"), float("inf")


def _describe_pool(y: float, poisoned: float) -> str:
    if np.isnan(y):
        return "propagates NaN" if np.isnan(poisoned) else "returns NaN"
    if np.isinf(poisoned) and y == poisoned:
        return "propagates Inf"
    if y == 3.0:
        return "ignores it (returns the largest number, 3)"
    return f"returns {y!r}"


def _probe(impl: Implementation, device: str, dtype: np.dtype, feature: str,
           fn: Callable[[Callable[[np.ndarray], Any]], str], skip: dict[str, str]) -> str:
    if feature not in impl.features:
        return "not claimed"
    if feature in skip:
        return skip[feature]
    try:
        return fn(lambda a: impl.to_device(np.asarray(a, dtype=dtype), device))
    except Unsupported as exc:
        return f"unsupported: {exc.reason}"
    except Exception as exc:  # a crash on a non-finite input is itself the finding
        return f"raises {type(exc).__name__}: {exc}"


def findings(impl: Implementation, device: str, dtype: np.dtype,
             skip: dict[str, str] | None = None) -> dict[str, str]:
    """What ``impl`` does with NaN and Inf inputs, one sentence per probe (``skip``: operations
    not to call, such as one that hung, with the sentence to give instead)."""
    window = lambda v: np.array([[[[1.0, v], [3.0, 2.0]]]])  # noqa: E731 - one 2x2 window
    pool = PoolParams.create((1, 1, 2, 2), 2)
    out = lambda t: impl.to_numpy(t).astype(np.float64).ravel()  # noqa: E731

    def max_pool(v):
        return lambda dev: _describe_pool(out(impl.max_pool2d(dev(window(v)), pool))[0], v)

    def avg_pool(dev):
        return _describe_pool(out(impl.avg_pool2d(dev(window(NAN)), pool))[0], NAN)

    def max_grad(dev):
        dx = out(impl.max_pool2d_backward(dev(window(NAN)), dev(np.ones((1, 1, 1, 1))), pool))
        where = {0: "the 1", 1: "the NaN", 2: "the 3 (largest number)", 3: "the 2"}
        hit = [where[int(i)] for i in np.flatnonzero(dx)]
        return "gradient goes to " + (" and ".join(hit) if hit else "nowhere") + (
            " (NaN gradient)" if np.isnan(dx).any() else "")

    def conv(v):
        def run(dev):
            x = np.ones((1, 1, 1, 4))
            x[0, 0, 0, 0] = v
            p = ConvParams.create(x.shape, (1, 1, 1, 2))
            y = out(impl.conv2d(dev(x), dev(np.ones((1, 1, 1, 2))), None, p))
            reads, spared = y[0], y[1:]
            kind = "NaN" if np.isnan(v) else "Inf"
            propagated = np.isnan(reads) if np.isnan(v) else reads == v
            first = ("propagates " + kind) if propagated else f"gives {reads!r}"
            spread = int((~np.isfinite(spared)).sum())
            return first + (f", and spreads to {spread} output(s) that never read it" if spread else "")
        return run

    probes = {
        "max_pool2d NaN": ("max_pool2d", max_pool(NAN)),
        "max_pool2d Inf": ("max_pool2d", max_pool(INF)),
        "max_pool2d_backward NaN": ("max_pool2d_backward", max_grad),
        "avg_pool2d NaN": ("avg_pool2d", avg_pool),
        "conv2d NaN": ("conv2d", conv(NAN)),
        "conv2d Inf": ("conv2d", conv(INF)),
    }
    with np.errstate(invalid="ignore", over="ignore"):
        return {name: _probe(impl, device, dtype, feature, fn, skip or {})
                for name, (feature, fn) in probes.items()}
