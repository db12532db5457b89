"""Device time per call: how each framework's GPU work is timed, chosen once per implementation.

On a GPU the primary figure is the time the device spends per call, measured as
``triton.testing.do_bench`` and benchdnn do; the host's synchronised latency per call
(the harness's interleaved rounds) is kept as a second figure. Strategies:

- :class:`HostTimer`: ``perf_counter`` around a call and a synchronize (CPU, and the
  host-latency figure everywhere).
- :class:`EventTimer`: a pair of CUDA events recorded on the stream around each call,
  calls queued back to back and one synchronize at the end (torch, Triton). With
  ``cold_cache`` the L2 cache is flushed (a 256 MiB buffer zeroed) before each call,
  outside the events.
- :class:`AmortizedTimer`: for a framework without events on its stream (JAX): many
  calls back to back ended by one block, divided by the count. A per-call block would
  add the host's dispatch and wake-up (about 60 us per call for JAX on an H100/H200).

:func:`device_timer` picks the strategy: an implementation may bring its own through an
optional ``device_timer(device, cold_cache)`` method; otherwise the type of the tensors it places
decides (torch tensors on CUDA: events; anything else on a GPU: amortised; CPU: host).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

#: Bytes zeroed between calls to evict the L2 cache (H100: 50 MiB, H200: 60 MiB of L2).
L2_FLUSH_BYTES = 256 * 2**20
#: Calls per timed block of the amortised timer.
AMORTIZED_CALLS = 20


class DeviceTimer(Protocol):
    """Times ``rounds`` calls of ``call``; returns seconds per call, one value per round."""

    @property
    def method(self) -> str: ...

    @property
    def calls_per_round(self) -> int: ...

    def times(self, call: Callable[[], Any], rounds: int) -> list[float]: ...


@dataclass
class HostTimer:
    """Host clock around the call and a synchronize of the device."""

    synchronize: Callable[[], None]
    clock: Callable[[], float] = time.perf_counter
    method: str = "host clock (time.perf_counter) around each call + synchronize"
    calls_per_round: int = 1

    def times(self, call: Callable[[], Any], rounds: int) -> list[float]:
        _check_rounds(rounds)
        out = []
        for _ in range(rounds):
            start = self.clock()
            call()
            self.synchronize()
            out.append(self.clock() - start)
        return out


class Event(Protocol):
    def record(self) -> None: ...

    def elapsed_time(self, end: Any) -> float: ...  # milliseconds, as torch.cuda.Event


@dataclass
class EventTimer:
    """A start/end event pair around each call on the stream; one synchronize at the end.

    ``new_event`` makes an event with timing enabled (``torch.cuda.Event(enable_timing=True)``);
    ``flush`` (cold cache) runs before each call, outside its events.
    """

    new_event: Callable[[], Event]
    synchronize: Callable[[], None]
    flush: Callable[[], None] | None = None
    calls_per_round: int = 1

    @property
    def method(self) -> str:
        cache = ", L2 flushed before each call (cold cache)" if self.flush else ", warm cache"
        return "CUDA events around each call, calls queued back to back, one synchronize" + cache

    def times(self, call: Callable[[], Any], rounds: int) -> list[float]:
        _check_rounds(rounds)
        pairs = [(self.new_event(), self.new_event()) for _ in range(rounds)]
        self.synchronize()
        for start, end in pairs:
            if self.flush is not None:
                self.flush()
            start.record()
            call()
            end.record()
        self.synchronize()
        return [start.elapsed_time(end) / 1e3 for start, end in pairs]


@dataclass
class AmortizedTimer:
    """``calls`` calls back to back, one synchronize, divided by ``calls``; once per round."""

    synchronize: Callable[[], None]
    calls: int = AMORTIZED_CALLS
    clock: Callable[[], float] = time.perf_counter

    def __post_init__(self) -> None:
        if self.calls < 1:
            raise ValueError(f"calls={self.calls}: must be >= 1")

    @property
    def calls_per_round(self) -> int:
        return self.calls

    @property
    def method(self) -> str:
        n = self.calls
        return f"{n} calls back to back ended by one synchronize, divided by {n} (no cold cache)"

    def times(self, call: Callable[[], Any], rounds: int) -> list[float]:
        _check_rounds(rounds)
        self.synchronize()
        out = []
        for _ in range(rounds):
            start = self.clock()
            for _ in range(self.calls):
                call()
            self.synchronize()
            out.append((self.clock() - start) / self.calls)
        return out


def _check_rounds(rounds: int) -> None:
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: must be >= 1")


def torch_event_timer(cold_cache: bool) -> EventTimer:
    """CUDA events of the current torch stream (torch and Triton kernels run on it)."""
    import torch

    flush: Callable[[], None] | None = None
    if cold_cache:
        cache = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device="cuda")

        def flush() -> None:
            cache.zero_()
    return EventTimer(lambda: torch.cuda.Event(enable_timing=True), torch.cuda.synchronize, flush)


def device_timer(impl: Any, device: str, placed: dict[str, Any], cold_cache: bool = False) -> DeviceTimer:
    """The device-time strategy for ``impl`` on ``device``, given the tensors it placed."""
    sync = _sync(impl, device)
    if device == "cpu":
        return HostTimer(sync)
    own = getattr(impl, "device_timer", None)
    if callable(own):
        return own(device, cold_cache)
    if holds_torch(placed):
        return torch_event_timer(cold_cache)
    return AmortizedTimer(sync)


def holds_torch(placed: dict[str, Any]) -> bool:
    """Whether the placed tensors are torch tensors (their kernels run on a torch stream)."""
    return any(type(v).__module__.startswith("torch") for v in placed.values())


def _sync(impl: Any, device: str) -> Callable[[], None]:
    return lambda: impl.synchronize(device)
