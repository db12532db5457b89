"""Declared limits: a refusal is a promise made up front; any other refusal is a failure."""

from __future__ import annotations

import pytest

from conformance.catalogue.selection import all_cases, find_case
from conformance.verdicts.certify import certify
from conformance.verdicts.matrix import build
from implementations import ConvParams, Limit

HERE = "tests.conformance.misbehaving"
BATCHED = find_case("conv2d-n2c3h7w6-k4r3s3-pad_valid-bias")
SINGLE = find_case("conv2d-n1c2h5w5-k3r3s3-pad1-nobias")
PARAMS = ConvParams.create((1, 2, 5, 5), (3, 2, 3, 3), dilation=2)


def test_unsupported_for_an_undeclared_case_is_a_failure_not_a_pass():
    cert = certify(f"{HERE}:HidesErrors", cases=[BATCHED, SINGLE])
    results = {r.case: r for r in cert.results}
    assert results[BATCHED.name].status == "fail"
    assert results[BATCHED.name].reason == "undeclared refusal: batch > 1 is broken"
    assert results[SINGLE.name].status == "pass"
    assert not cert.passed
    assert any("undeclared refusal" in f["message"] for f in cert.failures)


def test_the_same_refusal_declared_up_front_is_limited_and_counted_per_feature():
    conv = [c for c in all_cases() if c.op == "conv2d"]
    cert = certify(f"{HERE}:DeclaresItsLimit", cases=conv)
    limited = [r for r in cert.results if r.status == "limited"]
    assert limited and all(r.reason == "batch > 1 is not implemented" for r in limited)
    assert cert.passed, cert.failures[:2]
    data = cert.to_dict()
    assert data["counts"]["limited"] == len(limited)
    assert sum(s["limited"] for s in data["features"]) == sum(len(r["filed_under"]) for r in map(
        lambda r: r.to_dict(), limited))
    assert data["implementation"]["limits"][0]["reason"] == "batch > 1 is not implemented"


def test_the_matrix_counts_limited_cases_per_feature():
    data = build([f"{HERE}:DeclaresItsLimit"], quick=True)
    entry = data["implementations"][0]
    assert entry["limited"] and all(n > 0 for n in entry["limited"].values())
    assert sum(cell.get("limited", 0) for f in entry["features"].values() for cell in f.values()) \
        == sum(entry["limited"].values())


@pytest.mark.parametrize("limit,covered", [
    (Limit("any conv2d", ops="conv2d"), True),
    (Limit("backward only", ops="conv2d_backward"), False),
    (Limit("dilated", features="dilation"), True),
    (Limit("grouped", features=["groups", "stride"]), False),
    (Limit("float16 only", dtypes="float16"), False),
    (Limit("cpu float32", dtypes="float32", devices="cpu"), True),
    (Limit("cuda only", devices="cuda"), False),
    (Limit("square dilation", when=lambda p: p.dilation[0] == p.dilation[1]), True),
    (Limit("rectangular dilation", ops="conv2d", when=lambda p: p.dilation[0] != p.dilation[1]), False),
])
def test_a_limit_covers_a_case_only_when_every_given_field_matches(limit, covered):
    assert limit.covers("conv2d", {"conv2d", "dilation"}, "float32", "cpu", PARAMS) is covered


@pytest.mark.parametrize("kwargs,word", [
    (dict(reason=""), "reason"),
    (dict(reason="x", ops="conv3d"), "ops"),
    (dict(reason="x", features="winograd"), "features"),
    (dict(reason="x", dtypes="int8"), "dtypes"),
    (dict(reason="x", devices="tpu"), "devices"),
    (dict(reason="x", when="stride > 1"), "when"),
])
def test_a_malformed_limit_is_a_value_error_naming_the_field(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Limit(**kwargs)
