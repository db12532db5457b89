"""``pytest --convcert SPEC``: convcert's cases as tests of the user's own pytest run."""

import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: A plug-in file as a library author writes it: forward convolution only, one dtype.
PLUGIN = textwrap.dedent(
    """
    import os
    import numpy as np
    from implementations import Implementation, Limit

    with open(os.path.join(os.path.dirname(__file__), "pids"), "a") as f:
        f.write(f"{os.getpid()}\\n")  # where the plug-in is imported


    class Direct(Implementation):
        name = "direct"
        dtypes = ("float64",)
        features = frozenset({"conv2d", "stride", "asymmetric_padding"})
        limits = (Limit("no same padding without a stride", ops={"conv2d"},
                        when=lambda p: p.padding_mode == "same" and p.stride == (1, 1)),)

        def conv2d(self, x, w, b, p):
            from implementations.naive import Naive
            return Naive().conv2d(x, w, b, p)


    class Biasless(Direct):
        name = "biasless"

        def conv2d(self, x, w, b, p):
            return super().conv2d(x, w, None, p)
    """
)


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # the checkout's code, whatever convcert the interpreter has installed
    # (and the plug-in from it, whether or not an installed convcert registered it already)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    plugin = ["-p", "no:convcert", "-p", "conformance.pytest_plugin", "-p", "no:cacheprovider"]
    return subprocess.run([sys.executable, "-m", "pytest", *plugin, *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)


def _folder(path: Path) -> Path:
    (path / "direct.py").write_text(PLUGIN)
    (path / "test_own.py").write_text(
        "import os, sys\n\ndef test_own():\n"
        "    open('pytest_pid', 'w').write(str(os.getpid()))\n"
        "    assert 'conformance.verdicts.certify' in sys.modules or True\n")
    return path


@pytest.fixture
def folder(tmp_path):
    return _folder(tmp_path)


#: The wrong plug-in's quick cases, convcert's tests only.
WRONG = ("--convcert", "direct.py:Biasless", "--convcert-quick", "-k", "convcert")


@pytest.fixture(scope="module")
def wrong_run(tmp_path_factory):
    """One run of pytest on the wrong plug-in, in one process (JUnit in ``r.xml``)."""
    folder = _folder(tmp_path_factory.mktemp("wrong"))
    return folder, run_pytest(folder, *WRONG, "--junitxml=r.xml")


def _cases(xml: Path) -> dict[str, ET.Element]:
    return {f"{tc.get('classname')}::{tc.get('name')}": tc for tc in ET.parse(xml).getroot().iter("testcase")}


def _messages(cases: dict[str, ET.Element], tag: str) -> dict[str, str]:
    return {k: tc.find(tag).get("message") for k, tc in cases.items() if tc.find(tag) is not None}


def test_a_right_plugin_passes_case_by_case_with_skips_for_what_it_does_not_claim(folder):
    done = run_pytest(folder, "--convcert", "./direct.py:Direct", "--convcert-quick", "--junitxml=r.xml")
    assert done.returncode == 0, done.stdout + done.stderr
    cases = _cases(folder / "r.xml")
    assert "test_own::test_own" in cases  # the user's own tests run beside convcert's
    ours = {k: v for k, v in cases.items() if k.startswith("convcert[direct]::")}
    passed = [k for k, tc in ours.items() if len(tc) == 0]
    skipped = _messages(ours, "skipped")
    assert "convcert[direct]::certificate" in passed
    assert any(k.startswith("convcert[direct]::conv2d-") and k.endswith("[cpu-float64]") for k in passed)
    assert any(m.startswith("not claimed: needs") for m in skipped.values())
    assert any(m == "limited: no same padding without a stride" for m in skipped.values()), skipped
    pids = (folder / "pids").read_text().split()
    assert (folder / "pytest_pid").read_text() not in pids  # loaded in the worker only


def test_a_wrong_plugin_fails_each_case_with_its_message_and_repro(wrong_run):
    folder, done = wrong_run
    assert done.returncode == 1
    cases = _cases(folder / "r.xml")
    assert "test_own::test_own" not in cases  # -k applies to convcert's tests too
    failures = _messages(cases, "failure")
    case = next(k for k in failures if k.endswith("-bias[cpu-float64]"))
    message = failures[case]
    assert message.startswith("[conv2d] conv2d-") and "expected" in message and "bound" in message
    assert "reproduce: python -m conformance certify direct.py:Biasless --case conv2d-" in message
    assert "convcert[biasless]::certificate" in failures


def test_an_unloadable_spec_is_a_usage_error_naming_it(folder):
    done = run_pytest(folder, "--convcert", "./direct.py:Nothing")
    assert done.returncode == 4
    assert "--convcert ./direct.py:Nothing" in done.stderr and "no attribute 'Nothing'" in done.stderr


def test_without_convcert_the_plugin_adds_no_test_and_imports_nothing_of_the_suite(folder):
    (folder / "test_own.py").write_text(
        "import sys\n\ndef test_own():\n"
        "    suite = ('conformance.', 'implementations', 'numpy')\n"
        "    assert [m for m in sys.modules if m.startswith(suite)] == ['conformance.pytest_plugin']\n")
    done = run_pytest(folder, "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def _outcomes(xml: Path) -> dict[str, tuple[str, str, str]]:
    """Test -> (outcome, message, text) of convcert's tests in a JUnit report, times left out."""
    out = {}
    for name, tc in _cases(xml).items():
        if name.startswith("convcert["):
            child = next(iter(tc), None)
            found = ("pass", "", "") if child is None else \
                (child.tag, child.get("message") or "", child.text or "")
            out[name] = tuple(re.sub(r"; [0-9.]+ s\)", "; - s)", text) for text in found)
    return out


def test_pytest_xdist_spreads_the_cases_and_gives_the_serial_verdicts_and_junit(wrong_run, folder):
    pytest.importorskip("xdist")
    serial, _ = wrong_run
    spread = run_pytest(folder, *WRONG, "-n", "2", "--junitxml=spread.xml")
    assert spread.returncode == 1, spread.stdout + spread.stderr
    assert _outcomes(folder / "spread.xml") == _outcomes(serial / "r.xml")
    assert _outcomes(folder / "spread.xml")["convcert[biasless]::certificate"][0] == "failure"
    loaded = (folder / "pids").read_text().split()
    assert len(set(loaded)) == 2  # a convcert worker in each of the two xdist workers
