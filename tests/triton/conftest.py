"""tests/triton run the Triton kernels on CPU tensors, on the Triton interpreter.

Triton reads ``TRITON_INTERPRET`` once, when ``triton`` is first imported, and the choice
holds for the whole process. On a machine without CUDA it is set here, before any test
module of this folder imports triton (nothing else in such a process can run compiled
triton anyway). Where this process cannot interpret (a GPU is present, so other tests may
need compiled triton; or something imported triton first: ``torch._dynamo`` does), the
tests of this folder that were selected run together in one ``python -m pytest`` child
with the variable set, and each reports the child's outcome here. Slower, never wrong.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
_CHILD = "CONVCERT_TRITON_TEST_CHILD"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _interpreting_here() -> bool:
    if "triton" in sys.modules:
        import triton.language as tl
        from triton.runtime.jit import JITFunction

        return not isinstance(tl.zeros, JITFunction)
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")  # read when triton is imported


if "triton" not in sys.modules and not os.environ.get(_CHILD) and not _cuda_available():
    os.environ["TRITON_INTERPRET"] = "1"
IN_PROCESS = _interpreting_here()
_delegated: list[str] = []
_child_outcomes: dict[str, tuple[str, str]] | None = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "own_process: runs its own subprocesses; never delegated to an interpreter child"
    )


def _delegate(item: pytest.Item) -> bool:
    return (not IN_PROCESS and Path(str(item.fspath)).resolve().is_relative_to(HERE)
            and item.get_closest_marker("own_process") is None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _delegated[:] = [item.nodeid for item in items if _delegate(item)]


def _run_child(config: pytest.Config) -> dict[str, tuple[str, str]]:
    """Run every delegated test in one interpreter child; nodeid -> (outcome, detail)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", _CHILD: "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "child.xml"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
             *_delegated],
            cwd=config.rootpath, env=env, capture_output=True, text=True, timeout=900,
        )
        if not xml.exists():
            tail = (proc.stdout + proc.stderr)[-4000:]
            raise RuntimeError(f"the TRITON_INTERPRET=1 child wrote no results:\n{tail}")
        outcomes = {}
        for case in ET.parse(xml).getroot().iter("testcase"):
            module = case.get("classname", "").replace(".", "/")
            nodeid = f"{module}.py::{case.get('name')}"
            bad = case.find("failure") if case.find("failure") is not None else case.find("error")
            skipped = case.find("skipped")
            if bad is not None:
                outcomes[nodeid] = ("failed", (bad.get("message") or "") + "\n" + (bad.text or ""))
            elif skipped is not None:
                outcomes[nodeid] = ("skipped", skipped.get("message") or "")
            else:
                outcomes[nodeid] = ("passed", "")
        return outcomes


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Report the interpreter child's outcome for a test this process cannot interpret."""
    global _child_outcomes
    if not _delegate(pyfuncitem):
        return None
    if _child_outcomes is None:
        _child_outcomes = _run_child(pyfuncitem.config)
    outcome, detail = _child_outcomes.get(pyfuncitem.nodeid, ("missing", ""))
    if outcome == "passed":
        return True
    if outcome == "skipped":
        pytest.skip(f"in the TRITON_INTERPRET=1 child: {detail}")
    if outcome == "missing":
        pytest.fail(f"the TRITON_INTERPRET=1 child did not report {pyfuncitem.nodeid}", pytrace=False)
    pytest.fail(f"failed in the TRITON_INTERPRET=1 child:\n{detail[-4000:]}", pytrace=False)
