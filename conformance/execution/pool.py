"""One certification's cases spread over several worker processes.

A certification of a slow implementation (JAX compiles a program for every geometry,
operation and dtype) spends nearly all its time in its worker while this process waits. A
:class:`WorkerPool` stands where a :class:`~.worker.Worker` does (the same claims, the same
:meth:`~WorkerPool.stream`) and runs a stream of cases in several workers at once: each
worker is a :class:`~.worker.Worker` of its own (its own process, isolation, memory limit,
time limit, reaper and circuit breaker) taking the next case whenever it can, and the
outcomes come back in the order of the stream. Every case still runs exactly once, so the
certificate (statuses, coverage digests, calls per operation) is the one a single worker
gives; the plug-in's messages are shortened (``worker.MESSAGES``) in the stream's order too.
What differs: the circuit breaker counts the crashes and hangs in a row of each worker, and
every worker writes to the same log.

How many workers: a number (the first is the pool's own; the others, its helpers, start once
a stream has run ``GROW_AFTER`` seconds, so a certification whose cases take milliseconds
never starts one, and live until the pool closes), or :class:`Slots` shared by the
certifications a matrix runs side by side, from which a pool takes a helper only when no
certification waits for one (the last implementations of a matrix get the cores the finished
ones left).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from implementations.host import usable_cores

from .protocol import Outcome
from .worker import LoadError, Worker, default_max_memory

T = TypeVar("T")
#: Seconds between two looks at whether a pool may start another worker.
GROW_EVERY = 0.5
#: Seconds a stream runs in the workers the pool has before it starts another: a certification
#: whose cases take milliseconds (most of them) never pays for a second worker's start.
GROW_AFTER = 2.0
#: Cases each worker of a pool takes ahead of those it runs (few: the last cases of a stream
#: are then shared out evenly, where a single worker reads ahead by two batches).
AHEAD = 4
#: Most cases answered or taken but not yet handed on in order (a bound on the outputs held here
#: while the caller judges, as a single worker's two batches ahead are).
WINDOW = 64
#: Memory one worker process beside others may need (its plug-in, and this process's judging).
MEMORY_PER_WORKER = 3 << 30


def default_workers() -> int:
    """Worker processes side by side by default: one per usable core, as many as memory allows."""
    return max(1, min(usable_cores(), default_max_memory() * 4 // MEMORY_PER_WORKER))


class Slots:
    """Worker processes that certifications side by side may use together (``total``).

    Each certification holds one slot while it runs (:meth:`begin`, :meth:`end`); ``waiting``
    counts those not started yet. A pool takes a further slot (:meth:`take`) only while none
    waits and one is free, and gives it back when its certification ends (:meth:`give_back`).
    """

    def __init__(self, total: int, waiting: int = 0):
        if total < 1:
            raise ValueError(f"total={total}: must be >= 1")
        self.total, self.waiting, self.busy = total, waiting, 0
        self.lock = threading.Lock()

    def begin(self) -> None:
        with self.lock:
            self.waiting, self.busy = max(self.waiting - 1, 0), self.busy + 1

    def skip(self) -> None:
        """One that was waiting will not run (unavailable)."""
        with self.lock:
            self.waiting = max(self.waiting - 1, 0)

    def end(self) -> None:
        with self.lock:
            self.busy -= 1

    def take(self) -> bool:
        """A further slot for a running certification's pool: True when one was free and none waits."""
        with self.lock:
            if self.waiting or self.busy >= self.total:
                return False
            self.busy += 1
            return True

    def give_back(self, count: int) -> None:
        with self.lock:
            self.busy -= count


class _Stopped(Exception):
    """The stream was closed or failed: a worker's thread takes no further case."""


@dataclass
class _Run:
    """One parallel stream: its source (read under ``pull``), the outcomes by position, and how it ends."""

    source: Iterator[Any]
    pull: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Condition = field(default_factory=threading.Condition)
    started: float = field(default_factory=time.monotonic)
    pulled: int = 0  # items taken from the source (under ``pull``)
    handed: int = 0  # outcomes handed on in order
    exhausted: bool = False
    stop: bool = False
    running: int = 0  # worker threads not finished
    error: BaseException | None = None
    outcomes: dict[int, tuple[Any, Outcome | None]] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)


