"""Shared test settings.

Hypothesis runs derandomized (a fixed seed per test) unless HYPOTHESIS_PROFILE=explore,
so CI is reproducible and exploration is one variable away.
"""

import importlib.util
import os


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


# TensorFlow and Triton both bundle LLVM; Triton loaded after TensorFlow aborts the process
# (see implementations/frameworks/tensorflow_adapter.py). Tests import frameworks in many orders, so
# Triton is loaded first, once, as the adapter does. Without CUDA nothing here can run
# compiled Triton, so it loads as the interpreter that tests/triton use (see its conftest).
if importlib.util.find_spec("triton") is not None:
    if not _cuda_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    import triton  # noqa: F401

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import hashlib  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _own_convcert_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own certificate cache (created only when used): no test reuses another's verdict."""
    name = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    monkeypatch.setenv("CONVCERT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "convcert-cache" / name))
