"""Result files a plug-in (or a hand) wrote: their strings are text in the Markdown report, and
a file or row with fields of the wrong type is left out by name while the report is written."""

import json

from reports import __main__ as cli
from reports import render

HOSTILE = ("# Forged heading\n<script>alert(1)</script> <img src=x onerror=alert(1)> "
           "[click](javascript:alert(1)) | cell")


def test_markdown_text_cannot_become_html_a_link_a_heading_or_a_cell_break():
    out = render.md_text(HOSTILE, cell=True)
    assert "<script" not in out and "<img" not in out and "](javascript" not in out
    assert "\n" not in out and " | " not in out.replace("\\|", "")
    paragraph = render.md_text(HOSTILE)
    assert not any(line.startswith("#") for line in paragraph.splitlines())
    assert render.md_text("**bold** and `code`") == "**bold** and `code`"  # the report's own marks


def test_a_hostile_environment_string_is_escaped_in_index_md(tmp_path, result_row, write_run):
    path = write_run(tmp_path / "r.json", "m", [result_row("im2col", "w.conv", 0.5)])
    doc = json.loads(path.read_text())
    doc["implementations"] = {"im2col": {"class": "x", "environment": {"note": HOSTILE}}}
    doc["skipped"] = [{"task": doc["results"][0]["task"] | {"impl": "evil"}, "reason": HOSTILE}]
    path.write_text(json.dumps(doc))
    assert cli.main(["--results", str(path), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "index.md").read_text()
    assert "<script" not in md and "<img" not in md and "](javascript" not in md
    assert [line for line in md.splitlines() if line.startswith("# ")] == [md.splitlines()[0]]
    assert "&lt;script&gt;" in md  # said, not run


def test_wrong_typed_fields_leave_out_the_file_or_row_by_name(tmp_path, result_row, write_run, capsys):
    good = write_run(tmp_path / "good.json", "m", [result_row("im2col", "w.conv", 0.5)])
    bad_env = write_run(tmp_path / "env.json", "n", [result_row("im2col", "w.conv", 0.5)])
    doc = json.loads(bad_env.read_text())
    doc["environment"] = "a string"
    bad_env.write_text(json.dumps(doc))
    bad_rows = write_run(tmp_path / "rows.json", "o", [result_row("im2col", "w.conv", 0.5),
                                                       result_row("torch", "w.conv", 0.5),
                                                       result_row("naive", "w.conv", 0.5)])
    doc = json.loads(bad_rows.read_text())
    doc["results"][0]["task"]["impl"] = ["a", "list"]
    doc["results"][1]["host_time"]["times_s"][0] = 1e308
    bad_rows.write_text(json.dumps(doc))
    files = [str(good), str(bad_env), str(bad_rows)]
    assert cli.main(["--results", *files, "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert f"{bad_env}: left out: 'environment' is a str, not an object" in err
    assert f"{bad_rows}: results[0]" in err and "impl=['a', 'list']: must be a string" in err
    assert f"{bad_rows}: results[1] (torch/" in err and "1e+308" in err
    assert (tmp_path / "out" / "index.md").exists() and (tmp_path / "out" / "index.html").exists()
