"""The implementation under certification, in a worker process of its own.

A plug-in can crash the process it runs in (a segfault in native code, ``os._exit``, a
signal) or never return. So the certifier never calls it in its own process: a worker
started with ``python -m conformance.worker`` (the parent's ``sys.path`` as its
``PYTHONPATH``) loads the implementation by its spec and answers requests over a pair of
pipes (run one case, probe NaN/Inf behaviour, try a device). The parent keeps the golden
data, the references and every judgement; the worker only converts, calls and converts
back (:func:`execute`).

When the worker dies or a case runs past its time limit, that case fails with what
happened ("worker killed by SIGSEGV in conv2d", "no answer in 60 s in conv2d"), the worker
is stopped, and the next case starts a fresh one. One worker serves every case until then,
and requests are sent ahead of the answers, so isolation costs one process start plus a
little pickling per case.

The parent's side imports nothing heavy, so a command line can start the worker before
it imports NumPy itself; the worker's side imports NumPy and ``implementations`` only.
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
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np

    from implementations import Implementation

#: Per-case time limit (seconds) unless the caller gives one.
CASE_TIMEOUT = 60.0
#: Time allowed to import and construct the implementation (frameworks import slowly).
LOAD_TIMEOUT = 300.0
#: Most cases and bytes of input arrays in one message to the worker (see ``Worker.stream``).
BATCH, BATCH_BYTES = 32, 8 * 1024 * 1024
#: Seconds between two looks at the worker's progress while a batch runs.
PROGRESS_CHECK = 0.5
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_NOT_STARTED = struct.pack("<q", -1)
#: The worker's command line (not ``-m``: classes must pickle as ``conformance.worker.*``).
_BOOT = "import sys; from conformance.worker import main; main(sys.argv[1:])"
_END = object()
T = TypeVar("T")


class LoadError(RuntimeError):
    """The implementation could not be loaded in a worker process (nothing was judged)."""


# -- what runs in the worker -----------------------------------------------------------
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
    import numpy as np

    from implementations import Unsupported
    from implementations.contract import limit_for

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


def _device_problem(impl: Implementation, device: str) -> str | None:
    """None when ``impl`` can place a tensor on ``device``, else why not."""
    import numpy as np

    try:
        impl.to_numpy(impl.to_device(np.zeros((1, 1, 1, 1), np.float32), device))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _findings(impl: Implementation, device: str, dtype: str) -> dict[str, str]:
    from .behaviour import findings
    from .runner import np_dtype

    return findings(impl, device, np_dtype(dtype))


def _nbytes(request: tuple) -> int:
    return sum(getattr(a, "nbytes", 0) for a in request[-1].values())


def _batch(impl: Implementation, progress: mmap.mmap, first: int, requests: list[tuple]) -> list[Outcome]:
    """Run a batch of cases, marking each one's sequence number in ``progress`` as it starts."""
    outcomes = []
    for i, request in enumerate(requests):
        struct.pack_into("<q", progress, 0, first + i)
        outcomes.append(execute(impl, *request))
    return outcomes


