"""Every framework adapter against the float64 reference (``naive``).

Each claimed feature runs on small problems in every claimed dtype: convolution forward
and gradients (stride, dilation, groups, symmetric and asymmetric padding), max and
average pooling forward and gradients (padding beyond half the kernel, ceil_mode with a
dropped last window, count_include_pad). Inputs are rounded to the dtype first, so the
reference sees exactly what the adapter sees.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import NamedTuple

import ml_dtypes
import numpy as np
import pytest

from conformance.catalogue.cases import Problem
from conformance.judging import references
from conformance.judging.compare import assert_close
from conformance.judging.tolerance import error_bound
from implementations import Unsupported
from implementations.dtypes import DTYPES

#: id -> ConvParams.create arguments. Small on purpose: naive is a Python loop.
CONV_CASES = {
    "plain": dict(x_shape=(2, 3, 6, 6), w_shape=(4, 3, 3, 3)),
    "stride2_pad1": dict(x_shape=(1, 3, 7, 8), w_shape=(4, 3, 3, 3), stride=2, padding=1),
    "asymmetric_padding": dict(x_shape=(2, 2, 6, 5), w_shape=(3, 2, 3, 2), padding=((0, 2), (1, 0))),
    "same_stride2_odd_pixel": dict(x_shape=(1, 2, 8, 8), w_shape=(2, 2, 3, 3), stride=2, padding="same"),
    "dilation2": dict(x_shape=(1, 2, 9, 9), w_shape=(3, 2, 3, 3), dilation=2, padding=2),
    "groups2": dict(x_shape=(2, 4, 6, 6), w_shape=(6, 2, 3, 3), groups=2, padding=1),
    "depthwise_everything": dict(x_shape=(1, 3, 9, 8), w_shape=(3, 1, 3, 2), groups=3, stride=(2, 1),
                                 dilation=(1, 2), padding=((1, 0), (2, 1))),
    "full": dict(x_shape=(1, 1, 4, 4), w_shape=(2, 1, 3, 3), padding="full"),
    "rect_kernel_stride": dict(x_shape=(2, 3, 5, 9), w_shape=(2, 3, 1, 4), stride=(1, 3)),
}

#: id -> PoolParams.create arguments.
POOL_CASES = {
    "k2": dict(x_shape=(2, 3, 6, 6), kernel=2),
    "k3_s2_pad1": dict(x_shape=(1, 2, 7, 7), kernel=3, stride=2, padding=1),
    "ceil": dict(x_shape=(1, 2, 7, 7), kernel=3, stride=2, ceil_mode=True),
    "ceil_pad_count_pad": dict(x_shape=(1, 2, 6, 7), kernel=3, stride=2, padding=1, ceil_mode=True,
                               count_include_pad=True),
    "ceil_drops_window_in_padding": dict(x_shape=(1, 1, 5, 5), kernel=2, stride=2, padding=1, ceil_mode=True),
    "asymmetric_count_pad": dict(x_shape=(1, 2, 6, 6), kernel=3, stride=2, padding=((0, 2), (1, 0)),
                                 count_include_pad=True),
    "asymmetric_ceil": dict(x_shape=(1, 2, 6, 6), kernel=3, stride=2, padding=((2, 0), (0, 1)),
                            ceil_mode=True),
    "pad_over_half_kernel": dict(x_shape=(1, 1, 5, 5), kernel=3, stride=1, padding=2, count_include_pad=True),
    "same": dict(x_shape=(1, 2, 7, 8), kernel=3, stride=2, padding="same"),
    "same_count_pad": dict(x_shape=(1, 2, 8, 7), kernel=3, stride=2, padding="same", count_include_pad=True),
    "rect": dict(x_shape=(2, 1, 5, 8), kernel=(2, 3), stride=(1, 2), padding=(1, 1)),
    "dilated": dict(x_shape=(1, 2, 9, 8), kernel=(3, 2), stride=2, padding=1, dilation=(2, 3)),
    "dilated_stride1": dict(x_shape=(1, 2, 7, 7), kernel=2, stride=1, dilation=2),
    "dilated_ceil_count_pad": dict(x_shape=(1, 1, 8, 8), kernel=2, stride=2, padding=1, dilation=2,
                                   ceil_mode=True, count_include_pad=True),
}


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _array(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.dtype(dtype))


class Expected(NamedTuple):
    """Float64 outputs on the (rounded) inputs and the magnitudes that size their bounds."""

    outputs: dict[str, np.ndarray]
    magnitudes: dict[str, np.ndarray]


def _expected(problem: Problem, inputs: dict[str, np.ndarray | None]) -> Expected:
    f64 = {k: None if v is None else v.astype(np.float64) for k, v in inputs.items()}
    return Expected(references.compute(problem, f64), references.magnitudes(problem, f64))


@cache
def _conv_problem(case: str, dtype: str, bias: bool = True):
    """The problem, its inputs x, w, b, dy in ``dtype``, and what it should give."""
    problem = Problem("conv2d", bias=bias, **CONV_CASES[case])
    p = problem.params
    rng = _rng("conv", case, dtype)
    x, w = _array(rng, p.x_shape, dtype), _array(rng, p.w_shape, dtype)
    b, dy = _array(rng, p.w_shape[:1], dtype), _array(rng, p.y_shape, dtype)
    inputs = {"x": x, "w": w, "b": b if bias else None, "dy": dy}
    return problem, inputs, _expected(problem, inputs)


@cache
def _pool_problem(kind: str, case: str, dtype: str, values: str = "normal"):
    """The ``kind`` (max or avg) pooling problem, its inputs x, dy, and what it should give;
    ``values='ties'`` draws x from {0, 1, 2} so that windows hold several maxima,
    ``'negative'`` keeps x below zero so that a zero-padded max pool would show."""
    problem = Problem(f"{kind}_pool2d", **POOL_CASES[case])
    p = problem.params
    rng = _rng("pool", case, dtype, values)
    if values == "ties":
        x = rng.integers(0, 3, p.x_shape).astype(np.dtype(dtype))
    elif values == "negative":
        x = (-1 - np.abs(rng.standard_normal(p.x_shape))).astype(np.dtype(dtype))
    else:
        x = _array(rng, p.x_shape, dtype)
    inputs = {"x": x, "dy": _array(rng, p.y_shape, dtype)}
    return problem, inputs, _expected(problem, inputs)


def _assert_matches(impl, problem: Problem, expected: Expected, found: dict[str, np.ndarray], dtype: str,
                    what: str) -> None:
    """Each output found within conformance's error bound of the float64 reference."""
    __tracebackhide__ = True
    lengths = references.reduction_lengths(problem)
    for name, f in found.items():
        bound = error_bound(dtype, lengths[name], expected.magnitudes[name], expected.outputs[name],
                            reduced_precision=impl.reduced_precision,
                            extra_roundings=2 if problem.family == "avg_pool2d" else 0,
                            exact=problem.family == "max_pool2d" and name == "y")
        assert_close(f, expected.outputs[name], bound, case=f"{what} [{dtype}]", output=name)


