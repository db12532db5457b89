"""The certificate cache: a change to any part of the key certifies again; no change reuses."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from conformance import cli
from conformance.catalogue.selection import quick_cases
from conformance.execution.worker import Worker
from conformance.verdicts import cache as cache_module
from conformance.verdicts.cache import CertificateCache, certifier_files, certify_or_reuse, key_of, key_parts
from conformance.verdicts.certify import CertifyOptions, certify

ROOT = Path(__file__).resolve().parents[2]
MYCONV = ROOT / "docs" / "examples" / "myconv.py"
#: Small, quick certifications: one dtype, few repeated calls.
BASE = CertifyOptions(dtypes=("float64",), quick=True, min_calls=0)


@pytest.fixture(scope="module")
def worker():
    with Worker("im2col") as w:
        yield w


@pytest.mark.parametrize("change", [
    {"dtypes": ("float32",)}, {"devices": ("cuda",)}, {"quick": False}, {"seed": 7}, {"sweep_examples": 3},
    {"min_calls": 5}, {"case_timeout": 30.0}, {"max_memory": 1 << 30}, {"max_seconds": 100.0},
    {"shard": (1, 2)}, {"cases": quick_cases()[:2]}, {"selection": "shapes.txt"},
])
def test_every_option_a_verdict_depends_on_is_part_of_the_key(worker, change):
    assert key_of(key_parts("im2col", worker, dataclasses.replace(BASE, **change))) != \
        key_of(key_parts("im2col", worker, BASE))


def test_the_same_inputs_give_the_same_key_and_progress_is_not_one_of_them(worker):
    assert key_of(key_parts("im2col", worker, BASE)) == \
        key_of(key_parts("im2col", worker, dataclasses.replace(BASE, progress=True, on_checkpoint=print)))


@pytest.mark.parametrize("part", ["environment", "sources", "describe"])
def test_what_the_implementation_reports_and_runs_from_is_part_of_the_key(worker, monkeypatch, part):
    before = key_of(key_parts("im2col", worker, BASE))
    changed = json.loads(json.dumps(worker.claims[part], default=str))
    changed["changed"] = "yes"  # a framework version, a source file's digest, a declared limit
    monkeypatch.setitem(worker.claims, part, changed)
    assert key_of(key_parts("im2col", worker, BASE)) != before


def test_the_certifier_key_covers_its_code_golden_data_and_reference_but_not_the_implementations():
    files = {str(p.relative_to(ROOT)) for p in certifier_files()}
    assert {"conformance/verdicts/certify.py", "conformance/judging/compare.py",
            "conformance/golden/MANIFEST.json", "conformance/golden/conv2d.npz",
            "implementations/naive.py", "implementations/geometry.py"} <= files
    assert not files & {"implementations/im2col.py", "implementations/frameworks/jax_adapter.py"}


def test_the_certifier_version_is_part_of_the_key(worker, monkeypatch):
    before = key_of(key_parts("im2col", worker, BASE))
    monkeypatch.setattr(cache_module, "version", lambda: "99.0")
    assert key_of(key_parts("im2col", worker, BASE)) != before


def test_a_reused_certificate_equals_the_stored_one_apart_from_the_reuse_record(tmp_path, monkeypatch):
    spec = "conformance.mutants:StrideOffByOne"
    with Worker(spec) as w:
        first = certify_or_reuse(spec, BASE, worker=w, cache=CertificateCache(tmp_path))
    assert not first.passed and not first.reused and first.failures  # a failing one, with blame

    def no_certification(*args, **kwargs):
        raise AssertionError("certified again, though nothing changed")

    monkeypatch.setattr(cache_module, "certify", no_certification)
    with Worker(spec) as w:
        again = certify_or_reuse(spec, BASE, worker=w, cache=CertificateCache(tmp_path))
    assert again.reused["certified"] == first.started and len(again.reused["key"]) == 64
    assert {k: v for k, v in again.to_dict().items() if k != "reused"} == first.to_dict()
    with Worker(spec) as w, pytest.raises(AssertionError, match="certified again"):
        certify_or_reuse(spec, BASE, worker=w, cache=CertificateCache(tmp_path, fresh=True))


def test_only_a_complete_certificate_is_stored(worker, tmp_path):
    store = CertificateCache(tmp_path)
    cert = certify("im2col", BASE, worker=worker)
    store.store("k" * 64, "im2col", {}, dataclasses.replace(cert, state="incomplete"))
    assert store.lookup("k" * 64, "im2col") is None
    store.store("k" * 64, "im2col", {}, cert)
    assert store.lookup("k" * 64, "im2col")["certificate"]["state"] == "complete"


def _matrix(out: Path, *specs: str, extra: tuple[str, ...] = ()) -> tuple[dict, str]:
    code = cli.main(["matrix", "--impl", *specs, "--quick", "--min-calls", "0", "--no-progress",
                     "--out", str(out), "--cache-dir", str(out / "cache"), *extra])
    assert code == 0
    return json.loads((out / "matrix.json").read_text()), ""


def test_editing_one_plug_in_recertifies_only_it_and_jobs_give_the_serial_verdicts(tmp_path, capsys):
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    shutil.copy(MYCONV, first)
    shutil.copy(MYCONV, second)
    specs = (f"{first}:MyConv", f"{second}:MyConv")
    serial, _ = _matrix(tmp_path, *specs, extra=("--jobs", "1"))
    assert not any("reused" in e for e in serial["implementations"])
    again, _ = _matrix(tmp_path, *specs, extra=("--jobs", "2"))
    assert all("reused" in e for e in again["implementations"])
    assert "reused: certified" in capsys.readouterr().out
    first.write_text(first.read_text() + "\n# one line more\n")
    edited, _ = _matrix(tmp_path, *specs, extra=("--jobs", "2"))
    assert ["reused" in e for e in edited["implementations"]] == [False, True]

    def verdicts(matrix: dict) -> list:
        return [{k: v for k, v in e.items() if k not in ("seconds", "reused", "spec")}
                for e in matrix["implementations"]]
    assert verdicts(edited) == verdicts(serial)
