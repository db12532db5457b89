"""``convcert matrix --jobs N``: implementations certified side by side, and interrupted together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MISBEHAVING = REPO / "tests" / "conformance" / "misbehaving.py"


def test_sigterm_stops_every_certification_running_side_by_side(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    err = tmp_path / "stderr"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conformance", "matrix", "--impl", f"{MISBEHAVING}:Hangs",
             f"{MISBEHAVING}:HangsInMaxPooling", "--quick", "--jobs", "2", "--case-timeout", "600",
             "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            deadline = time.monotonic() + 120
            while err.read_text().count("catalogue") < 2:  # both certifications are running their cases
                assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
                time.sleep(0.2)
            time.sleep(2)
            stopped = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 2, err.read_text()
    assert time.monotonic() - stopped < 30  # not the 600 s a hanging case may take
    assert "interrupted" in err.read_text()
    assert "misbehaving.py:Hangs: certifying (1 of 2" in err.read_text()
