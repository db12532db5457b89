"""A certificate the certified plug-in cannot forge: its code never runs in the certifier's
process, nothing it starts outlives its worker, its word "limited" is checked against what it
declared, and its text is bounded and cleaned before anything shows it.

Each test runs a real hostile plug-in (``tests/conformance/misbehaving.py``, or an installed
entry point made in a temporary folder) through the certifier's own entry points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.catalogue.selection import find_case
from conformance.cli import main
from conformance.execution import reaper
from conformance.verdicts.certificate import certificate_stem
from conformance.verdicts.certify import certify

HERE = "tests.conformance.misbehaving"
REPO = Path(__file__).resolve().parents[2]
CONV = find_case("conv2d-n2c3h7w6-k4r3s3-pad_valid-bias")
POOL = find_case("max_pool2d-n2c2h6w6-k2-pad_valid")
#: The checkout's pytest plugin, whether or not an installed convcert registered one already.
PLUGIN = ("-p", "no:convcert", "-p", "conformance.pytest_plugin", "-p", "no:cacheprovider")

#: An installed plug-in that tampers wherever its code runs: on import, construction and every
#: call it appends its pid to the marker file, and it rewrites the certifier's verdict code.
TAMPERING = '''
import os
from implementations.im2col import Im2col


def _mark(where):
    with open(os.environ["CONVCERT_TEST_MARKER"], "a") as f:
        f.write(f"{os.getpid()} {where}\\n")


_mark("import")
try:  # in the certifier's process this would turn every verdict into a pass
    from conformance.judging import result
    result.CaseResult.passed = property(lambda self: True)
    from conformance.verdicts import certificate
    certificate.Certificate.passed = property(lambda self: True)
except Exception:
    pass


class Tamper(Im2col):
    name = "tamper"
    dtypes = ("float32",)

    def __init__(self):
        super().__init__()
        _mark("construct")

    def describe(self):
        _mark("describe")
        return super().describe()

    def conv2d(self, x, w, b, params):
        _mark("conv2d")
        return super().conv2d(x, w, b, params) + 1
'''


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """An entry point ``tamper`` of ``convcert.implementations``, installed on ``sys.path`` (a
    ``.dist-info`` beside its module); yields the marker file its code writes to."""
    site = tmp_path / "site"
    (site / "tamper_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "tamper_plugin.py").write_text(TAMPERING)
    (site / "tamper_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tamper-plugin\nVersion: 1.0\n")
    (site / "tamper_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[convcert.implementations]\ntamper = tamper_plugin:Tamper\n")
    marker = tmp_path / "marker"
    marker.touch()
    monkeypatch.setenv("CONVCERT_TEST_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(REPO), *sys.path]))
    return marker


def _ran_in(marker: Path) -> set[int]:
    return {int(line.split()[0]) for line in marker.read_text().splitlines()}


def test_an_installed_plugin_never_runs_in_the_certifiers_process(installed, tmp_path, capsys, monkeypatch):
    from implementations import registry
    from implementations.__main__ import main as list_main

    monkeypatch.setattr(registry, "BUILTINS", {"naive": registry.BUILTINS["naive"]})  # (fast: no framework)
    assert list_main([]) == 0
    listed = capsys.readouterr().out
    assert "tamper" in listed and "devices=cpu" in listed  # its claims, read in a worker
    assert main(["matrix", "--impl", "naive", "--quick", "--no-progress", "--out", str(tmp_path / "m")]) == 0
    code = main(["certify", "tamper", "--case", CONV.name, "--no-progress", "--out", str(tmp_path / "c"),
                 "--export-repro", str(tmp_path / "repro")])
    assert code == 1  # its wrong conv2d is rejected
    assert list((tmp_path / "repro").glob("*.py"))
    assert _ran_in(installed) and os.getpid() not in _ran_in(installed)  # it ran: in workers only
    assert "tamper_plugin" not in sys.modules


def test_the_pytest_plugin_loads_an_installed_plugin_only_in_its_worker(installed, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *PLUGIN, "--convcert", "tamper",
                             "--convcert-quick", "-q", "--rootdir", str(tmp_path)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out[-2000:]  # red: its conv2d is wrong
    ran = _ran_in(installed)
    assert ran and proc.pid not in ran


def test_a_detached_daemon_cannot_rewrite_the_certificate_after_the_run(tmp_path, monkeypatch):
    spec = f"{HERE}:Daemonizes"
    target = tmp_path / f"{certificate_stem(spec)}.json"
    marker = tmp_path / "daemon.pid"
    monkeypatch.setenv("CONVCERT_TEST_TARGET", str(target))
    monkeypatch.setenv("CONVCERT_TEST_MARKER", str(marker))
    assert main(["certify", spec, "--case", CONV.name, "--case", POOL.name, "--no-progress",
                 "--out", str(tmp_path)]) == 1
    pid = int(marker.read_text())
    time.sleep(0.5)  # what the daemon would need to forge the file
    assert pid not in reaper.processes(), "the daemon outlived its worker"
    assert json.loads(target.read_text())["passed"] is False
    assert not Path(f"{target}.forged").exists()


def test_limited_counts_only_when_a_declared_limit_covers_the_case():
    cert = certify(f"{HERE}:ClaimsLimitedWithoutLimits", cases=[CONV, POOL])
    results = {r.case: r for r in cert.results}
    assert results[CONV.name].status == "fail"
    assert results[CONV.name].reason == "refused without a declared limit: not implemented"
    assert results[POOL.name].status == "pass"
    assert not cert.passed and cert.counts().get("limited", 0) == 0


def test_the_pytest_plugin_does_not_skip_an_undeclared_limited_case(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *PLUGIN, "--convcert",
         f"{HERE}:ClaimsLimitedWithoutLimits", "--convcert-quick", "-q",
         "-k", "conv2d-", "--rootdir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path])))
    assert proc.returncode == 1 and "refused without a declared limit" in proc.stdout, proc.stdout[-2000:]


def test_a_flood_of_text_with_terminal_sequences_is_bounded_and_escaped(tmp_path, capsys):
    spec = f"{HERE}:FloodsText"
    assert main(["certify", spec, "--case", CONV.name, "--case", POOL.name, "--no-progress",
                 "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\\x1b[2K\\x0dconv2d: PASSED" in out
    assert len(out) < 20_000
    stem = tmp_path / certificate_stem(spec)
    for path in (Path(f"{stem}.json"), Path(f"{stem}.md")):
        text = path.read_text()
        assert "\x1b" not in text and "\r" not in text and "\\u001b" not in text, path
        assert path.stat().st_size < 200_000, (path, path.stat().st_size)
        assert "more characters cut by convcert" in text
    log = Path(f"{stem}.log")
    assert log.stat().st_size < 5 * 2**20 and "bytes of the plug-in's output were cut" in log.read_text()


def test_only_the_first_messages_of_an_operation_are_kept_in_full(monkeypatch):
    from conformance.catalogue.selection import all_cases
    from conformance.execution import worker

    monkeypatch.setattr(worker, "MESSAGES", 2)
    convs = [c for c in all_cases() if c.op == "conv2d"][:5]
    cert = certify(f"{HERE}:FloodsText", cases=convs, dtypes=["float32"], min_calls=0)
    lengths = [len(r.reason) for r in cert.results]
    assert len(lengths) == 5 and all(n < 2200 for n in lengths[:2]) and all(n < 400 for n in lengths[2:])
    assert "2 messages of conv2d are kept in full" in cert.results[-1].reason
    assert len(json.dumps(cert.implementation["environment"])) < 2200  # its environment() too