class WorkerPool:
    """The implementation ``primary`` runs, its cases spread over up to ``workers`` worker processes
    (a number, or :class:`Slots` shared with other certifications); see the module docstring.
    Closing the pool closes every worker and ends the helpers (their slots given back)."""

    def __init__(self, primary: Worker, workers: int | Slots = 1):
        if isinstance(workers, int) and workers < 1:
            raise ValueError(f"workers={workers}: must be >= 1")
        self.primary, self.workers = primary, workers
        self.helpers: list[Worker] = []
        self.most = 1  # the most workers it had at once
        self._lock = threading.Lock()

    # -- what a Worker stands for: the primary's claims ---------------------------------
    spec = property(lambda self: self.primary.spec)
    case_timeout = property(lambda self: self.primary.case_timeout)
    max_memory = property(lambda self: self.primary.max_memory)
    log_path = property(lambda self: self.primary.log_path)
    claims = property(lambda self: self.primary.claims)
    name = property(lambda self: self.primary.name)
    devices = property(lambda self: self.primary.devices)
    dtypes = property(lambda self: self.primary.dtypes)
    features = property(lambda self: self.primary.features)
    reduced_precision = property(lambda self: self.primary.reduced_precision)
    limits = property(lambda self: self.primary.limits)
    isolation = property(lambda self: self.primary.isolation)

    def describe(self) -> dict[str, Any]:
        return self.primary.describe()

    def environment(self) -> dict[str, Any]:
        return self.primary.environment()

    def findings(self, device: str, dtype: str) -> dict[str, str]:
        return self.primary.findings(device, dtype)

    def device_problem(self, device: str) -> str | None:
        return self.primary.device_problem(device)

    @property
    def size(self) -> int:
        """Workers the pool has now (its own and its helpers)."""
        return 1 + len(self.helpers)

    # -- cases --------------------------------------------------------------------------
    def stream(self, items: Iterable[T],
               request_of: Callable[[T], tuple | None]) -> Iterator[tuple[T, Outcome | None]]:
        """``(item, outcome)`` for each item, in order (as ``Worker.stream``), run by every worker
        the pool may use; a stream of one case, or a pool that may use one worker, runs in the first."""
        source = iter(items)
        head = list(itertools.islice(source, 2))
        if len(head) < 2 or (not self.helpers and isinstance(self.workers, int) and self.workers == 1):
            return self.primary.stream(itertools.chain(head, source), request_of)
        return self._parallel(itertools.chain(head, source), request_of)

    def _may_grow(self, run: _Run) -> bool:
        if run.exhausted or run.stop or time.monotonic() - run.started < GROW_AFTER:
            return False
        if isinstance(self.workers, int):
            return self.size < self.workers
        with self.workers.lock:
            return not self.workers.waiting and self.workers.busy < self.workers.total

    def _grow(self, run: _Run, request_of: Callable[[Any], tuple | None]) -> None:
        """Start the helpers the pool may have now, each on the stream."""
        while self._may_grow(run):
            with self._lock:
                if isinstance(self.workers, int):
                    if self.size >= self.workers:
                        return
                elif not self.workers.take():
                    return
                helper = Worker(self.primary.spec, self.primary.case_timeout, log=self.primary.log_path,
                                max_memory=self.primary.max_memory, breaker=self.primary.breaker)
                self.helpers.append(helper)
                self.most = max(self.most, self.size)
            self._start(helper, run, request_of)

    def _start(self, worker: Worker, run: _Run, request_of: Callable[[Any], tuple | None]) -> None:
        with run.done:
            run.running += 1
        thread = threading.Thread(target=self._drive, args=(worker, run, request_of), daemon=True,
                                  name=f"convcert-pool-{len(run.threads)}")
        run.threads.append(thread)
        thread.start()

    def _parallel(self, items: Iterator[T],
                  request_of: Callable[[T], tuple | None]) -> Iterator[tuple[T, Outcome | None]]:
        run = _Run(items)
        for worker in (self.primary, *self.helpers):
            self._start(worker, run, request_of)
        self._grow(run, request_of)
        at, finished = 0, False
        try:
            while True:
                with run.done:
                    while at not in run.outcomes and run.running and run.error is None:
                        run.done.wait(GROW_EVERY)
                        if at not in run.outcomes and self._may_grow(run):
                            break
                    got = run.outcomes.pop(at, None)
                    if got is None:
                        if run.error is not None:
                            raise run.error
                        if not run.running:
                            if at < run.pulled:
                                raise RuntimeError(f"the worker pool lost the outcome of case {at + 1}")
                            finished = True
                            return
                if got is None:
                    self._grow(run, request_of)
                    continue
                item, outcome = got
                request = request_of(item)
                if outcome is not None and request is not None:
                    outcome = self.primary._kept(request[0], outcome)
                yield item, outcome
                at += 1
                with run.done:
                    run.handed = at
                    run.done.notify_all()
        finally:
            if not finished:
                self._stop(run)
            for thread in run.threads:
                thread.join()
            for worker in (self.primary, *self.helpers):
                worker.retired = False

    def _drive(self, worker: Worker, run: _Run, request_of: Callable[[Any], tuple | None]) -> None:
        """One worker's share of the stream: the next case whenever it can take one."""
        held = [0]  # cases this worker took and has not answered

        def feed() -> Iterator[tuple[int, Any]]:
            while True:
                with run.done:  # a worker holding no case waits while the caller catches up
                    while not held[0] and run.pulled - run.handed >= WINDOW and not run.stop:
                        run.done.wait(GROW_EVERY)
                with run.pull:  # (never held while waiting: the others take their next case meanwhile)
                    if run.stop:
                        raise _Stopped
                    item = next(run.source, _END)
                    if item is _END:
                        run.exhausted = True
                        return
                    at = run.pulled
                    run.pulled += 1
                    held[0] += 1
                yield at, item

        try:
            if worker is not self.primary:
                try:
                    worker.load()  # a helper that cannot load takes no case
                except LoadError:
                    return
            for (at, item), outcome in worker.outcomes(feed(), lambda entry: request_of(entry[1]),
                                                       lambda op, outcome: outcome, AHEAD):
                held[0] -= 1
                with run.done:
                    run.outcomes[at] = (item, outcome)
                    run.done.notify_all()
        except _Stopped:
            worker.close(kill=True)  # its cases in flight are not wanted
        except BaseException as exc:  # the stream's own source failed, say: the stream fails with it
            with run.done:
                run.error = run.error or exc
                run.stop = True
                run.done.notify_all()
            worker.close(kill=True)
        finally:
            with run.done:
                run.running -= 1
                run.done.notify_all()

    def _stop(self, run: _Run) -> None:
        """End a stream early: no worker takes another case, and those running are stopped."""
        with run.done:  # (not under ``pull``: a worker waiting for the caller holds it)
            run.stop = True
            run.done.notify_all()
        for worker in (self.primary, *self.helpers):
            worker.retire()

    # -- life cycle ---------------------------------------------------------------------
    def close(self, kill: bool = False) -> None:
        """Close every worker (a later stream starts the first again); the helpers end for good.
        ``kill`` (an interruption, from another thread): at once, and no worker restarts for the
        stream running now."""
        with self._lock:
            helpers, self.helpers = self.helpers, []
        for helper in helpers:
            if kill:
                helper.retire()
            else:
                helper.shutdown()
        if isinstance(self.workers, Slots) and helpers:
            self.workers.give_back(len(helpers))
        if kill:
            self.primary.retire()
        else:
            self.primary.close()

    def shutdown(self) -> None:
        self.close()
        self.primary.shutdown()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


_END = object()
