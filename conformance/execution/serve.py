"""The worker process: load the implementation by its spec, then answer the parent's requests.

Started by :class:`conformance.execution.worker.Worker` with
``python -c "from conformance.execution.serve import main; ..."``, in a session (process
group) of its own, with its output going to a log file (the parent watches its resident
memory). It judges nothing: it answers each case with its outcome as numbers
(``protocol.encode_outcome``), one message per case, so the parent times every case on its
own clock.

Nothing the plug-in starts may outlive the worker: the worker is a child subreaper, so every
orphan of the plug-in's processes (a double-forked ``setsid`` daemon too) stays in its tree
for the parent to kill (:mod:`.reaper`); it dies with its parent (``PR_SET_PDEATHSIG``), and
a small watchdog process forked before the plug-in loads ends the whole process group as
soon as the worker is gone, whatever killed it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from implementations import load
from implementations.contract import check_implementation

from .call import claims_of, device_problem, execute, findings
from .protocol import encode_json, encode_outcome
from .reaper import make_subreaper

#: Seconds between two looks of the watchdog at the worker.
WATCH_EVERY = 0.2


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (no-op elsewhere)."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _watchdog() -> None:
    """Fork a process that kills this process group once the worker (its parent) is gone."""
    worker = os.getpid()
    if os.fork() != 0:
        return
    try:  # the watchdog holds no pipe, so the parent still sees the worker's end of file
        os.closerange(3, 1 << 16)
        while os.getppid() == worker:
            time.sleep(WATCH_EVERY)
        os.killpg(os.getpgid(0), signal.SIGKILL)
    finally:
        os._exit(0)


def serve(spec: str, requests: Connection, answers: Connection) -> None:
    """Worker main loop: load ``spec``, then answer requests until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        impl = load(spec)
        check_implementation(impl)
        answers.send_bytes(encode_json({"status": "ready", "claims": claims_of(impl)}))
    except (Exception, SystemExit) as exc:
        answers.send_bytes(encode_json({"status": "error", "message": f"{type(exc).__name__}: {exc}"}))
        return
    handlers: dict[str, Callable[..., Any]] = {
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
        if command == "batch":  # one answer per case, sent as soon as it is known
            for request in args:
                answers.send_bytes(encode_outcome(execute(impl, *request)))
        else:
            answers.send_bytes(encode_json(handlers[command](*args)))


def main(argv: list[str]) -> None:
    """Worker entry point: ``SPEC READ_FD WRITE_FD MAX_BYTES`` (started by ``Worker``; the parent
    enforces ``MAX_BYTES`` on resident memory, not this process on its address space)."""
    spec, read_fd, write_fd, _ = argv
    _die_with_parent()
    make_subreaper()
    _watchdog()
    sys.stdout.flush()
    serve(spec, Connection(int(read_fd), writable=False), Connection(int(write_fd), readable=False))
