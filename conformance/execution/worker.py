"""The implementation under certification, in a worker process of its own.

A plug-in can crash the process it runs in (a segfault in native code, ``os._exit``, a
signal) or never return. So the certifier never calls it in its own process: a worker
started with ``python -c`` (the parent's ``sys.path`` as its ``PYTHONPATH``) loads the
implementation by its spec and answers requests over a pair of pipes (run cases, probe
NaN/Inf behaviour, try a device). The parent keeps the golden data, the references and
every judgement; the worker only converts, calls and converts back
(:func:`conformance.execution.call.execute`).

When the worker dies or a case runs past its time limit, that case fails with what
happened ("worker killed by SIGSEGV in conv2d", "no answer in 60 s in conv2d"), the worker
is stopped, and the next case starts a fresh one. One worker serves every case until then,
and cases travel in batches, so isolation costs one process start plus a little pickling
per case. This module (the parent's side) imports nothing heavy, so a command line can
start the worker before it imports NumPy itself.
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from .protocol import Outcome, map_progress

#: Per-case time limit (seconds) unless the caller gives one.
CASE_TIMEOUT = 60.0
#: Time allowed to import and construct the implementation (frameworks import slowly).
LOAD_TIMEOUT = 300.0
#: Most cases and bytes of input arrays in one message to the worker, and the largest
#: message sent ahead of an answer (it must fit in a pipe's buffer; see ``Worker.stream``).
BATCH, BATCH_BYTES, AHEAD_BYTES = 32, 8 * 1024 * 1024, 32 * 1024
#: Seconds between two looks at the worker's progress while a batch runs.
PROGRESS_CHECK = 0.5
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_NOT_STARTED = struct.pack("<q", -1)
#: The worker's command line (not ``-m``: classes must pickle as ``conformance.execution.*``).
_BOOT = "import sys; from conformance.execution.serve import main; main(sys.argv[1:])"
_END = object()
T = TypeVar("T")


class LoadError(RuntimeError):
    """The implementation could not be loaded in a worker process (nothing was judged)."""


#: A case on its way: (item, ``execute`` arguments or None, outcome decided without a call).
_Entry = tuple[Any, tuple | None, Outcome | None]


def _blame(entries: list[_Entry], index: int, message: str) -> list[_Entry]:
    """``entries`` with the one at ``index`` (clamped) decided as died with ``message``
    (``{op}`` in it becomes the case's operation); the others are to be run again."""
    index = min(max(index, 0), len(entries) - 1)
    item, request, _ = entries[index]
    died = Outcome("died", message=message.replace("{op}", request[0] if request else "?"))
    return entries[:index] + [(item, request, died)] + entries[index + 1:]


def _nbytes(request: tuple) -> int:
    return sum(getattr(a, "nbytes", 0) for a in request[-1].values())


def _death(process: subprocess.Popen | None) -> str:
    if process is None:
        return "worker gone"
    try:
        code = process.wait(5)
    except subprocess.TimeoutExpired:
        return "worker stopped answering"
    if code < 0:
        try:
            return f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with code {code}"


def _environment() -> dict[str, str]:
    """The parent's environment, with its ``sys.path`` first on ``PYTHONPATH`` (so the
    worker finds whatever module the parent could import, a test's plug-in included)."""
    env = dict(os.environ)
    paths = [os.path.abspath(p) for p in sys.path if p] + [env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


# -- the parent's side -----------------------------------------------------------------
class Worker:
    """The claims of the implementation ``spec`` and calls to it, made in a worker process.

    An :class:`conformance.execution.executor.Executor`: it stands for the implementation's
    claims (``name``, ``devices``, ``dtypes``, ``features``, ``reduced_precision``,
    ``describe()``, ``environment()``) and :meth:`stream` runs cases. The worker starts
    loading at construction; reading the claims waits for it (and raises :class:`LoadError`).
    Use as a context manager.
    """

    def __init__(self, spec: str, case_timeout: float = CASE_TIMEOUT):
        if not case_timeout > 0:
            raise ValueError(f"case_timeout={case_timeout!r}: must be a positive number of seconds")
        from implementations.registry import absolute_spec

        # a plug-in file's path is the caller's: the worker gets it absolute
        self.spec, self.case_timeout = spec, float(case_timeout)
        self._load_spec = absolute_spec(spec)
        self._process: subprocess.Popen | None = None
        self._send_conn: Connection | None = None
        self._recv_conn: Connection | None = None
        self._claims: dict[str, Any] | None = None
        self._sequence = 0
        self._death_note = "worker gone"
        fd, self._progress_path = tempfile.mkstemp(prefix="convcert-progress-")
        os.write(fd, _NOT_STARTED)
        os.close(fd)
        self._progress_map: mmap.mmap | None = map_progress(self._progress_path)
        self._spawn()  # loads in the background until the claims are first read

    # -- the implementation's claims -------------------------------------------------
    @property
    def claims(self) -> dict[str, Any]:
        """What the implementation claims, as loaded in the worker (raises LoadError)."""
        if self._claims is None:
            self._claims = self._ready()
        return self._claims

    name = property(lambda self: self.claims["name"])
    devices = property(lambda self: self.claims["devices"])
    dtypes = property(lambda self: self.claims["dtypes"])
    features = property(lambda self: self.claims["features"])
    reduced_precision = property(lambda self: self.claims["reduced_precision"])

    def describe(self) -> dict[str, Any]:
        return dict(self.claims["describe"], isolation="worker process")

    def environment(self) -> dict[str, Any]:
        return self.claims["environment"]

    # -- requests --------------------------------------------------------------------
    def stream(self, items: Iterable[T],
               request_of: Callable[[T], tuple | None]) -> Iterator[tuple[T, Outcome | None]]:
        """``(item, outcome)`` for each item, in order; ``request_of(item)``: ``execute`` arguments, or None.

        Cases go to the worker in batches (up to ``BATCH`` cases or ``BATCH_BYTES``), one
        message each way per batch: on a busy machine every message costs a trip through
        the scheduler. A second batch small enough to wait in the pipe (``AHEAD_BYTES``)
        is sent before the first one's answer, so the worker computes while this process
        judges. The worker marks the case it is running in a shared progress word: when it
        dies or a case runs past the time limit, that case fails with what happened, and
        every other case without an answer goes to a fresh worker.
        """
        queue: deque[_Entry] = deque()  # not sent yet, in order
        sent: deque[tuple[int, list[_Entry]]] = deque()  # (first sequence number, batch), in order
        source = iter(items)
        while True:
            while len(queue) < 2 * BATCH:  # look ahead by two batches
                item = next(source, _END)
                if item is _END:
                    break
                queue.append((item, request_of(item), None))  # type: ignore[arg-type]
            if not sent and not queue:
                return
            if not sent and (queue[0][1] is None or queue[0][2] is not None):
                item, _, decided = queue.popleft()
                yield item, decided
                continue
            while len(sent) < 2 and self._send_batch(queue, sent):
                pass
            if not sent:
                continue
            first, batch = sent.popleft()
            ok, reply = self._receive_batch(first, sent)
            if ok:
                for (item, _, _), outcome in zip(batch, reply, strict=True):
                    yield item, outcome
                continue
            blamed, message = reply
            unanswered = batch + [entry for _, later in sent for entry in later]
            sent.clear()
            queue.extendleft(reversed(_blame(unanswered, blamed - first, message)))

    def _send_batch(self, queue: deque[_Entry], sent: deque[tuple[int, list[_Entry]]]) -> bool:
        """Send the next batch from the head of ``queue``; False when there is none to send now."""
        if not queue or queue[0][1] is None or queue[0][2] is not None:
            return False
        batch: list[_Entry] = []
        size = 0
        while queue and queue[0][1] is not None and queue[0][2] is None and len(batch) < BATCH:
            size += _nbytes(queue[0][1])
            if batch and size > BATCH_BYTES:
                break
            batch.append(queue.popleft())
        payload = pickle.dumps(("batch", (self._sequence, [r for _, r, _ in batch])), _PROTOCOL)
        if sent and len(payload) > AHEAD_BYTES:  # could fill the pipe while the worker writes: wait
            queue.extendleft(reversed(batch))
            return False
        failure = self._send(payload)
        if failure:
            queue.extendleft(reversed(_blame(batch, 0, failure) if not sent else batch))
            return False
        sent.append((self._sequence, batch))
        self._sequence += len(batch)
        return True

    def _receive_batch(self, first: int, later: deque) -> tuple[bool, Any]:
        """(True, outcomes of the batch starting at ``first``), or (False, (sequence number
        of the case that was running, what happened)) after which the worker is gone."""
        conn = self._recv_conn
        if conn is None:  # died while the next batch was being sent
            return False, (max(self._progress(), first), f"{self._death_note} in {{op}}")
        running, since = self._progress(), time.monotonic()
        try:
            while not conn.poll(min(self.case_timeout, PROGRESS_CHECK)):
                if self._progress() != running:
                    running, since = self._progress(), time.monotonic()
                elif time.monotonic() - since > self.case_timeout:
                    self._lost()
                    return False, (max(running, first), f"no answer in {self.case_timeout:g} s in "
                                   "{op}; the worker was stopped")
            return True, conn.recv()
        except (EOFError, OSError):
            message = f"{_death(self._process)} in {{op}}"
            blamed = max(self._progress(), first)
            self._lost()
            return False, (blamed, message)

    def _progress(self) -> int:
        """Sequence number of the case the worker started last (shared memory, no message)."""
        return struct.unpack_from("<q", self._progress_map, 0)[0] if self._progress_map is not None else -1

    def findings(self, device: str, dtype: str) -> dict[str, str]:
        """What the implementation does with NaN and Inf (``behaviour.findings``), in the worker."""
        ok, reply = self._ask(("findings", (device, dtype)), "the NaN/Inf probes")
        return reply if ok else {"NaN/Inf probes": reply}

    def device_problem(self, device: str) -> str | None:
        _, reply = self._ask(("device", (device,)), f"placing a tensor on {device}")
        return reply  # None, why the device is unusable, or what happened to the worker

    def _ask(self, request: tuple, what: str) -> tuple[bool, Any]:
        failure = self._send(pickle.dumps(request, _PROTOCOL))
        return (False, failure.replace("{op}", what)) if failure else self._receive(self.case_timeout, what)

    def _send(self, payload: bytes) -> str | None:
        """Send one request (starting a fresh worker if needed); None, or why it could not be sent
        (with ``{op}`` where the operation's name goes)."""
        try:
            if self._send_conn is None:
                self._spawn()
                claims = self._ready()  # a fresh worker's one ready message
                if self._claims is None:
                    self._claims = claims
            _ = self.claims  # the first request waits for the first load
        except LoadError as exc:
            return f"could not start a fresh worker: {exc}"
        assert self._send_conn is not None
        try:
            self._send_conn.send_bytes(payload)
        except OSError:
            self._death_note = _death(self._process)
            self._lost()
            return f"{self._death_note} before {{op}} started"
        return None

    def _receive(self, timeout: float, what: str) -> tuple[bool, Any]:
        """(True, answer), or (False, what happened) after which the worker is gone."""
        conn = self._recv_conn
        if conn is None:
            return False, f"no worker to answer {what}"
        try:
            if not conn.poll(timeout):
                self._lost()
                return False, f"no answer in {timeout:g} s in {what}; the worker was stopped"
            return True, conn.recv()
        except (EOFError, OSError):
            message = f"{_death(self._process)} in {what}"
            self._lost()
            return False, message

    def _lost(self) -> None:
        self.close(kill=True)

    # -- life cycle ------------------------------------------------------------------
    def _spawn(self) -> None:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, self._load_spec, str(to_worker_r), str(from_worker_w),
                 self._progress_path],
                pass_fds=(to_worker_r, from_worker_w), stdin=subprocess.DEVNULL, env=_environment())
        except OSError as exc:
            for fd in (to_worker_r, to_worker_w, from_worker_r, from_worker_w):
                os.close(fd)
            raise LoadError(f"spec={self.spec!r}: could not start a worker process ({exc})") from None
        os.close(to_worker_r)
        os.close(from_worker_w)
        self._send_conn = Connection(to_worker_w, readable=False)
        self._recv_conn = Connection(from_worker_r, writable=False)

    def _ready(self) -> dict[str, Any]:
        """Wait for the worker to load the implementation; its claims (raises LoadError)."""
        conn, process = self._recv_conn, self._process
        assert conn is not None
        try:
            wait = max(LOAD_TIMEOUT, self.case_timeout)
            if not conn.poll(wait):
                self.close(kill=True)
                raise LoadError(f"spec={self.spec!r}: no answer in {wait:g} s while loading")
            status, reply = conn.recv()
        except (EOFError, OSError):
            message = f"spec={self.spec!r}: {_death(process)} while loading it"
            self.close(kill=True)
            raise LoadError(message) from None
        if status != "ready":
            self.close(kill=True)
            raise LoadError(f"spec={self.spec!r}: {reply}")
        return reply

    def close(self, kill: bool = False) -> None:
        """Stop the worker (politely unless ``kill``); a later request starts a fresh one."""
        process, send, recv = self._process, self._send_conn, self._recv_conn
        self._process = self._send_conn = self._recv_conn = None
        if send is not None:
            if not kill:
                try:
                    send.send(("stop", ()))
                except OSError:
                    pass
            send.close()
        if recv is not None:
            recv.close()
        if process is not None:
            try:
                if kill:
                    process.kill()
                process.wait(5 if kill else 2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def shutdown(self) -> None:
        """Stop the worker for good and remove its progress file."""
        self.close()
        if self._progress_map is not None:
            self._progress_map.close()
            self._progress_map = None
            os.unlink(self._progress_path)

    def __del__(self) -> None:
        if getattr(self, "_progress_map", None) is not None:
            self.shutdown()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
