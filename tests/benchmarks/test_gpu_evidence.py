"""The one-call GPU evidence script: step names checked first, the time budget kept, and
whatever finished packed into one archive (a device call brings back few files)."""

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_evidence.sh"
pytestmark = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("timeout")),
                                reason="needs bash and coreutils' timeout")


def _run(out: Path, *steps: str, budget: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(out), *steps], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "EVIDENCE_BUDGET_S": budget}, timeout=120)


def test_an_unknown_step_stops_the_script_before_anything_runs(tmp_path):
    proc = _run(tmp_path / "ev", "env", "bogus", budget="60")
    assert proc.returncode == 2 and "unknown step bogus" in proc.stderr
    assert not (tmp_path / "ev" / "env.log").exists()


def test_a_spent_budget_starts_no_step_and_still_packs_the_summary(tmp_path):
    proc = _run(tmp_path / "ev", "certify-cold", "report", budget="0")
    assert proc.returncode == 0, proc.stderr
    summary = (tmp_path / "ev" / "summary.txt").read_text()
    assert "certify-cold: not started, 0s budget spent" in summary and "report: not started" in summary
    with tarfile.open(tmp_path / "ev" / "evidence.tar.gz") as tar:
        assert "./summary.txt" in tar.getnames()
