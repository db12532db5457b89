"""The suite has teeth: every deliberately wrong implementation is rejected, naming the feature
it breaks; variants that are correct under the error model certify clean."""

import pytest

from conformance.mutants import GALLERY, LEGAL
from conformance.verdicts.certify import certify


@pytest.mark.parametrize("mutant,feature", GALLERY, ids=[m.__name__ for m, _ in GALLERY])
def test_mutant_is_rejected_naming_the_broken_feature(mutant, feature):
    cert = certify(mutant())
    assert not cert.passed
    assert feature in cert.failed_features, sorted(cert.failed_features)
    named = {f["feature"] for f in cert.failures}
    assert any(feature in n.split("+") for n in named)


def test_gallery_is_at_least_the_twelve_the_issue_lists_plus_more():
    assert len(GALLERY) >= 16


@pytest.mark.parametrize("variant", LEGAL, ids=[v.__name__ for v in LEGAL])
def test_legal_variants_certify_clean(variant):
    cert = certify(variant())
    assert cert.passed, cert.failures[:2]


def test_undeclared_tf32_fails_but_the_same_arithmetic_declared_passes():
    from conformance.mutants import DeclaredTF32, UndeclaredTF32

    assert not certify(UndeclaredTF32(), dtypes=["float32"]).passed
    assert certify(DeclaredTF32(), dtypes=["float32"]).passed
