"""The one assertion helper the tests use: its message names what a failure needs."""

import numpy as np
import pytest

from conformance.judging.compare import assert_close


def test_assert_close_names_case_output_worst_index_found_expected_and_bound():
    expected = np.zeros((2, 3))
    found = expected.copy()
    found[1, 2] = 0.5
    with pytest.raises(AssertionError) as info:
        assert_close(found, expected, np.full((2, 3), 0.1), case="conv-case", output="dx", repro="run me")
    message = str(info.value)
    parts = ("conv-case", "dx[1, 2]", "= 0.5", "expected 0.0", "bound 0.1", "ratio 5", "reproduce: run me")
    for part in parts:
        assert part in message, (part, message)


def test_assert_close_passes_within_the_bound_and_returns_the_check():
    check = assert_close(np.array([1.0, 2.05]), np.array([1.0, 2.0]), 0.1, case="c")
    assert check.passed and check.index == (1,) and check.ratio == pytest.approx(0.5)


def test_assert_close_hides_its_own_frame_from_pytest_tracebacks():
    assert "__tracebackhide__" in assert_close.__code__.co_varnames
