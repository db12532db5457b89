"""Searching random problems for a failure of one implementation, outside a certification.

``python -m conformance explore SPEC`` and the property tests use these: each family is
searched with the strategies of :mod:`conformance.search.strategies` and a failure is
shrunk to a minimal problem.
"""

from __future__ import annotations

import random

from hypothesis import find, settings
from hypothesis.errors import NoSuchExample

from conformance.catalogue.cases import Problem
from conformance.judging.judge import run_case
from conformance.judging.result import CaseResult
from implementations import Implementation

from .strategies import conv_problems, pool_problems


def check_problem(impl: Implementation, problem: Problem, dtype: str = "float64",
                  device: str = "cpu") -> list[CaseResult]:
    """Forward and backward results of ``impl`` on ``problem`` (reference on the fly)."""
    return [run_case(impl, case, device, dtype) for case in problem.cases()]


def failures(impl: Implementation, problem: Problem, dtype: str = "float64") -> list[str]:
    """Messages of every failed check (empty when the problem passes or is not claimed)."""
    return [c.message for r in check_problem(impl, problem, dtype) for c in r.checks if not c.passed]


def explore(impl: Implementation, dtype: str = "float32", max_examples: int = 500,
            seed: int | None = None) -> list[tuple[Problem, list[str]]]:
    """Search random problems for a failure of ``impl``; each found one shrinks to a minimal problem.

    One search per family (convolution, max pooling, average pooling); returns
    ``(minimal problem, failure messages)`` for every family that fails. ``seed=None``
    explores freely; an int makes the search reproducible.
    """
    strategies = [conv_problems(), pool_problems("max_pool2d"), pool_problems("avg_pool2d")]
    found = []
    for strategy in strategies:
        config = settings(max_examples=max_examples, database=None, derandomize=seed is not None,
                          deadline=None)
        try:
            problem = find(strategy, lambda p: bool(failures(impl, p, dtype)), settings=config,
                           random=None if seed is None else random.Random(seed))
        except NoSuchExample:
            continue
        found.append((problem, failures(impl, problem, dtype)))
    return found
