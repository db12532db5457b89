"""Every console example in README.md and docs/*.md prints what the document shows (see console.py)."""

import pytest

from tests.docs import console

EXAMPLES = [e for document in console.DOCUMENTS for e in console.examples(document)]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_the_console_example_prints_what_the_document_shows(example, tmp_path):
    actual = console.run(example, tmp_path)
    assert len(actual) == len(example.commands), f"{example.where}: the block stopped early: {actual}"
    if not all(console.matches(e, a) for e, a in zip(example.outputs, actual, strict=True)):
        pytest.fail(console.report(example, actual), pytrace=False)


def test_masking_hides_times_paths_and_dates_but_not_counts():
    shown = "myconv: PASSED (106 not claimed, 30 pass; 2.6 s)\nwritten /tmp/a/b.json at 2026-12-07T16:02:42Z"
    assert console.matches(shown, "myconv: PASSED (106 not claimed, 30 pass; 14.0 s)\n"
                                  "written /home/x/b.json at 2025-01-01T00:00:00Z")
    assert not console.matches(shown, "myconv: PASSED (88 not claimed, 16 pass; 2.6 s)\n"
                                      "written /tmp/a/b.json at 2026-12-07T16:02:42Z")


def test_an_ellipsis_line_stands_for_any_lines_and_a_trailing_one_for_the_rest_of_a_line():
    assert console.matches("first\n...\nlast ...", "first\nskipped\nskipped too\nlast of all")
    assert not console.matches("first\n...\nlast ...", "first\nskipped\nnot the last")


def test_the_examples_are_found_in_readme_and_docs():
    documents = {e.document.name for e in EXAMPLES}
    assert {"README.md", "ci.md"} <= documents
