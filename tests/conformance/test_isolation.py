"""Isolation: a plug-in that crashes, exits or hangs fails its own cases, never the certifier.

Each test runs a real misbehaving plug-in (``tests/conformance/misbehaving.py``) in the
worker process, on a few chosen cases so that it stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.catalogue.selection import all_cases, find_case
from conformance.cli import main
from conformance.verdicts.certificate import certificate_stem
from conformance.verdicts.certify import certify
from conformance.verdicts.matrix import build

HERE = "tests.conformance.misbehaving"
REPO = Path(__file__).resolve().parents[2]
POOL = find_case("max_pool2d-n2c2h6w6-k2-pad_valid")
CONV = find_case("conv2d-n2c3h7w6-k4r3s3-pad_valid-bias")
GROUPED = [c for c in all_cases() if c.op == "conv2d" and c.problem.params.groups > 1][:2]


def _by_case(cert):
    return {r.case: r for r in cert.results}


def test_a_segfault_fails_that_case_and_a_fresh_worker_runs_the_next():
    cert = certify(f"{HERE}:Segfaults", cases=[CONV, GROUPED[0], POOL, GROUPED[1], CONV])
    results = _by_case(cert)
    for case in GROUPED:
        r = results[case.name]
        assert r.status == "fail"
        assert r.reason == "worker killed by SIGSEGV in conv2d", r.reason
        assert case.name in r.checks[0].message
    assert results[CONV.name].status == results[POOL.name].status == "pass"
    assert len(cert.results) == 5 and cert.state == "complete" and not cert.passed


def test_os_exit_fails_that_case_with_the_exit_code():
    strided = find_case("max_pool2d-n1c2h7w8-k3-st2-pad1")
    cert = certify(f"{HERE}:Exits", cases=[POOL, strided, CONV])
    results = _by_case(cert)
    assert results[strided.name].reason == "worker exited with code 3 in max_pool2d"
    assert results[POOL.name].status == results[CONV.name].status == "pass"


def test_a_hang_fails_after_the_case_timeout_and_the_run_goes_on():
    ceil = find_case("avg_pool2d-n1c2h7w7-k2-pad_valid-ceil")
    start = time.perf_counter()
    cert = certify(f"{HERE}:Hangs", cases=[ceil, POOL], case_timeout=1)
    assert time.perf_counter() - start < 30
    results = _by_case(cert)
    assert results[ceil.name].status == "fail"
    assert results[ceil.name].reason.startswith("no answer in 1 s in avg_pool2d")
    assert results[POOL.name].status == "pass"


def test_a_crash_while_loading_is_a_load_error_with_exit_code_2(capsys):
    assert main(["certify", f"{HERE}:CrashingConstructor", "--no-progress", "--out", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "worker killed by SIGSEGV while loading it" in err and "Traceback" not in err


def test_a_crashed_rerun_replaces_an_older_passed_certificate(tmp_path, monkeypatch, capsys):
    argv = ["certify", f"{HERE}:Flaky", "--case", CONV.name, "--case", POOL.name, "--no-progress",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    assert json.loads((tmp_path / f"{certificate_stem(HERE + ':Flaky')}.json").read_text())["passed"] is True
    monkeypatch.setenv("CONVCERT_TEST_MISBEHAVE", "1")  # not a part of the cache's key: --fresh
    assert main([*argv, "--fresh"]) == 1
    data = json.loads((tmp_path / f"{certificate_stem(HERE + ':Flaky')}.json").read_text())
    assert data["passed"] is False and data["state"] == "complete"
    assert "SIGSEGV" in (tmp_path / f"{certificate_stem(HERE + ':Flaky')}.md").read_text()


def test_sigterm_records_an_interrupted_run_and_no_older_verdict_survives(tmp_path):
    hangs = tmp_path / f"{certificate_stem(HERE + ':Hangs')}.json"
    hangs.write_text(json.dumps({"passed": True, "state": "complete"}))
    ceil = "avg_pool2d-n1c2h7w7-k2-pad_valid-ceil"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "certify", f"{HERE}:Hangs", "--case", POOL.name, "--case", ceil,
         "--no-progress", "--out", str(tmp_path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while json.loads(hangs.read_text()).get("state") != "running":
            assert time.monotonic() < deadline, "no running certificate was written"
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 2, err
    data = json.loads(hangs.read_text())
    assert data["state"] == "interrupted" and data["passed"] is False
    assert "SIGTERM" in data["note"] and "interrupted" in err
    assert "INTERRUPTED" in (tmp_path / f"{certificate_stem(HERE + ':Hangs')}.md").read_text()


def test_the_matrix_judges_every_other_implementation_when_one_crashes():
    data = build(["im2col", f"{HERE}:Segfaults"], quick=True)
    entries = {e["name"]: e for e in data["implementations"]}
    assert entries["im2col"]["passed"] is True
    assert entries["segfaults"]["available"] and entries["segfaults"]["passed"] is False
    assert entries["segfaults"]["features"]["groups"]["float32"]["status"] == "fail"


def test_a_plugin_found_only_through_sys_path_loads_in_the_worker(tmp_path, monkeypatch):
    (tmp_path / "outside_plugin.py").write_text(
        "from implementations.im2col import Im2col\n\nclass Outside(Im2col):\n    name = 'outside'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cert = certify("outside_plugin:Outside", cases=[POOL], dtypes=["float32"])
    assert cert.passed and cert.implementation["isolation"].startswith("worker process")


def test_an_instance_that_differs_from_a_fresh_one_of_its_class_is_refused():
    from tests.conformance.misbehaving import Float32Only

    impl = Float32Only()
    impl.dtypes = ("float32", "float64")
    with pytest.raises(ValueError, match="claims different dtypes"):
        certify(impl, cases=[POOL])
    assert certify(impl, cases=[POOL], isolate=False).passed


def test_the_circuit_breaker_holds_across_every_stage_of_the_run():
    from conformance.execution.worker import BREAKER, Worker

    spec = f"{HERE}:HangsInForwardMaxPooling"
    start = time.perf_counter()
    with Worker(spec, 1.0) as worker:
        cert = certify(spec, worker=worker, quick=True, dtypes=["float32", "float64"], sweep_examples=2)
    assert worker.losses == {"max_pool2d": BREAKER}  # not one more timeout in the sweep, repeats,
    assert time.perf_counter() - start < 120  # experiments, diagnoses or NaN probes
    status = {(s.feature, s.dtype): s.status for s in cert.features}
    assert status[("max_pool2d", "float32")] == status[("max_pool2d", "float64")] == "fail"
    for op in ("conv2d", "conv2d_backward", "avg_pool2d", "max_pool2d_backward"):
        assert status[(op, "float32")] == status[(op, "float64")] == "pass", op
    assert "hung or crashed" in cert.findings["cpu/float32"]["max_pool2d NaN"]
