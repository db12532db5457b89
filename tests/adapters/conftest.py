"""Fixtures for the framework adapter tests: one adapter instance per framework, skipped
with a reason when the framework is not installed, and a device fixture whose CUDA half
is marked ``gpu`` and skipped where the adapter sees no CUDA device."""

from __future__ import annotations

import pytest

from implementations import get

#: registered name -> the module whose absence skips its tests.
ADAPTERS = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}


@pytest.fixture(scope="session", params=list(ADAPTERS))
def impl(request):
    """Each framework adapter (``implementations.get(name)``)."""
    pytest.importorskip(ADAPTERS[request.param], reason=f"{request.param} is not installed")
    return get(request.param)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request, impl):
    """``cpu``, and ``cuda`` where the adapter found a CUDA device."""
    if request.param not in impl.devices:
        pytest.skip(f"{impl.name} sees no {request.param} device here")
    return request.param
