"""The regression corpus: failures the sweep found in built-ins run in every certification
(tests/adapters/test_certify_adapters.py checks that each framework fails exactly its own)."""

import re

from conformance.catalogue.cases import problem_from_name
from conformance.catalogue.corpus import CORPUS
from conformance.catalogue.selection import all_cases, quick_cases
from conformance.judging.judge import CATALOGUED, run_case
from implementations import get


def test_every_corpus_problem_runs_in_full_and_quick_certifications_and_names_what_broke():
    full, quick = {c.name for c in all_cases()}, {c.name for c in quick_cases()}
    for problem in CORPUS:
        for case in problem.cases():
            assert case.name in full and case.name in quick
            assert problem_from_name(case.name).problem == problem
        assert re.search(r"(JAX|TensorFlow|onnxruntime) \d+\.\d+", problem.note), problem.note


def test_the_found_failures_are_in_the_corpus():
    names = {c.name for p in CORPUS for c in p.cases()}
    assert {"conv2d_backward-n1c1h8w8-k1r4s2-st2-pad1_1x1_2-dil3x1-bias",
            "conv2d_backward-n1c1h6w4-k1r3s2-st1x2-pad0x1-dil2x1-nobias",
            "conv2d_backward-n2c1h1w1-k1r1s1-st2-pad_valid-nobias",
            "conv2d-n2c1h2w2-k1r1s2-st1x5-pad_valid-nobias"} <= names


def test_corpus_references_are_computed_at_run_time_and_a_correct_implementation_passes():
    assert not any(p in CATALOGUED for p in CORPUS)  # the golden data do not list them
    for case in (c for p in CORPUS for c in p.cases()):
        for dtype in ("float64", "bfloat16"):
            assert run_case(get("im2col"), case, "cpu", dtype).status == "pass", case.name

