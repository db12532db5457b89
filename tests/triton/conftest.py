"""tests/triton run the Triton kernels on CPU tensors, on the Triton interpreter.

Triton reads ``TRITON_INTERPRET`` once, when ``triton`` is first imported, so it is set
here, before any test module of this folder imports triton. If something in the same
pytest process imported triton earlier without it (``torch._dynamo`` does, for one), the
kernels cannot be interpreted in this process; then each test of this folder runs in a
fresh ``python -m pytest NODEID`` subprocess with the variable set, and reports its outcome
here. Slower, never wrong.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CHILD = "CONVCERT_TRITON_TEST_CHILD"

os.environ["TRITON_INTERPRET"] = "1"


def _can_interpret_here() -> bool:
    if "triton" not in sys.modules or os.environ.get(_CHILD):
        return True  # triton will be imported (or was, in the child) with the variable set
    from triton.runtime.jit import JITFunction
    import triton.language as tl

    return not isinstance(tl.zeros, JITFunction)


IN_PROCESS = _can_interpret_here()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Run the test in an interpreter subprocess when this process cannot interpret."""
    if IN_PROCESS or pyfuncitem.get_closest_marker("own_process"):
        return None
    env = {**os.environ, "TRITON_INTERPRET": "1", _CHILD: "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", pyfuncitem.nodeid],
        cwd=pyfuncitem.config.rootpath, env=env, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"failed in the TRITON_INTERPRET=1 subprocess:\n{out[-4000:]}", pytrace=False)
    if " skipped" in out and " passed" not in out:
        pytest.skip(f"skipped in the TRITON_INTERPRET=1 subprocess: {out[-500:]}")
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "own_process: runs its own subprocesses; never delegated to an interpreter child"
    )
