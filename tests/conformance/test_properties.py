"""Random valid problems (Hypothesis) against the reference computed on the fly."""

import pytest
from hypothesis import find, given, settings

from conformance.mutants import DilationIgnored, StrideOffByOne
from conformance.search.explore import failures
from conformance.search.strategies import conv_problems, pool_problems
from implementations import get


@pytest.mark.parametrize("dtype", ["float64", "float16"])
@given(problem=conv_problems())
@settings(max_examples=25)
def test_im2col_conforms_on_random_convolutions(problem, dtype):
    assert failures(get("im2col"), problem, dtype) == []


@given(problem=pool_problems())
@settings(max_examples=30)
def test_im2col_conforms_on_random_poolings(problem):
    assert failures(get("im2col"), problem, "float32") == []


@pytest.mark.parametrize("mutant,attr", [(StrideOffByOne, "stride"), (DilationIgnored, "dilation")])
def test_a_failing_mutant_shrinks_to_a_minimal_problem(mutant, attr):
    problem = find(conv_problems(), lambda p: bool(failures(mutant(), p, "float64")),
                   settings=settings(derandomize=True, max_examples=300, database=None))
    p = problem.params
    assert max(getattr(p, attr)) == 2  # the smallest value that shows the bug
    assert p.x_shape[0] == 1 and p.groups == 1 and not problem.bias


def test_explore_command_prints_a_minimal_failing_problem_and_exits_one(capsys):
    from conformance.cli import main

    assert main(["explore", "conformance.mutants:GroupsMixed", "--examples", "200", "--seed", "1"]) == 1
    out = capsys.readouterr().out
    assert "minimal failing problem: conv2d-n1c2h1w1-k2r1s1-pad_valid-g2-nobias" in out
