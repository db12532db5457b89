"""Certification verdicts: clean built-ins, statuses, Unsupported, repro commands, the CLI."""

import json
import time

import numpy as np
import pytest

from conformance.catalogue.selection import find_case
from conformance.cli import main
from conformance.judging.judge import run_case
from conformance.verdicts.certificate import certificate_stem
from conformance.verdicts.certify import certify
from implementations import FEATURES, Limit
from implementations.im2col import Im2col


@pytest.mark.parametrize("name", ["naive", "im2col"])
def test_builtin_implementations_certify_clean_on_every_dtype(name):
    start = time.perf_counter()
    cert = certify(name)
    assert cert.passed, cert.failures[:3]
    assert cert.dtypes == ("float64", "float32", "float16", "bfloat16")
    assert {s.status for s in cert.features} == {"pass"}
    assert all(s.worst_ratio <= 1 for s in cert.features)
    assert time.perf_counter() - start < 60


def test_half_precision_is_judged_against_the_reference_on_rounded_inputs():
    cert = certify("im2col", dtypes=["bfloat16"])
    worst = max(r.worst_ratio for r in cert.results)
    assert 0 < worst <= 1


class NoGroupsBackward(Im2col):
    """Declares grouped backward passes as a limit: those cases are 'limited', nothing fails."""

    name = "no-groups-backward"
    limits = (Limit("grouped backward is not implemented", ops="conv2d_backward",
                    when=lambda p: p.groups > 1),)

    def conv2d_backward(self, x, w, dy, params):
        if params.groups > 1:
            raise AssertionError("a limited case must never be called")
        return super().conv2d_backward(x, w, dy, params)


class RefusesDilation(Im2col):
    """Claims dilation but declares every dilated case a limit: a claimed feature that never passed."""

    name = "refuses-dilation"
    limits = (Limit("no dilation here", features="dilation"),)


class ConvOnly(Im2col):
    name = "conv-only"
    dtypes = ("float32",)
    features = frozenset({"conv2d", "stride"})


def _status(cert, feature, dtype="float32"):
    return next(s for s in cert.features if s.feature == feature and s.dtype == dtype)


def test_limited_cases_are_not_run_and_are_reported_with_their_reason():
    cert = certify(NoGroupsBackward(), dtypes=["float32"])
    assert cert.passed, cert.failures[:2]
    limited = [r for r in cert.results if r.status == "limited"]
    assert limited and all(r.reason == "grouped backward is not implemented" for r in limited)
    assert {r.op for r in limited} == {"conv2d_backward"}
    assert _status(cert, "groups").limited == len(limited)
    assert _status(cert, "groups").status == "pass"  # the grouped forward cases pass


def test_a_claimed_feature_limited_everywhere_fails_as_never_passed():
    cert = certify(RefusesDilation(), dtypes=["float32"])
    assert not cert.passed
    assert _status(cert, "dilation").status == "limited"
    assert any("claimed but no case passed" in f["message"] for f in cert.failures)


def test_unclaimed_features_and_dtypes_are_not_claimed_not_failed():
    cert = certify(ConvOnly(), dtypes=["float32", "float16"])
    assert cert.passed
    assert _status(cert, "conv2d_backward").status == "not claimed"
    assert _status(cert, "conv2d", "float16").status == "not claimed"
    assert _status(cert, "stride").status == "pass"
    assert all(r.status in ("pass", "not claimed") for r in cert.results)


def test_a_failure_names_case_feature_index_values_bound_and_a_repro_command():
    from conformance.mutants import StrideOffByOne

    cert = certify(StrideOffByOne(), dtypes=["float32"])
    f = next(f for f in cert.failures if f["output"] == "y")
    assert f["case"].endswith("-float32") and "stride" in f["feature"]
    assert len(f["index"]) == 4 and f["found"] != f["expected"] and f["ratio"] != 0
    assert f["repro"].startswith("python -m conformance certify conformance.mutants:StrideOffByOne --case ")
    assert f"{f['found']!r}" in f["message"] and "bound" in f["message"]


def test_the_repro_command_reruns_exactly_the_failing_case(tmp_path, capsys):
    from conformance.mutants import StrideOffByOne

    cert = certify(StrideOffByOne(), dtypes=["float32"])
    argv = cert.failures[0]["repro"].split()[3:] + ["--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 1
    data = json.loads((tmp_path / f"{certificate_stem(cert.spec)}.json").read_text())
    assert len(data["results"]) == 1 and data["results"][0]["status"] == "fail"
    markdown = (tmp_path / f"{certificate_stem(cert.spec)}.md").read_text()
    assert markdown.startswith("# Conformance certificate")


def test_certify_cli_exits_zero_for_a_clean_implementation(tmp_path, capsys):
    argv = ["certify", "im2col", "--quick", "--dtype", "float32", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    data = json.loads((tmp_path / "im2col.json").read_text())
    assert data["passed"] and data["selection"] == "quick"
    assert data["environment"]["numpy"] == np.__version__ and "platform" in data["environment"]
    assert "PASSED" in capsys.readouterr().out


def test_certificate_to_dict_is_json_and_lists_every_feature_per_dtype():
    cert = certify("im2col", dtypes=["float16"], quick=True)
    data = json.loads(json.dumps(cert.to_dict()))
    assert {s["feature"] for s in data["features"]} == set(FEATURES)
    assert data["findings"]["cpu/float16"]["max_pool2d NaN"] == "propagates NaN"


def test_a_crash_on_a_claimed_case_is_a_failure_with_the_exception_named():
    class Crashes(Im2col):
        name = "crashes"

        def max_pool2d(self, x, params):
            raise TypeError("boom")

    r = run_case(Crashes(), find_case("max_pool2d-n2c2h6w6-k2-pad_valid"), "cpu", "float32")
    assert r.status == "fail" and "TypeError: boom" in r.checks[0].message


class ClaimsCuda(Im2col):
    name = "claims-cuda"
    devices = ("cpu", "cuda")

    def to_device(self, array, device):
        if device == "cuda":
            raise RuntimeError("no CUDA device here")
        return super().to_device(array, device)


def test_an_unusable_claimed_device_stops_certification_with_a_clear_message(tmp_path, capsys):
    from conformance.verdicts.certify import DeviceUnavailable

    with pytest.raises(DeviceUnavailable, match="device='cuda'.*no CUDA device here"):
        certify(ClaimsCuda(), devices=["cuda"])
    assert main(["certify", f"{__name__}:ClaimsCuda", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "not certified" in capsys.readouterr().err
