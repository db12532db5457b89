"""Where the implementation's calls run: the :class:`Executor` seam and its in-process side.

The certifier reads the implementation's claims and runs its cases through an
:class:`Executor`: :class:`InProcess` calls it here (for a debugger), and
:class:`conformance.execution.worker.Worker` in a worker process of its own (the default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from implementations import Implementation
from implementations.text import clean_data, clean_text

from . import call
from .protocol import Outcome

T = TypeVar("T")


class Claims(Protocol):
    """What the suite reads of an implementation: an ``Implementation``, or an executor standing for one."""

    @property
    def name(self) -> str: ...
    @property
    def devices(self) -> tuple[str, ...]: ...
    @property
    def dtypes(self) -> tuple[str, ...]: ...
    @property
    def features(self) -> frozenset[str]: ...
    @property
    def reduced_precision(self) -> Mapping[str, str]: ...
    def describe(self) -> dict[str, Any]: ...
    def environment(self) -> dict[str, Any]: ...


class Executor(Claims, Protocol):
    """Runs an implementation's cases and probes, and stands for its claims."""

    def stream(self, items: Iterable[T],
               request_of: Callable[[T], tuple | None]) -> Iterator[tuple[T, Outcome | None]]:
        """``(item, outcome)`` for each item, in order; ``request_of(item)``: the arguments of
        :func:`conformance.execution.call.execute` after the implementation, or None (no call)."""
        ...

    def findings(self, device: str, dtype: str) -> dict[str, str]:
        """What the implementation does with NaN and Inf on ``device`` in ``dtype``."""
        ...

    def device_problem(self, device: str) -> str | None:
        """None when the implementation can place a tensor on ``device``, else why not."""
        ...


class InProcess:
    """An :class:`Executor` that calls the implementation in this process."""

    def __init__(self, impl: Implementation):
        self.impl = impl

    name = property(lambda self: self.impl.name)
    devices = property(lambda self: self.impl.devices)
    dtypes = property(lambda self: self.impl.dtypes)
    features = property(lambda self: self.impl.features)
    reduced_precision = property(lambda self: self.impl.reduced_precision)
    limits = property(lambda self: self.impl.limits)

    def describe(self) -> dict[str, Any]:
        return clean_data(self.impl.describe())

    def environment(self) -> dict[str, Any]:
        return clean_data(self.impl.environment())

    def stream(self, items: Iterable[T],
               request_of: Callable[[T], tuple | None]) -> Iterator[tuple[T, Outcome | None]]:
        for item in items:
            request = request_of(item)
            if request is None:
                yield item, None
                continue
            outcome = call.execute(self.impl, *request)
            outcome.message = clean_text(outcome.message)  # as a worker's answer is (protocol)
            yield item, outcome

    def findings(self, device: str, dtype: str) -> dict[str, str]:
        return call.findings(self.impl, device, dtype)

    def device_problem(self, device: str) -> str | None:
        return call.device_problem(self.impl, device)