def _run(impl, device: str, op: str, params, arrays, dtype: str, unsupported=None):
    """Call ``op`` on native copies of ``arrays``; check dtype, and that inputs are unchanged.

    Returns the outputs as NumPy, or None after checking that ``op`` raised Unsupported
    matching ``unsupported`` (the documented reason for this case, if any).
    """
    tensors = [None if a is None else impl.to_device(a, device) for a in arrays]
    reason = unsupported
    if reason is not None:
        with pytest.raises(Unsupported, match=reason):
            getattr(impl, op)(*tensors, params)
        return None
    out = getattr(impl, op)(*tensors, params)
    impl.synchronize(device)
    outs = [impl.to_numpy(t) for t in (out if isinstance(out, tuple) else (out,))]
    for o in outs:
        assert o.dtype == np.dtype(dtype), f"{op} returned {o.dtype} for {dtype} input"
    for a, t in zip(arrays, tensors, strict=True):
        if a is not None:
            np.testing.assert_array_equal(impl.to_numpy(t), a, err_msg=f"{op} modified its input")
    return outs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_forward_matches_reference(impl, device, case, dtype):
    problem, a, expected = _conv_problem(case, dtype, bias=case != "plain")
    (found,) = _run(impl, device, "conv2d", problem.params, (a["x"], a["w"], a["b"]), dtype)
    _assert_matches(impl, problem, expected, {"y": found}, dtype, f"{impl.name} conv2d {case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_gradients_match_reference(impl, device, case, dtype, documented_unsupported):
    problem, a, expected = _conv_problem(case, dtype)
    p = problem.params
    found = _run(impl, device, "conv2d_backward", p, (a["x"], a["w"], a["dy"]), dtype,
                 documented_unsupported(impl, "conv2d_backward", p, dtype, device))
    if found is None:
        return
    _assert_matches(impl, problem, expected, dict(zip(("dx", "dw", "db"), found, strict=True)), dtype,
                    f"{impl.name} conv2d_backward {case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(POOL_CASES))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_forward_and_gradient_match_reference(impl, device, kind, case, dtype):
    problem, a, expected = _pool_problem(kind, case, dtype)
    (found_y,) = _run(impl, device, f"{kind}_pool2d", problem.params, (a["x"],), dtype)
    (found_dx,) = _run(impl, device, f"{kind}_pool2d_backward", problem.params, (a["x"], a["dy"]), dtype)
    _assert_matches(impl, problem, expected, {"y": found_y, "dx": found_dx}, dtype,
                    f"{impl.name} {kind}_pool2d {case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["k3_s2_pad1", "pad_over_half_kernel", "asymmetric_ceil"])
def test_max_pool_gradient_goes_to_first_maximum_on_ties(impl, device, case, dtype):
    problem, a, expected = _pool_problem("max", case, dtype, "ties")
    (found,) = _run(impl, device, "max_pool2d_backward", problem.params, (a["x"], a["dy"]), dtype)
    _assert_matches(impl, problem, expected, {"dx": found}, dtype, f"{impl.name} max_pool2d {case} ties")


@pytest.mark.parametrize("case", ["k3_s2_pad1", "pad_over_half_kernel", "asymmetric_ceil", "same"])
def test_max_pool_padding_never_wins_on_negative_input(impl, device, case):
    problem, a, expected = _pool_problem("max", case, "float32", "negative")
    (found_y,) = _run(impl, device, "max_pool2d", problem.params, (a["x"],), "float32")
    (found_dx,) = _run(impl, device, "max_pool2d_backward", problem.params, (a["x"], a["dy"]), "float32")
    _assert_matches(impl, problem, expected, {"y": found_y, "dx": found_dx}, "float32",
                    f"{impl.name} max_pool2d {case} negative")


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_numpy_round_trips_bits_and_dtype(impl, device, dtype):
    a = np.array([[1.0, -2.5, 3.140625], [np.inf, -0.0, 1e-3]]).astype(np.dtype(dtype))
    back = impl.to_numpy(impl.to_device(a, device))
    assert back.dtype == a.dtype
    assert back.tobytes() == a.tobytes()


def test_bfloat16_comes_back_as_ml_dtypes_bfloat16(impl, device):
    a = np.arange(6, dtype=np.float32).reshape(2, 3).astype(ml_dtypes.bfloat16)
    back = impl.to_numpy(impl.to_device(a, device))
    assert back.dtype == np.dtype(ml_dtypes.bfloat16)


def test_unknown_device_is_refused_with_the_devices_it_has(impl):
    with pytest.raises(ValueError, match="device='tpu'"):
        impl.to_device(np.zeros(2), "tpu")


def test_environment_names_version_devices_and_threads(impl):
    env = impl.environment()
    assert isinstance(env[impl.name], str)  # the framework version
    assert set(impl.devices) <= set(env["devices"])
    assert isinstance(env["threads"], (int, dict))
