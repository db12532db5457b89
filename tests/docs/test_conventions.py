"""Conventions a library author expects: ``NO_COLOR`` on a terminal and a non-terminal give
plain lines, without a single escape sequence."""

import os
import pty
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "convcert", "certify", "im2col", "--quick", "--dtype", "float64"]


def _on_a_terminal(env: dict[str, str], out: Path) -> bytes:
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command with a terminal as its output
        os.chdir(REPO)
        os.execvpe(sys.executable, [*COMMAND, "--out", str(out)], env)
    text = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal closed with the child
            break
        if not chunk:
            break
        text += chunk
    os.waitpid(pid, 0)
    os.close(fd)
    return text


def test_no_color_on_a_terminal_gives_plain_progress_lines(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    text = _on_a_terminal(env, tmp_path)
    assert b"im2col: PASSED (" in text and b"[certify im2col] " in text
    assert b"\x1b" not in text


def test_a_non_terminal_gets_plain_output(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"PYTHONPATH": str(REPO)}
    done = subprocess.run([*COMMAND, "--out", str(tmp_path)], env=env, cwd=REPO, capture_output=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith(b"im2col: PASSED (")
    assert b"\x1b" not in done.stdout + done.stderr
