"""The counts the docs state in prose are the code's: a change to the catalogue, the gallery or
a profile fails here until the page says the new number."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _stated(page: str, pattern: str) -> list[int]:
    found = [int(n) for n in re.findall(pattern, (DOCS / page).read_text())]
    assert found, f"docs/{page} no longer says {pattern!r}: update this test with the page"
    return found


def test_cases_per_dtype_are_the_catalogues():
    from conformance.catalogue.selection import all_cases

    for page in ("conformance.md", "ci.md"):
        assert _stated(page, r"(\d+) cases per dtype") == [len(all_cases())]


def test_the_gallery_counts_are_the_galleries():
    from conformance import mutants

    assert _stated("conformance.md", r"gallery of (\d+) deliberately wrong") == [len(mutants.GALLERY)]
    assert _stated("conformance.md", r"plus (\d+) that are right on") == [len(mutants.SCALE_GALLERY)]


@pytest.mark.parametrize("profile, pattern", [("smoke", r"`smoke` \((\d+) tiny layers"),
                                              ("cpu", r"`cpu` \((\d+) layers"),
                                              ("gpu", r"`gpu` \((\d+) workloads")])
def test_the_profiles_sizes_are_the_profiles(profile, pattern):
    from benchmarks.workloads import get_profile

    assert _stated("benchmarks.md", pattern) == [len(get_profile(profile).workloads)]


def test_the_certificate_states_listed_are_the_certificates():
    from typing import get_args

    from conformance.verdicts.certificate import State

    text = (DOCS / "conformance.md").read_text()
    paragraph = text[text.index("**Reading a certificate.**"):].split("\n\n")[0]
    assert set(re.findall(r"`([a-z ]+)`", paragraph)) >= set(get_args(State))
