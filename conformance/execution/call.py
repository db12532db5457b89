"""One call of an implementation: inputs converted at the boundary, one operation, outputs back.

:func:`execute` is what every case comes down to, in this process
(``certify(..., isolate=False)``) or in the worker process (``conformance.execution.serve``).
This module imports NumPy and ``implementations`` only, so that a worker starts quickly.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any

import numpy as np

from implementations import Implementation, Limit, Unsupported
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
        what = refused_resource(exc)  # ... unless the machine refused it a resource: not a verdict
        message = f"raised {type(exc).__name__}: {exc}"
        return Outcome("refused" if what else "raised", seconds=time.perf_counter() - start,
                       message=f"the machine refused {what}: {message}" if what else message)
    seconds = time.perf_counter() - start
    for what, results in (("returned", found), ("left its input as", list(after.values()))):
        for a in results:
            why = not_plain_numbers(a)
            if why:
                return Outcome("invalid", message=f"{what} {why}", seconds=seconds)
    return Outcome("ok", found, after, seconds=seconds)


#: Errors by which the OS refuses a resource, and the resource (errno names, as ``os.strerror`` says them).
REFUSALS = {errno.EAGAIN: "a thread or process (EAGAIN)", errno.ENOMEM: "memory (ENOMEM)",
            errno.EMFILE: "file descriptors (EMFILE)", errno.ENFILE: "file descriptors (ENFILE)"}


def refused_resource(exc: BaseException) -> str | None:
    """Which resource the machine refused when ``exc`` (or an error it was raised from) was
    raised: ``MemoryError``, an ``OSError`` with a refusal's errno, or a library's error quoting
    the OS's words ("Resource temporarily unavailable"); None for any other error."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, MemoryError):
            return "memory (MemoryError)"
        if isinstance(seen, OSError) and seen.errno in REFUSALS:
            return REFUSALS[seen.errno]
        text = str(seen)
        for code, what in REFUSALS.items():
            if os.strerror(code) in text:
                return what
        seen = seen.__cause__ or seen.__context__
    return None


def limit_record(limit: Limit) -> dict[str, Any]:
    """A declared ``Limit`` as plain data: its reason, its fields, and whether it has a predicate
    (which only the process holding the plug-in can evaluate)."""
    return {"reason": limit.reason, "ops": sorted(limit.ops), "features": sorted(limit.features),
            "dtypes": sorted(limit.dtypes), "devices": sorted(limit.devices), "when": limit.when is not None}


def claims_of(impl: Implementation) -> dict[str, Any]:
    """What the implementation claims, as plain data (sent by a worker when it is ready)."""
    return {"name": impl.name, "devices": list(impl.devices), "dtypes": list(impl.dtypes),
            "features": sorted(impl.features), "reduced_precision": dict(impl.reduced_precision),
            "limits": [limit_record(lim) for lim in impl.limits],
            "describe": impl.describe(), "environment": impl.environment(),
            "sources": source_digests(type(impl).__module__)}


def device_problem(impl: Implementation, device: str) -> str | None:
    """None when ``impl`` can place a tensor on ``device``, else why not."""
    try:
        impl.to_numpy(impl.to_device(np.zeros((1, 1, 1, 1), np.float32), device))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def findings(impl: Implementation, device: str, dtype: str,
             skip: dict[str, str] | None = None) -> dict[str, str]:
    """NaN and Inf behaviour of ``impl`` on ``device`` in ``dtype`` (``conformance.execution.probes``);
    ``skip``: operations not to call, with why."""
    return probes.findings(impl, device, numpy_dtype(dtype), skip)
