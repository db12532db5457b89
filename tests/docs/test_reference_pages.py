"""The reference pages: the certificate and the result file, each described field by field and
backed by a JSON Schema shipped in the package that real files satisfy; the Python API page's
example runs as it stands."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
#: Tables a page describes once for two places with the same fields.
SAME_FIELDS = {"per_operation[]": "features[]", "skipped[].task": "results[].task",
               "results[].device_time": "results[].host_time"}


def _schema(package: str, name: str) -> dict:
    return json.loads(files(package).joinpath(name).read_text())


CERTIFICATE = _schema("conformance.verdicts", "certificate.schema.json")
RESULTS = _schema("benchmarks", "results.schema.json")


def _paths(schema: dict, prefix: str = "") -> list[str]:
    """Every field the schema names, as the page writes it (``results[].checks[].ratio``)."""
    out = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        out.append(path)
        out += _paths(sub, path + ".")
        if isinstance(sub.get("items"), dict):
            out += _paths(sub["items"], path + "[].")
    return out


def _undescribed(schema: dict, page: Path) -> list[str]:
    text = page.read_text()
    missing = []
    for path in _paths(schema):
        for alias, same in SAME_FIELDS.items():
            if path.startswith(alias + "."):
                path = same + path[len(alias):]
        if f"| `{path}` |" not in text:
            missing.append(path)
    return missing


def _errors(schema: dict, document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in validator.iter_errors(document)]


@pytest.mark.parametrize("schema, page", [(CERTIFICATE, "certificate.md"), (RESULTS, "results.md")])
def test_every_field_of_the_schema_is_described_on_its_page(schema, page):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert _undescribed(schema, DOCS / page) == []


def test_a_field_missing_from_the_page_is_found():
    schema = {"properties": {"a": {"type": "object", "properties": {"b": {}}}, "c": {"items": {
        "properties": {"d": {}}}}}}
    page = DOCS.parent / "tests" / "docs" / "test_reference_pages.py"  # holds none of those rows
    assert _undescribed(schema, page) == ["a", "a.b", "c", "c[].d"]


def test_real_certificates_satisfy_the_shipped_schema(tmp_path):
    shutil.copy(DOCS / "examples" / "myconv.py", tmp_path / "myconv.py")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for spec in ("im2col", "./myconv.py:WrongConv"):  # a pass, and failures with a sweep and blame
        done = subprocess.run([sys.executable, "-m", "convcert", "certify", spec, "--quick", "--dtype",
                               "float32", "--sweep", "2", "--no-progress", "--out", str(tmp_path / "out")],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode in (0, 1), done.stderr
    documents = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("*.json"))]
    assert [d["passed"] for d in documents] == [True, False]
    assert documents[1]["failures"] and documents[1]["sweep"]["failures"]
    for document in documents:
        assert _errors(CERTIFICATE, document) == []


def test_the_schema_rejects_a_certificate_with_a_field_it_does_not_describe(tmp_path):
    from conformance.verdicts.certify import certify

    document = certify("im2col", quick=True, dtypes=["float64"], isolate=False).to_dict()
    assert _errors(CERTIFICATE, document) == []
    assert _errors(CERTIFICATE, {**document, "verdict": "pass"}) != []
    assert _errors(CERTIFICATE, {**document, "state": "done"}) != []


def _results_errors(document: dict) -> list[str]:
    return _errors(RESULTS, document)


def test_the_published_and_synthetic_result_files_satisfy_the_shipped_schema():
    """(A fresh smoke run is checked in tests/benchmarks/test_end_to_end.py, on its run.)"""
    from tests.benchmarks.synthetic_results import document

    samples = [json.loads(p.read_text()) for p in (REPO / "reports" / "samples").glob("*/*.json")]
    assert samples
    for doc in [*samples, document(40)]:
        assert _results_errors(doc) == []
    assert _results_errors({**samples[0], "schema": 3}) != []
    assert _results_errors({**samples[0], "results": [{**samples[0]["results"][0], "speed": 1}]}) != []


@pytest.mark.parametrize("page", ["certificate.md", "results.md"])
def test_the_pages_schema_loading_snippet_runs(page):
    (code,) = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    namespace: dict = {}
    exec(compile(code, str(DOCS / page), "exec"), namespace)
    assert namespace["schema"]["type"] == "object" and "$schema" in namespace["schema"]


def test_the_api_pages_example_runs_and_prints_what_it_shows(tmp_path, monkeypatch):
    from tests.docs.console import mask

    text = (DOCS / "api.md").read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S)[:1])
    shown = "\n".join(line[2:] for line in code.splitlines() if line.startswith("# "))
    shutil.copy(DOCS / "examples" / "myconv.py", tmp_path / "myconv.py")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(DOCS / "api.md"), "exec"), {"__name__": "api_example"})
    assert mask(printed.getvalue()) == mask(shown)
    assert (tmp_path / "certificates").is_dir()
