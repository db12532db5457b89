"""Determinism as a property: a wrong answer that comes and goes fails every run; answers
that differ between identical calls within the bound are a finding, not a failure."""

from __future__ import annotations

import pytest

from conformance.verdicts.certify import certify

HERE = "tests.conformance.misbehaving"


@pytest.mark.parametrize("seed", ["0", "1", "2"])
def test_a_plug_in_wrong_in_one_call_in_twenty_fails_every_quick_run(seed, monkeypatch):
    monkeypatch.setenv("CONVCERT_TEST_SEED", seed)
    cert = certify(f"{HERE}:WrongSometimes", quick=True)
    assert not cert.passed
    failing = [r for r in cert.results if r.status == "fail"]
    reasons = [r.reason for r in failing]
    assert any(r.startswith("nondeterministic: failed in") for r in reasons), reasons


def test_answers_that_differ_between_identical_calls_are_a_finding_not_a_failure():
    cert = certify(f"{HERE}:NoisyLastBit", dtypes=["float32"])
    assert cert.passed
    line = cert.findings["cpu/float32"]["identical calls"]
    assert line.startswith("nondeterministic:") and "differ between identical calls" in line


def test_a_deterministic_implementation_is_bit_identical_on_the_sample():
    cert = certify("im2col", dtypes=["float32"], quick=True)
    assert cert.findings["cpu/float32"]["identical calls"].startswith("bit-identical in")


def test_fewer_repeat_calls_are_a_choice_the_certificate_records():
    default = certify("im2col", dtypes=["float32"], quick=True, isolate=False)
    fewer = certify("im2col", dtypes=["float32"], quick=True, isolate=False, min_calls=0)
    assert default.coverage["calls_per_operation"] == 120 and fewer.coverage["calls_per_operation"] == 0
    assert len(fewer.results) == len(default.results) and fewer.passed
    with pytest.raises(ValueError, match="min_calls=-1: must be >= 0"):
        certify("im2col", dtypes=["float32"], quick=True, isolate=False, min_calls=-1)