def serve(spec: str, requests: Connection, answers: Connection, progress: mmap.mmap) -> None:
    """Worker main loop: load ``spec``, then answer requests until told to stop or orphaned."""
    from implementations import load

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        impl = load(spec)
        answers.send(("ready", _claims(impl)))
    except (Exception, SystemExit) as exc:
        answers.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    handlers: dict[str, Callable[..., Any]] = {
        "run": lambda *args: execute(impl, *args),
        "batch": lambda first, batch: _batch(impl, progress, first, batch),
        "findings": lambda *args: _findings(impl, *args),
        "device": lambda *args: _device_problem(impl, *args),
    }
    while True:
        try:
            command, args = requests.recv()
        except EOFError:  # the parent went away
            return
        if command == "stop":
            return
        answers.send(handlers[command](*args))


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

    Quacks like the implementation where the suite reads it (``name``, ``devices``,
    ``dtypes``, ``features``, ``reduced_precision``, ``describe()``, ``environment()``);
    :meth:`stream` runs cases. The worker starts loading at construction; reading the
    claims waits for it (and raises :class:`LoadError`). Use as a context manager.
    """

    def __init__(self, spec: str, case_timeout: float = CASE_TIMEOUT):
        if not case_timeout > 0:
            raise ValueError(f"case_timeout={case_timeout!r}: must be a positive number of seconds")
        self.spec, self.case_timeout = spec, float(case_timeout)
        self.restarts = 0
        self._process: subprocess.Popen | None = None
        self._send_conn: Connection | None = None
        self._recv_conn: Connection | None = None
        self._claims: dict[str, Any] | None = None
        self._sequence = 0
        fd, self._progress_path = tempfile.mkstemp(prefix="convcert-progress-")
        os.write(fd, _NOT_STARTED)
        os.close(fd)
        self._progress_map: mmap.mmap | None = _map(self._progress_path)
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
    def execute(self, impl: Any, op: str, uses: frozenset[str], params: Any, device: str, dtype: str,
                arrays: dict) -> Outcome:
        """Run one case in the worker (``impl`` is this proxy and is not sent)."""
        outcome = next(self.stream([(op, uses, params, device, dtype, arrays)], lambda request: request))[1]
        assert outcome is not None
        return outcome

    def stream(self, items: Iterable[T],
               request_of: Callable[[T], tuple | None]) -> Iterator[tuple[T, Outcome | None]]:
        """``(item, outcome)`` for each item, in order; ``request_of(item)``: executor arguments, or None.

        Cases go to the worker in batches (up to ``BATCH`` cases or ``BATCH_BYTES``), one
        message each way per batch: on a busy machine every message costs a trip through
        the scheduler. The worker marks the case it is running in a shared progress word,
        so when it dies or a case runs past the time limit, that case fails with what
        happened, and the rest of the batch goes to a fresh worker.
        """
        queue: deque[tuple[T, tuple | None, Outcome | None]] = deque()  # (item, request, decided outcome)
        source = iter(items)
        while True:
            while len(queue) < BATCH:  # look ahead by one batch
                item = next(source, _END)
                if item is _END:
                    break
                queue.append((item, request_of(item), None))  # type: ignore[arg-type]
            if not queue:
                return
            item, request, decided = queue[0]
            if request is None or decided is not None:
                queue.popleft()
                yield item, decided
                continue
            batch: list[tuple[T, tuple, Outcome | None]] = []
            size = 0
            while queue and queue[0][1] is not None and queue[0][2] is None and len(batch) < BATCH:
                size += _nbytes(queue[0][1])
                if batch and size > BATCH_BYTES:
                    break
                batch.append(queue.popleft())  # type: ignore[arg-type]
            outcomes, failed_at, message = self._run_batch([request for _, request, _ in batch])
            if failed_at is None:
                for (item, _, _), outcome in zip(batch, outcomes, strict=True):
                    yield item, outcome
                continue
            # the case that was running fails; the others run again in a fresh worker, in order
            died = Outcome("died", message=message)
            blamed = (batch[failed_at][0], batch[failed_at][1], died)
            rest = batch[:failed_at] + [blamed] + batch[failed_at + 1:]
            queue.extendleft(reversed(rest))

    def _run_batch(self, requests: list[tuple]) -> tuple[list[Outcome], int | None, str]:
        """(outcomes, None, "") or ([], index of the case that failed, what happened)."""
        failure = self._send(pickle.dumps(("batch", (self._sequence, requests)), _PROTOCOL))
        first = self._sequence
        self._sequence += len(requests)
        if failure:
            return [], 0, failure
        conn = self._recv_conn
        assert conn is not None
        running, since = -1, time.monotonic()
        try:
            while not conn.poll(min(self.case_timeout, PROGRESS_CHECK)):
                now_running = self._progress() - first
                if now_running != running:
                    running, since = now_running, time.monotonic()
                elif time.monotonic() - since > self.case_timeout:
                    index = min(max(running, 0), len(requests) - 1)
                    self._lost()
                    return [], index, (f"no answer in {self.case_timeout:g} s in {requests[index][0]}; "
                                       "the worker was stopped")
            return conn.recv(), None, ""
        except (EOFError, OSError):
            index = min(max(self._progress() - first, 0), len(requests) - 1)
            message = f"{_death(self._process)} in {requests[index][0]}"
            self._lost()
            return [], index, message

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
        return (False, failure) if failure else self._receive(self.case_timeout, what)

    def _send(self, payload: bytes) -> str | None:
        """Send one request (starting a fresh worker if needed); None, or why it could not be sent."""
        try:
            if self._send_conn is None:
                self._spawn()
                self._ready()
            _ = self.claims  # the first request waits for the first load
        except LoadError as exc:
            return f"could not start a fresh worker: {exc}"
        assert self._send_conn is not None
        try:
            self._send_conn.send_bytes(payload)
        except OSError:
            message = f"{_death(self._process)} before the request"
            self._lost()
            return message
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
        self.restarts += 1

    # -- life cycle ------------------------------------------------------------------
    def _spawn(self) -> None:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, self.spec, str(to_worker_r), str(from_worker_w),
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
            if not conn.poll(max(LOAD_TIMEOUT, self.case_timeout)):
                self.close(kill=True)
                raise LoadError(f"spec={self.spec!r}: no answer in {LOAD_TIMEOUT:g} s while loading")
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


def _map(path: str) -> mmap.mmap:
    with open(path, "r+b") as f:
        return mmap.mmap(f.fileno(), 8)


def main(argv: list[str]) -> None:
    """Worker entry point: ``SPEC READ_FD WRITE_FD PROGRESS_FILE`` (started by :class:`Worker`)."""
    spec, read_fd, write_fd, progress = argv
    serve(spec, Connection(int(read_fd), writable=False), Connection(int(write_fd), readable=False),
          _map(progress))
