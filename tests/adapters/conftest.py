"""Fixtures for the framework adapter tests: one adapter instance per framework, skipped
with a reason when the framework is not installed, and a device fixture whose CUDA half
is marked ``gpu`` and skipped where the adapter sees no CUDA device."""

from __future__ import annotations

import importlib.util
import re

import pytest

from implementations import get
from implementations.contract import limit_for

#: registered name -> the module whose absence skips its tests.
ADAPTERS = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}


@pytest.fixture(scope="session", params=list(ADAPTERS))
def impl(request):
    """Each framework adapter (``implementations.get(name)``)."""
    # find_spec, not importorskip: importing tensorflow here, before its adapter has loaded
    # triton, would load the two bundled LLVMs in the order that aborts the process.
    if importlib.util.find_spec(ADAPTERS[request.param]) is None:
        pytest.skip(f"{request.param} is not installed")
    return get(request.param)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request, impl):
    """``cpu``, and ``cuda`` where the adapter found a CUDA device."""
    if request.param not in impl.devices:
        pytest.skip(f"{impl.name} sees no {request.param} device here")
    return request.param


def _documented_unsupported(impl, op: str, params, dtype: str, device: str) -> str | None:
    """The reason of the adapter's declared limit covering this case (``impl.limits``, also
    in docs/adapters.md, "Declared limits"), or None when the case must run."""
    uses = {op} | ({"dilation"} if getattr(params, "groups", None) and params.dilation != (1, 1) else set())
    limit = limit_for(impl.limits, op, uses, dtype, device, params)
    return None if limit is None else re.escape(limit.reason)  # a pattern for pytest.raises(match=)


@pytest.fixture(scope="session")
def documented_unsupported():
    """``f(impl, op, params, dtype, device)`` -> the documented Unsupported reason or None."""
    return _documented_unsupported
