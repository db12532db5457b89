"""The implementation under certification, in a worker process of its own.

A plug-in can crash the process it runs in (a segfault in native code, ``os._exit``, a
signal), never return, flood the memory, fork children, print over the certifier's output,
or try to forge its answers. So the certifier never calls it in its own process: a worker
started with ``python -c`` (the parent's ``sys.path`` as its ``PYTHONPATH``) in a session of
its own, under a memory limit, with its output in a log file, loads the implementation by
its spec and answers requests over a pair of pipes (run cases, probe NaN/Inf behaviour, try
a device). The parent keeps the golden data, the references and every judgement; the worker
only converts, calls and converts back (:func:`conformance.execution.call.execute`), and
what it sends back is parsed as numbers, never unpickled (:mod:`.protocol`).

The worker answers each case as soon as it has run, so the parent times every case on its
own clock: a case with no answer after the time limit fails ("no answer in 60 s in
conv2d"), as does one whose worker dies ("worker killed by SIGSEGV in conv2d") or sends a
malformed answer; every process of the worker is then killed (:mod:`.reaper`: detached
daemons included) and the next case starts a fresh one. After ``breaker`` such failures in a
row in one operation, that operation's remaining cases are failed without being run; after
``breaker`` timeouts in a row, in every stage of the run (the worker object lives as long as
the run). Cases travel in batches, so
isolation costs one process start plus a little copying per case.

Resources: the worker may use ``max_memory`` bytes of *resident* memory (its processes
together, watched here while a case runs): address space merely reserved (thread stacks,
arenas, a large ``mmap`` never touched) does not count. A call the machine refuses (memory,
a thread, a file: ``MemoryError``, ``EAGAIN``, ``ENOMEM``, ``EMFILE``) or that goes over
the limit is run again in a fresh worker; refused again, its outcome is ``refused`` (the case
could not run), never a failed feature. Text from the plug-in is bounded and cleaned
(:func:`.protocol.clean_text`), at most ``MESSAGES`` messages per operation are kept in
full, and its log is cut at ``LOG_BYTES`` with a note. This module imports nothing heavy
beyond NumPy, so a command line can start the worker before it imports the rest of the suite.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from implementations.contract import check_claims

from . import reaper
from .protocol import MalformedAnswer, Outcome, decode_json, decode_outcome

#: Per-case time limit (seconds) unless the caller gives one.
CASE_TIMEOUT = 60.0
#: Time allowed to import and construct the implementation (frameworks import slowly).
LOAD_TIMEOUT = 300.0
#: Most cases and bytes of input arrays in one message to the worker, and the largest
#: message sent ahead of an answer (it must fit in a pipe's buffer; see ``Worker.stream``).
BATCH, BATCH_BYTES, AHEAD_BYTES = 32, 8 * 1024 * 1024, 32 * 1024
#: Timeouts or crashes in a row in one operation after which its other cases are not run.
BREAKER = 3
#: Messages from the plug-in kept in full per operation; later ones are shortened to ``SHORT``.
MESSAGES, SHORT = 50, 200
#: Most bytes kept of the plug-in's log (its output); the rest is cut, with a note at the end.
LOG_BYTES = 4 * 1024 * 1024
#: Seconds between two looks at the worker's resident memory while a case runs.
WATCH_EVERY = 0.1
_PROTOCOL = pickle.HIGHEST_PROTOCOL
#: The folder holding this installation's packages: the worker imports them from there first,
#: whatever its working folder holds, before the plug-in's folder goes on ``sys.path``.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BOOT = (f"import sys; sys.path.insert(0, {_ROOT!r}); import implementations, conformance.execution.serve; "
         "sys.path.pop(0); conformance.execution.serve.main(sys.argv[1:])")
_END = object()
T = TypeVar("T")


class LoadError(RuntimeError):
    """The implementation could not be loaded in a worker process (nothing was judged)."""


def default_max_memory() -> int:
    """A quarter of this machine's physical memory (at least 1 GiB): the default memory limit."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return max(total // 4, 1 << 30)


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


_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="convcert-spawner")


