"""The worker process: load the implementation by its spec, then answer the parent's requests.

Started by :class:`conformance.execution.worker.Worker` with
``python -c "from conformance.execution.serve import main; ..."``; it judges nothing.
"""

from __future__ import annotations

import mmap
import signal
import struct
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from implementations import Implementation, load

from .call import claims_of, device_problem, execute, findings
from .protocol import Outcome, map_progress


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
        answers.send(("ready", claims_of(impl)))
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
