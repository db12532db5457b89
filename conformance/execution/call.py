"""One call of an implementation: inputs converted at the boundary, one operation, outputs back.

:func:`execute` is what every case comes down to, in this process
(``certify(..., isolate=False)``) or in the worker process (``conformance.execution.serve``).
This module imports NumPy and ``implementations`` only, so that a worker starts quickly.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from implementations import Implementation, Unsupported
from implementations.contract import limit_for
from implementations.dtypes import numpy_dtype

from . import probes
from .protocol import Outcome, not_plain_numbers
from .sources import source_digests


def _call(impl: Implementation, op: str, params: Any, native: dict) -> tuple:
    if op == "conv2d":
        return (impl.conv2d(native["x"], native["w"], native.get("b"), params),)
    if op == "conv2d_backward":
        return tuple(impl.conv2d_backward(native["x"], native["w"], native["dy"], params))
    if op.endswith("_backward"):
        return (getattr(impl, op)(native["x"], native["dy"], params),)
    return (getattr(impl, op)(native["x"], params),)


def execute(impl: Implementation, op: str, uses: frozenset[str], params: Any, device: str, dtype: str,
            arrays: dict[str, np.ndarray | None]) -> Outcome:
    """Convert ``arrays`` at the boundary, call ``op`` once, convert back (unless a limit covers it)."""
    limit = limit_for(impl.limits, op, uses, dtype, device, params)
    if limit is not None:
        return Outcome("limited", message=limit.reason)
    start = time.perf_counter()
    try:
        native = {k: (None if v is None else impl.to_device(v.copy(), device)) for k, v in arrays.items()}
        raw = _call(impl, op, params, native)
        impl.synchronize(device)
        found = [impl.to_numpy(t) for t in raw]
        after = {k: impl.to_numpy(v) for k, v in native.items() if v is not None}
    except Unsupported as exc:
        return Outcome("unsupported", message=exc.reason)
    except (Exception, SystemExit) as exc:  # a crash (or an exit) on a claimed case is a failure
        return Outcome("raised", message=f"raised {type(exc).__name__}: {exc}",
                       seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    for what, results in (("returned", found), ("left its input as", list(after.values()))):
        for a in results:
            why = not_plain_numbers(a)
            if why:
                return Outcome("invalid", message=f"{what} {why}", seconds=seconds)
    return Outcome("ok", found, after, seconds=seconds)


def claims_of(impl: Implementation) -> dict[str, Any]:
    """What the implementation claims, as plain data (sent by a worker when it is ready)."""
    return {"name": impl.name, "devices": list(impl.devices), "dtypes": list(impl.dtypes),
            "features": sorted(impl.features), "reduced_precision": dict(impl.reduced_precision),
            "describe": impl.describe(), "environment": impl.environment(),
            "sources": source_digests(type(impl).__module__)}


def device_problem(impl: Implementation, device: str) -> str | None:
    """None when ``impl`` can place a tensor on ``device``, else why not."""
    try:
        impl.to_numpy(impl.to_device(np.zeros((1, 1, 1, 1), np.float32), device))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def findings(impl: Implementation, device: str, dtype: str) -> dict[str, str]:
    """NaN and Inf behaviour of ``impl`` on ``device`` in ``dtype`` (``conformance.execution.probes``)."""
    return probes.findings(impl, device, numpy_dtype(dtype))