def _popen(*args: Any, **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen`` from the main thread or from one thread that lives as long as this
    process: a worker asks Linux to kill it when the thread that started it ends (``serve``'s
    ``PR_SET_PDEATHSIG`` follows the thread, not the process), so a worker started from a thread
    that ends first (a :class:`~.pool.WorkerPool`'s, which restarts its worker after a crash)
    would be killed with it."""
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(*args, **kwargs)
    return _SPAWNER.submit(subprocess.Popen, *args, **kwargs).result()


def _kill_all(process: subprocess.Popen | None, token: str) -> None:
    """Kill every process of the worker (:func:`.reaper.kill_tree`: its tree, its process group,
    and the orphans that came back to this process) and reap them: none runs on return."""
    def reap() -> None:
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
            pass

    root = process.pid if process is not None and process.poll() is None else None  # (a reaped pid is reused)
    reaper.kill_tree(root, token, reap)


def _limits(claims: dict[str, Any]) -> list[dict[str, Any]]:
    """The declared limits of a ready message, each field checked (raises ValueError)."""
    limits = claims.get("limits")
    if not isinstance(limits, list):
        raise ValueError(f"limits: {limits!r} is not a list")
    for lim in limits:
        ok = isinstance(lim, dict) and isinstance(lim.get("reason"), str) and all(
            isinstance(lim.get(k), list) and all(isinstance(v, str) for v in lim[k])
            for k in ("ops", "features", "dtypes", "devices"))
        if not ok:
            raise ValueError(f"limits: {lim!r:.200} is not a limit")
    return limits


def _claims(reply: Any) -> dict[str, Any]:
    """The worker's ready message as claims, each field checked (raises ValueError)."""
    claims = reply.get("claims") if isinstance(reply, dict) else None
    if not isinstance(claims, dict):
        raise ValueError(f"ready message {reply!r}")
    check_claims(claims.get("name"), claims.get("devices"), claims.get("dtypes"), claims.get("features"),
                 claims.get("reduced_precision"))
    for key in ("describe", "environment"):
        if not isinstance(claims.get(key), dict):
            raise ValueError(f"{key}: {claims.get(key)!r:.200} is not a mapping")
    return dict(claims, limits=_limits(claims), devices=tuple(claims["devices"]),
                dtypes=tuple(claims["dtypes"]), features=frozenset(claims["features"]),
                reduced_precision=dict(claims["reduced_precision"]))


class Worker:
    """The claims of the implementation ``spec`` and calls to it, made in a worker process.

    An :class:`conformance.execution.executor.Executor`: it stands for the implementation's
    claims (``name``, ``devices``, ``dtypes``, ``features``, ``reduced_precision``,
    ``describe()``, ``environment()``) and :meth:`stream` runs cases. The worker starts
    loading at construction; reading the claims waits for it (and raises :class:`LoadError`).
    Its output goes to ``log`` (a temporary file unless given). ``max_memory`` bytes bound
    its resident memory (default :func:`default_max_memory`). Use as a context manager.
    """

    def __init__(self, spec: str, case_timeout: float = CASE_TIMEOUT, *, log: str | Path | None = None,
                 max_memory: int | None = None, breaker: int = BREAKER):
        if not case_timeout > 0:
            raise ValueError(f"case_timeout={case_timeout!r}: must be a positive number of seconds")
        from implementations.registry import absolute_spec

        self.spec, self.case_timeout, self.breaker = spec, float(case_timeout), breaker
        self._load_spec = absolute_spec(spec)  # a plug-in file's path is the caller's: made absolute
        self.max_memory = max_memory or default_max_memory()
        self._own_log = log is None
        if log is None:
            fd, name = tempfile.mkstemp(prefix="convcert-worker-", suffix=".log")
            os.close(fd)
            log = name
        self.log_path = Path(log)
        self._process: subprocess.Popen | None = None
        self._send_conn: Connection | None = None
        self._recv_conn: Connection | None = None
        self._claims: dict[str, Any] | None = None
        self._since = time.monotonic()  # when the case the worker runs now started
        self._hung: dict[str, int] = {}  # op -> timeouts or crashes in a row, in this stream
        self._timeouts: dict[str, int] = {}  # op -> timeouts in a row, over the whole run
        self._timed_out = False  # whether the last case answered ran out of time
        #: op -> times a worker was lost (timeout, crash, malformed answer, memory) in that operation
        self.losses: dict[str, int] = {}
        self._messages: dict[str, int] = {}  # op -> messages kept in full
        self._log_cut = 0  # bytes of the plug-in's log cut so far
        #: Set by :meth:`retire`: no fresh worker starts until the next stream begins.
        self.retired = False
        self._token = os.urandom(8).hex()  # in every worker process's environment (reaper.TOKEN)
        self._subreaper = reaper.make_subreaper()  # orphans of a dead worker come back here
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

    limits = property(lambda self: self.claims["limits"])

    @property
    def isolation(self) -> str:
        """Which isolation the worker has here (recorded in the certificate)."""
        return reaper.ISOLATION if self._subreaper else "worker process, process group"

    def describe(self) -> dict[str, Any]:
        return dict(self.claims["describe"], isolation=self.isolation, log=str(self.log_path),
                    memory_limit=f"{self.max_memory / 2**30:.3g} GiB resident")

    def environment(self) -> dict[str, Any]:
        return self.claims["environment"]

    # -- requests --------------------------------------------------------------------
    def stream(self, items: Iterable[T],
               request_of: Callable[[T], tuple | None]) -> Iterator[tuple[T, Outcome | None]]:
        """``(item, outcome)`` for each item, in order; ``request_of(item)``: ``execute`` arguments, or None.

        Cases go to the worker in batches (up to ``BATCH`` cases or ``BATCH_BYTES``): on a
        busy machine every message costs a trip through the scheduler. A second batch small
        enough to wait in the pipe (``AHEAD_BYTES``) is sent before the first one's answers,
        so the worker computes while this process judges. Answers come one per case, timed
        here; when the worker is lost, every case without an answer goes to a fresh worker.
        The circuit breaker (``breaker`` timeouts or crashes in a row in one operation) counts
        within one stream, and for timeouts over every stream of this worker object: an operation
        that hangs is failed unrun in every later stage too (each hang costs a whole timeout; a
        crash only a fresh worker, and a shrinker must see what a crash does). A case the
        machine refused is run once more, in a fresh worker.
        """
        return self.outcomes(items, request_of, self._kept)

    def outcomes(self, items: Iterable[T], request_of: Callable[[T], tuple | None],
                 kept: Callable[[str, Outcome], Outcome],
                 ahead: int = 2 * BATCH) -> Iterator[tuple[T, Outcome | None]]:
        """:meth:`stream`, each answer passed through ``kept(op, outcome)`` (what :meth:`stream`
        keeps of the plug-in's messages; a :class:`~.pool.WorkerPool` keeps them in its own order),
        reading at most ``ahead`` items of ``items`` before they are sent."""
        self.retired = False
        self._hung = {}
        retried: set[int] = set()  # ids of the requests refused once
        queue: deque[list] = deque()  # [item, request, decided outcome], not sent yet, in order
        flight: deque[list] = deque()  # sent, awaiting answers, in order
        batches: deque[int] = deque()  # cases of each batch in flight
        source = iter(items)
        while True:
            while len(queue) < ahead:  # look ahead (by two batches)
                item = next(source, _END)
                if item is _END:
                    break
                queue.append([item, request_of(item), None])  # type: ignore[arg-type]
            self._trip(queue)
            if not flight and not queue:
                return
            if not flight and (queue[0][1] is None or queue[0][2] is not None):
                item, _, decided = queue.popleft()
                yield item, decided
                continue
            while len(batches) < 2 and self._send_batch(queue, flight, batches):
                pass
            if not flight:
                continue
            item, request, _ = flight.popleft()
            outcome = self._answer(request[0])
            batches[0] -= 1
            if not batches[0]:
                batches.popleft()
            if outcome.kind == "refused" and id(request) not in retried:
                retried.add(id(request))  # the machine refused: once more, in a fresh worker
                self._lost()
                queue.extendleft(reversed(flight))
                queue.appendleft([item, request, None])
                flight.clear()
                batches.clear()
                continue
            if self._recv_conn is None:  # the worker is gone: the rest go to a fresh one
                queue.extendleft(reversed(flight))
                flight.clear()
                batches.clear()
            self._count(request[0], outcome)
            yield item, kept(request[0], outcome)

    def _trip(self, queue: deque[list]) -> None:
        """Decide, without running them, the queued cases of an operation that hung too often."""
        for entry in queue:
            request = entry[1]
            if request is not None and entry[2] is None and self._tripped(request[0]):
                entry[2] = Outcome("died", message=f"not run: {request[0]} hung or crashed {self.breaker} "
                                                   "times in a row")

    def _count(self, op: str, outcome: Outcome) -> None:
        self._hung[op] = self._hung.get(op, 0) + 1 if outcome.kind == "died" else 0
        self._timeouts[op] = self._timeouts.get(op, 0) + 1 if self._timed_out else 0

    def _tripped(self, op: str) -> bool:
        """Whether ``op`` hung or crashed ``breaker`` times in a row: in this stream, or (hangs,
        which cost a whole timeout each) anywhere in the run."""
        return max(self._hung.get(op, 0), self._timeouts.get(op, 0)) >= self.breaker

    def _kept(self, op: str, outcome: Outcome) -> Outcome:
        """``outcome`` with its message shortened once ``MESSAGES`` of ``op`` were kept in full
        (a declared limit's reason is never shortened: it must match the declaration)."""
        if outcome.message and outcome.kind not in ("ok", "limited"):
            kept = self._messages[op] = self._messages.get(op, 0) + 1
            if kept > MESSAGES and len(outcome.message) > SHORT:
                outcome.message = (f"{outcome.message[:SHORT]} [... cut by convcert: {MESSAGES} messages of "
                                   f"{op} are kept in full]")
        return outcome

    def _cap_log(self) -> None:
        """Cut the plug-in's log back to ``LOG_BYTES`` (the worker appends, so it goes on after the cut)."""
        try:
            size = self.log_path.stat().st_size
            if size > LOG_BYTES:
                os.truncate(self.log_path, LOG_BYTES)
                self._log_cut += size - LOG_BYTES
        except OSError:
            pass

    def _send_batch(self, queue: deque[list], flight: deque[list], batches: deque[int]) -> bool:
        """Send the next batch from the head of ``queue``; False when there is none to send now."""
        batch: list[list] = []
        size = 0
        while queue and queue[0][1] is not None and queue[0][2] is None and len(batch) < BATCH:
            size += _nbytes(queue[0][1])
            if batch and size > BATCH_BYTES:
                break
            batch.append(queue.popleft())
        if not batch:
            return False
        payload = pickle.dumps(("batch", [request for _, request, _ in batch]), _PROTOCOL)
        if flight and len(payload) > AHEAD_BYTES:  # could fill the pipe while the worker writes: wait
            queue.extendleft(reversed(batch))
            return False
        failure = self._send(payload, lose=not flight)  # (cases in flight: their answers come first)
        if failure:
            queue.extendleft(reversed(batch))
            if not flight:  # nothing else can explain it: the first case is the one that failed
                queue[0][2] = Outcome("died", message=failure.replace("{op}", batch[0][1][0]))
            return False
        if not flight:
            self._since = time.monotonic()
        flight.extend(batch)
        batches.append(len(batch))
        return True

    def _answer(self, op: str) -> Outcome:
        """The outcome of the case the worker runs now, timed from when it started; a
        timeout, death or malformed answer loses the worker and is that case's outcome."""
        self._timed_out = False
        outcome = self._receive(op)
        self._cap_log()
        if outcome.kind in ("died", "refused"):
            self.losses[op] = self.losses.get(op, 0) + 1
        return outcome

    def _poll(self, conn: Connection, deadline: float) -> int | None:
        """Wait until the worker answers (0) or ``deadline`` passes (None), watching its resident
        memory (the worker is a subreaper: its tree holds every process of the plug-in); the
        bytes in use when over ``max_memory``. The worker is stopped unless it answered."""
        step = 0.02  # most cases answer within milliseconds: look at the memory only after that
        while not conn.poll(max(min(deadline - time.monotonic(), step), 0.0)):
            if time.monotonic() >= deadline:
                self._lost()
                self._timed_out = True
                return None
            process = self._process
            used = 0 if process is None else reaper.resident_bytes(reaper.tree(process.pid))
            if used > self.max_memory:
                self._lost()
                return used
            step = WATCH_EVERY
        return 0

    def _over(self, used: int, where: str) -> str:
        return (f"the worker used {used / 2**30:.2f} GiB of memory {where}, above the limit of "
                f"{self.max_memory / 2**30:.2f} GiB (--max-memory); it was stopped")

    def _wait(self, conn: Connection, op: str) -> Outcome | None:
        """Wait for the worker's answer until the case's time is up; None when an answer is
        there, else the outcome (the worker was stopped)."""
        used = self._poll(conn, self._since + self.case_timeout)
        if used is None:
            return Outcome("died", message=f"no answer in {self.case_timeout:g} s in {op}; "
                                           "the worker was stopped")
        return Outcome("refused", message=self._over(used, f"in {op}")) if used else None

    def _receive(self, op: str) -> Outcome:
        conn, process = self._recv_conn, self._process
        if conn is None:
            return Outcome("died", message=f"worker gone before {op} started")
        try:
            stopped = self._wait(conn, op)
            if stopped is not None:
                return stopped
            data = conn.recv_bytes(self.max_memory)
            self._since = time.monotonic()
            return decode_outcome(data)
        except EOFError:
            message = f"{_death(process)} in {op}"
        except OSError as exc:  # a message longer than the memory limit, or a broken pipe
            message = (f"{_death(process)} in {op}" if process is None or process.poll() is not None
                       else f"the worker sent a malformed answer in {op} ({exc}); it was restarted")
        except MalformedAnswer as exc:
            message = f"the worker sent a malformed answer in {op} ({exc}); it was restarted"
        self._lost()
        return Outcome("died", message=message)

    def findings(self, device: str, dtype: str) -> dict[str, str]:
        """What the implementation does with NaN and Inf (``probes.findings``), in the worker; an
        operation the circuit breaker stopped is not called."""
        skip = {op: f"not run: {op} hung or crashed {self.breaker} times in a row"
                for op in {*self._hung, *self._timeouts} if self._tripped(op)}
        ok, reply = self._ask(("findings", (device, dtype, skip)), "the NaN/Inf probes")
        if ok and not (isinstance(reply, dict) and all(isinstance(v, str) for v in reply.values())):
            ok, reply = False, f"a malformed answer to the NaN/Inf probes: {reply!r:.200}"
        return reply if ok else {"NaN/Inf probes": reply}

    def device_problem(self, device: str) -> str | None:
        ok, reply = self._ask(("device", (device,)), f"placing a tensor on {device}")
        if ok and not (reply is None or isinstance(reply, str)):
            return f"a malformed answer while placing a tensor on {device}: {reply!r:.200}"
        return reply  # None, why the device is unusable, or what happened to the worker

    def _ask(self, request: tuple, what: str) -> tuple[bool, Any]:
        """(True, the worker's JSON answer), or (False, what happened) after which the worker is gone."""
        failure = self._send(pickle.dumps(request, _PROTOCOL))
        if failure:
            return False, failure.replace("{op}", what)
        conn, process = self._recv_conn, self._process
        assert conn is not None
        try:
            if not conn.poll(self.case_timeout):
                self._lost()
                return False, f"no answer in {self.case_timeout:g} s in {what}; the worker was stopped"
            return True, decode_json(conn.recv_bytes(self.max_memory))
        except (EOFError, OSError):
            message = f"{_death(process)} in {what}"
        except MalformedAnswer as exc:
            message = f"the worker sent a malformed answer in {what} ({exc})"
        self._lost()
        return False, message

    def _send(self, payload: bytes, lose: bool = True) -> str | None:
        """Send one request (starting a fresh worker if needed); None, or why it could not be sent
        (with ``{op}`` where the operation's name goes). Without ``lose``, a worker that cannot be
        sent to is kept until the answers it already wrote are read (its end of file then names
        the case it died in)."""
        if self._send_conn is None and self.retired:
            return "the stream was stopped before {op} started"
        try:
            self.load()
        except LoadError as exc:
            return f"could not start a fresh worker: {exc}"
        assert self._send_conn is not None
        try:
            self._send_conn.send_bytes(payload)
        except OSError:
            if not lose:
                return "the worker stopped reading before {op} was sent"
            message = _death(self._process)
            self._lost()
            return f"{message} before {{op}} started"
        return None

    def load(self) -> dict[str, Any]:
        """The claims, once the worker has loaded (a fresh one started if it is not running; raises
        LoadError)."""
        if self._send_conn is None:
            self._spawn()
            if self.retired:  # retired while it started (from another thread): it must not run
                self.close(kill=True)
                raise LoadError(f"spec={self.spec!r}: stopped while starting")
            claims = self._ready()  # a fresh worker's one ready message
            if self._claims is None:
                self._claims = claims
        return self.claims  # the first request waits for the first load

    def _lost(self) -> None:
        self.close(kill=True)

    def retire(self) -> None:
        """Stop the worker now (from another thread, say) and start no fresh one before the next
        stream: the cases its current stream still holds end at once, unrun."""
        self.retired = True
        self.close(kill=True)

    # -- life cycle ------------------------------------------------------------------
    def _spawn(self) -> None:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        try:
            with open(self.log_path, "ab") as log:
                self._process = _popen(
                    [sys.executable, "-c", _BOOT, self._load_spec, str(to_worker_r), str(from_worker_w),
                     str(self.max_memory)],
                    pass_fds=(to_worker_r, from_worker_w), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    env=dict(_environment(), **{reaper.TOKEN: self._token}), start_new_session=True)
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
            used = self._poll(conn, time.monotonic() + wait)
            if used is None:
                raise LoadError(f"spec={self.spec!r}: no answer in {wait:g} s while loading")
            if used:
                raise LoadError(f"spec={self.spec!r}: {self._over(used, 'while loading')}")
            reply = decode_json(conn.recv_bytes(self.max_memory))
        except (EOFError, OSError):
            message = f"spec={self.spec!r}: {_death(process)} while loading it"
            self.close(kill=True)
            raise LoadError(message) from None
        except MalformedAnswer as exc:
            self.close(kill=True)
            raise LoadError(f"spec={self.spec!r}: a malformed answer while loading ({exc})") from None
        if isinstance(reply, dict) and reply.get("status") == "error":
            self.close(kill=True)
            raise LoadError(f"spec={self.spec!r}: {reply.get('message')}")
        try:
            return _claims(reply)
        except ValueError as exc:
            self.close(kill=True)
            raise LoadError(f"spec={self.spec!r}: {exc}") from None

    def close(self, kill: bool = False) -> None:
        """Stop the worker (politely unless ``kill``) and everything it started; a later
        request starts a fresh one."""
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
        if process is not None and not kill:
            try:
                process.wait(2)
            except subprocess.TimeoutExpired:
                pass
        # every process of the worker, detached ones included (also after the worker itself ended)
        _kill_all(process, self._token)
        self._cap_log()
        if self._log_cut and not self._process:
            try:
                with open(self.log_path, "ab") as log:
                    log.write(f"\n[convcert: {self._log_cut} bytes of the plug-in's output were cut "
                              f"after the first {LOG_BYTES}]\n".encode())
                self._log_cut = 0
            except OSError:
                pass

    def shutdown(self) -> None:
        """Stop the worker for good (and remove its log when it is an empty temporary file)."""
        self.close()
        if self._own_log and self.log_path.exists() and not self.log_path.stat().st_size:
            self.log_path.unlink(missing_ok=True)

    def __del__(self) -> None:
        if getattr(self, "_process", None) is not None:
            self.close(kill=True)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
