"""The Triton convolution certifies under the Triton interpreter (CPU tensors, no GPU).

Runs the conformance CLI in a child process with ``TRITON_INTERPRET=1`` (triton reads it
only when first imported), on the quick subset of the catalogue, float32 and float16. The
interpreter runs every program in Python: the determinism stage's repeat calls (120 per
operation and dtype by default, about 90% of the run) are cut to 12; determinism itself is
tested on CPU plug-ins (tests/conformance/test_determinism.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the triton implementation needs torch")
pytest.importorskip("triton", reason="triton is not installed")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.own_process  # starts its own interpreter-mode python


def test_triton_certifies_on_the_interpreter_quick_subset(tmp_path: Path) -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "conformance", "certify", "triton", "--device", "cpu", "--quick",
           "--dtype", "float32", "--dtype", "float16", "--min-calls", "12", "--no-progress",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    cert = json.loads((tmp_path / "triton.json").read_text())
    assert cert["passed"] is True and cert["devices"] == ["cpu"]
    assert cert["coverage"]["calls_per_operation"] == 12
    assert cert["environment"]["implementation"]["interpreter"] is True
    claimed = set(cert["implementation"]["features"])
    cells = [f for f in cert["features"] if f["feature"] in claimed]
    assert {f["dtype"] for f in cells} == {"float32", "float16"}
    assert all(f["status"] == "pass" for f in cells), [f for f in cells if f["status"] != "pass"]
