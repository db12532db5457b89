"""The matrix and certificate renderings, and the matrix/references commands."""

import json

from conformance.cli import main
from conformance.mutants import CeilModeIgnored
from conformance.rendering.html import matrix_html
from conformance.rendering.markdown import certificate_markdown, matrix_markdown
from conformance.verdicts.certify import certify
from conformance.verdicts.matrix import build


def test_matrix_certifies_given_implementations_and_reports_ones_that_cannot_load():
    data = build(["im2col", "conformance.mutants:CeilModeIgnored", "nosuch.module:Impl"], quick=True)
    by = {e["name"]: e for e in data["implementations"]}
    assert by["im2col"]["passed"] and not by["mutant-ceil-mode-ignored"]["passed"]
    assert by["mutant-ceil-mode-ignored"]["features"]["ceil_mode"]["float32"]["status"] == "fail"
    assert "failed to load" in by["nosuch.module:Impl"]["reason"]
    md, page = matrix_markdown(data), matrix_html(data)
    assert "| ceil_mode |" in md and "✗" in md and "im2col (PASS)" in md
    assert "nosuch.module:Impl" in md and "<table>" in page and "propagates NaN" in page


def test_certificate_markdown_shows_verdict_failures_repro_and_findings():
    cert = certify(CeilModeIgnored(), dtypes=["float32"], quick=True)
    md = certificate_markdown(cert.to_dict())
    assert "— FAILED" in md and "## Failures" in md
    assert "python -m conformance certify conformance.mutants:CeilModeIgnored --case" in md
    assert "max_pool2d NaN" in md and "| ceil_mode |" in md


def test_matrix_command_writes_markdown_html_json_and_certificates(tmp_path, capsys):
    assert main(["matrix", "--impl", "im2col", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    assert {p.name for p in tmp_path.iterdir()} >= {"matrix.md", "matrix.html", "matrix.json", "certificates"}
    assert json.loads((tmp_path / "matrix.json").read_text())["implementations"][0]["passed"]
    assert (tmp_path / "certificates" / "im2col.md").exists()


def test_matrix_command_fails_when_an_implementation_fails(tmp_path, capsys):
    argv = ["matrix", "--impl", "conformance.mutants:KernelFlipped", "--quick", "--out", str(tmp_path),
            "--no-progress"]
    assert main(argv) == 1


def test_references_check_proves_the_golden_data_unchanged(capsys):
    assert main(["references", "--check"]) == 0
    assert "golden data unchanged" in capsys.readouterr().out
