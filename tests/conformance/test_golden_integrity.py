"""Golden integrity: data forged, incomplete or unlisted stop the run before anything is judged."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from conformance.cli import main
from conformance.judging import references
from conformance.judging.references import MANIFEST, GoldenError
from conformance.verdicts.certificate import certificate_stem


@pytest.fixture
def copy(tmp_path):
    """A private copy of the golden data, used by the suite for the test's duration."""
    target = tmp_path / "golden"
    shutil.copytree(references.GOLDEN_DIR, target)
    return target


def _manifest(folder):
    return json.loads((folder / MANIFEST).read_text())


def _save_manifest(folder, manifest):
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _forge_without_bias(folder):
    """Subtract the bias from every stored conv2d output and update every digest: consistent."""
    with np.load(folder / "conv2d.npz") as data:
        arrays = {k: data[k] for k in data.files}
    for key in [k for k in arrays if k.endswith("/b")]:
        case = key[:-2]
        arrays[f"{case}/y"] = arrays[f"{case}/y"] - arrays[key][None, :, None, None]
    data = references._npz_bytes(arrays)
    (folder / "conv2d.npz").write_bytes(data)
    manifest = _manifest(folder)
    manifest["files"]["conv2d.npz"] = hashlib.sha256(data).hexdigest()
    manifest["cases"]["conv2d.npz"] = references._case_digests(arrays)
    _save_manifest(folder, manifest)


def test_the_stored_golden_data_verify():
    references.verify_golden()


def test_outputs_forged_with_every_digest_updated_fail_the_recomputation(copy):
    _forge_without_bias(copy)
    with pytest.raises(GoldenError, match=r"conv2d\.npz: case conv2d-\S+-bias\S*: stored y disagrees"):
        references.verify_golden(copy)


def test_forged_data_stop_certification_with_exit_2_and_judge_nothing(copy, tmp_path, monkeypatch, capsys):
    _forge_without_bias(copy)
    monkeypatch.setattr(references, "GOLDEN_DIR", copy)
    out = tmp_path / "out"
    code = main(["certify", "tests.conformance.misbehaving:IgnoresBias", "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "conv2d.npz: case conv2d-" in err and len(err.strip().splitlines()) == 1
    stem = certificate_stem("tests.conformance.misbehaving:IgnoresBias")
    data = json.loads((out / f"{stem}.json").read_text())
    assert data["state"] == "could not run" and data["passed"] is False and data["results"] == []


def test_a_file_missing_from_the_manifest_is_an_error(copy):
    manifest = _manifest(copy)
    del manifest["files"]["conv2d.npz"]
    _save_manifest(copy, manifest)
    with pytest.raises(GoldenError, match=r"conv2d\.npz: not listed in MANIFEST\.json"):
        references.verify_golden(copy)


def test_a_case_missing_from_the_manifest_is_an_error_naming_it(copy):
    manifest = _manifest(copy)
    case = sorted(manifest["cases"]["max_pool2d.npz"])[0]
    del manifest["cases"]["max_pool2d.npz"][case]
    _save_manifest(copy, manifest)
    with pytest.raises(GoldenError, match=rf"max_pool2d\.npz: case max_pool2d-{case} is not listed"):
        references.verify_golden(copy)


def test_an_unlisted_file_is_an_error(copy):
    (copy / "conv2d_extra.npz").write_bytes((copy / "conv2d.npz").read_bytes())
    with pytest.raises(GoldenError, match=r"conv2d_extra\.npz: not listed in MANIFEST\.json"):
        references.verify_golden(copy)


def test_a_case_whose_arrays_differ_from_its_digest_is_named(copy):
    manifest = _manifest(copy)
    case = sorted(manifest["cases"]["avg_pool2d.npz"])[1]
    manifest["cases"]["avg_pool2d.npz"][case] = "0" * 64
    _save_manifest(copy, manifest)
    with pytest.raises(GoldenError, match=rf"avg_pool2d\.npz: case {case}: sha256 of its arrays differs"):
        references.verify_golden(copy)


def _forge_one_output(folder, indent):
    """Change one element of one stored output by one ulp, update its digests, and write the
    manifest with other whitespace (which changed what a sampled check looked at)."""
    with np.load(folder / "conv2d.npz") as data:
        arrays = {k: data[k] for k in data.files}
    key = sorted(k for k in arrays if k.endswith("/dw"))[indent]
    arrays[key] = arrays[key].copy()
    arrays[key].flat[0] = np.nextafter(arrays[key].flat[0], np.inf)
    data = references._npz_bytes(arrays)
    (folder / "conv2d.npz").write_bytes(data)
    manifest = _manifest(folder)
    manifest["files"]["conv2d.npz"] = hashlib.sha256(data).hexdigest()
    manifest["cases"]["conv2d.npz"] = references._case_digests(arrays)
    text = json.dumps(manifest, indent=indent, sort_keys=indent % 2 == 0) + " " * indent
    (folder / MANIFEST).write_text(text)
    references._verified.cache_clear()
    return key.rpartition("/")[0]


@pytest.mark.parametrize("indent", range(6))
def test_one_output_forged_by_one_ulp_with_its_digests_updated_is_caught_whatever_the_manifest_bytes(
        copy, indent):
    case = _forge_one_output(copy, indent)
    with pytest.raises(GoldenError, match=rf"case conv2d-{re.escape(case)}: stored dw disagrees"):
        references.verify_golden(copy)
