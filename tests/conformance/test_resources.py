"""Limits on what a plug-in uses, never on what it reserves, and never blamed on it: the worker's
resident memory is watched, and a call the machine refuses runs again in a fresh worker and,
refused again, is "could not run" (exit code 2), not a failed feature."""

from __future__ import annotations

import json

import pytest

from conformance.catalogue.selection import find_case
from conformance.cli import main
from conformance.verdicts.certificate import certificate_stem
from conformance.verdicts.certify import certify

HERE = "tests.conformance.misbehaving"
CONV = find_case("conv2d-n2c3h7w6-k4r3s3-pad_valid-bias")
POOL = find_case("max_pool2d-n2c2h6w6-k2-pad_valid")


def test_reserved_address_space_that_is_never_touched_does_not_count():
    cert = certify(f"{HERE}:ReservesAddressSpace", quick=True)
    assert cert.passed, cert.failures[:2]
    assert cert.implementation["memory_limit"].endswith("GiB resident")


def test_a_plugin_filling_memory_past_the_limit_is_stopped_and_the_run_could_not_run(tmp_path, capsys):
    spec = f"{HERE}:FillsMemory"
    code = main(["certify", spec, "--case", POOL.name, "--case", CONV.name, "--max-memory", "0.5",
                 "--case-timeout", "30", "--no-progress", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "the worker used" in err and "above the limit of 0.50 GiB (--max-memory)" in err
    data = json.loads((tmp_path / f"{certificate_stem(spec)}.json").read_text())
    assert data["state"] == "could not run" and data["passed"] is False
    assert "could not run conv2d" in data["note"] and "memory" in data["note"]


def test_a_resource_refused_once_runs_again_in_a_fresh_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVCERT_TEST_MARKER", str(tmp_path / "refused-once"))
    cert = certify(f"{HERE}:RefusedThreads", cases=[CONV, POOL])
    assert (tmp_path / "refused-once").exists()  # it was refused, then ran
    assert cert.passed and all(r.status == "pass" for r in cert.results)


def test_a_resource_refused_twice_is_could_not_run_never_a_failed_feature(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CONVCERT_TEST_MARKER", raising=False)
    spec = f"{HERE}:RefusedThreads"
    code = main(["certify", spec, "--case", POOL.name, "--case", CONV.name, "--no-progress",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "the machine refused a thread or process (EAGAIN)" in err
    data = json.loads((tmp_path / f"{certificate_stem(spec)}.json").read_text())
    assert data["state"] == "could not run" and not any(f["status"] == "fail" for f in data["features"])


def test_a_plugin_filling_memory_while_loading_is_stopped_with_a_load_error():
    from conformance.execution.worker import LoadError, Worker

    with Worker(f"{HERE}:FillsMemoryWhileLoading", max_memory=512 << 20) as worker:
        with pytest.raises(LoadError, match="GiB of memory while loading, above the limit of 0.50 GiB"):
            _ = worker.claims
