"""One call of an implementation, and the worker process that makes such calls.

:func:`execute` converts a case's inputs at the boundary, calls the operation once and
converts back; the suite uses it in this process (``certify(..., isolate=False)``) or,
through :func:`serve`, in the worker process that ``conformance.worker.Worker`` starts
with ``python -c "from conformance.call import main; ..."``. This module imports NumPy and
``implementations`` only, so that a worker starts quickly.
"""

from __future__ import annotations

import mmap
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from implementations import Implementation, Unsupported, load
from implementations.contract import limit_for
from implementations.dtypes import numpy_dtype

from .worker import map_progress


def _call(impl: Implementation, op: str, params: Any, native: dict) -> tuple:
    if op == "conv2d":
        return (impl.conv2d(native["x"], native["w"], native.get("b"), params),)
    if op == "conv2d_backward":
        return tuple(impl.conv2d_backward(native["x"], native["w"], native["dy"], params))
    if op.endswith("_backward"):
        return (getattr(impl, op)(native["x"], native["dy"], params),)
    return (getattr(impl, op)(native["x"], params),)


@dataclass
class Outcome:
    """What one call of an implementation gave, wherever it ran (this process or a worker).

    ``kind``: ``ok`` (``found`` holds the outputs, ``after`` the inputs as they were after
    the call), ``limited`` (a declared limit covers the case; ``message`` is its reason),
    ``unsupported`` (``Unsupported`` raised; ``message`` is its reason), ``raised`` (any
    other exception) or ``died`` (the worker crashed or ran out of time).
    """

    kind: str
    found: list[np.ndarray] = field(default_factory=list)
    after: dict[str, np.ndarray] = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0


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
        found = [np.asarray(impl.to_numpy(t)) for t in raw]
        after = {k: np.asarray(impl.to_numpy(v)) for k, v in native.items() if v is not None}
    except Unsupported as exc:
        return Outcome("unsupported", message=exc.reason)
    except Exception as exc:  # a crash on a claimed case is a failure, reported with its type
        return Outcome("raised", message=f"raised {type(exc).__name__}: {exc}",
                       seconds=time.perf_counter() - start)
    return Outcome("ok", found, after, seconds=time.perf_counter() - start)


# -- the worker process ----------------------------------------------------------------
def _claims(impl: Implementation) -> dict[str, Any]:
    return {"name": impl.name, "devices": tuple(impl.devices), "dtypes": tuple(impl.dtypes),
            "features": frozenset(impl.features), "reduced_precision": dict(impl.reduced_precision),
            "describe": impl.describe(), "environment": impl.environment()}


def device_problem(impl: Implementation, device: str) -> str | None:
    """None when ``impl`` can place a tensor on ``device``, else why not."""
    try:
        impl.to_numpy(impl.to_device(np.zeros((1, 1, 1, 1), np.float32), device))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def findings(impl: Implementation, device: str, dtype: str) -> dict[str, str]:
    """NaN and Inf behaviour of ``impl`` on ``device`` in ``dtype`` (``conformance.behaviour``)."""
    from . import behaviour

    return behaviour.findings(impl, device, numpy_dtype(dtype))


def _batch(impl: Implementation, progress: mmap.mmap, first: int, requests: list[tuple]) -> list[Outcome]:
    """Run a batch of cases, marking each one's sequence number in ``progress`` as it starts."""
    outcomes = []
    for i, request in enumerate(requests):
        struct.pack_into("<q", progress, 0, first + i)
        outcomes.append(execute(impl, *request))
    return outcomes


def serve(spec: str, requests: Connection, answers: Connection, progress: mmap.mmap) -> None:
    """Worker main loop: load ``spec``, then answer requests until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        impl = load(spec)
        answers.send(("ready", _claims(impl)))
    except (Exception, SystemExit) as exc:
        answers.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    handlers: dict[str, Callable[..., Any]] = {
        "batch": lambda first, batch: _batch(impl, progress, first, batch),
        "findings": lambda *args: findings(impl, *args),
        "device": lambda *args: device_problem(impl, *args),
    }
    while True:
        try:
            command, args = requests.recv()
        except EOFError:  # the parent went away
            return
        if command == "stop":
            return
        answers.send(handlers[command](*args))



def main(argv: list[str]) -> None:
    """Worker entry point: ``SPEC READ_FD WRITE_FD PROGRESS_FILE`` (started by ``Worker``)."""
    spec, read_fd, write_fd, progress = argv
    serve(spec, Connection(int(read_fd), writable=False), Connection(int(write_fd), readable=False),
          map_progress(progress))
