"""Every framework adapter against the float64 reference (``naive``).

Each claimed feature runs on small problems in every claimed dtype: convolution forward
and gradients (stride, dilation, groups, symmetric and asymmetric padding), max and
average pooling forward and gradients (padding beyond half the kernel, ceil_mode with a
dropped last window, count_include_pad). Inputs are rounded to the dtype first, so the
reference sees exactly what the adapter sees.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import ml_dtypes
import numpy as np
import pytest

from implementations import ConvParams, PoolParams, Unsupported, get

DTYPES = ("float64", "float32", "float16", "bfloat16")

#: error bound relative to (1 + max |reference|), per dtype: a few ulps times the
#: longest reduction here (36 products), with room for float16/bfloat16 accumulation.
TOLERANCE = {"float64": 1e-12, "float32": 2e-5, "float16": 1e-2, "bfloat16": 6e-2}

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
    "asymmetric_ceil": dict(x_shape=(1, 2, 6, 6), kernel=3, stride=2, padding=((2, 0), (0, 1)), ceil_mode=True),
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


def _assert_close(found: np.ndarray, expected: np.ndarray, dtype: str, what: str) -> None:
    assert found.shape == expected.shape, f"{what}: shape {found.shape}, expected {expected.shape}"
    err = np.abs(found.astype(np.float64) - expected)
    bound = TOLERANCE[dtype] * (1.0 + float(np.max(np.abs(expected))))
    worst = np.unravel_index(np.nanargmax(err) if err.size else 0, err.shape)
    assert not np.isnan(err).any() and err[worst] <= bound, (
        f"{what} [{dtype}]: worst index {worst}: found {found[worst]!r}, expected {expected[worst]!r}, "
        f"|error| {err[worst]:.3g} > bound {bound:.3g}"
    )


@lru_cache(maxsize=None)
def _conv_problem(case: str, dtype: str):
    """(params, x, w, b, dy) in ``dtype`` and the float64 reference (y, dx, dw, db)."""
    p = ConvParams.create(**CONV_CASES[case])
    rng = _rng("conv", case, dtype)
    x, w = _array(rng, p.x_shape, dtype), _array(rng, p.w_shape, dtype)
    b, dy = _array(rng, p.w_shape[:1], dtype), _array(rng, p.y_shape, dtype)
    naive = get("naive")
    f64 = [a.astype(np.float64) for a in (x, w, b, dy)]
    ref = (naive.conv2d(f64[0], f64[1], f64[2], p), *naive.conv2d_backward(f64[0], f64[1], f64[3], p))
    return p, (x, w, b, dy), ref


@lru_cache(maxsize=None)
def _pool_problem(case: str, dtype: str, values: str = "normal"):
    """(params, x, dy) and the reference (ymax, dxmax, yavg, dxavg); ``values='ties'``
    draws x from {0, 1, 2} so that windows hold several maxima, ``'negative'`` keeps x
    below zero so that a zero-padded max pool would show."""
    p = PoolParams.create(**POOL_CASES[case])
    rng = _rng("pool", case, dtype, values)
    if values == "ties":
        x = rng.integers(0, 3, p.x_shape).astype(np.dtype(dtype))
    elif values == "negative":
        x = (-1 - np.abs(rng.standard_normal(p.x_shape))).astype(np.dtype(dtype))
    else:
        x = _array(rng, p.x_shape, dtype)
    dy = _array(rng, p.y_shape, dtype)
    naive = get("naive")
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    ref = (naive.max_pool2d(x64, p), naive.max_pool2d_backward(x64, dy64, p),
           naive.avg_pool2d(x64, p), naive.avg_pool2d_backward(x64, dy64, p))
    return p, (x, dy), ref


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
    for a, t in zip(arrays, tensors):
        if a is not None:
            np.testing.assert_array_equal(impl.to_numpy(t), a, err_msg=f"{op} modified its input")
    return outs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_forward_matches_reference(impl, device, case, dtype):
    p, (x, w, b, _), (y, *_) = _conv_problem(case, dtype)
    bias = None if case == "plain" else b
    if bias is None:
        y = get("naive").conv2d(x.astype(np.float64), w.astype(np.float64), None, p)
    (found,) = _run(impl, device, "conv2d", p, (x, w, bias), dtype)
    _assert_close(found, y, dtype, f"{impl.name} conv2d {case} y")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_gradients_match_reference(impl, device, case, dtype, documented_unsupported):
    p, (x, w, _, dy), (_, *grads) = _conv_problem(case, dtype)
    found = _run(impl, device, "conv2d_backward", p, (x, w, dy), dtype,
                 documented_unsupported(impl, "conv2d_backward", p, dtype, device))
    if found is None:
        return
    for name, f, e in zip(("dx", "dw", "db"), found, grads):
        _assert_close(f, e, dtype, f"{impl.name} conv2d_backward {case} {name}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(POOL_CASES))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_forward_and_gradient_match_reference(impl, device, kind, case, dtype):
    p, (x, dy), (ymax, dxmax, yavg, dxavg) = _pool_problem(case, dtype)
    y, dx = (ymax, dxmax) if kind == "max" else (yavg, dxavg)
    (found_y,) = _run(impl, device, f"{kind}_pool2d", p, (x,), dtype)
    _assert_close(found_y, y, dtype, f"{impl.name} {kind}_pool2d {case} y")
    (found_dx,) = _run(impl, device, f"{kind}_pool2d_backward", p, (x, dy), dtype)
    _assert_close(found_dx, dx, dtype, f"{impl.name} {kind}_pool2d_backward {case} dx")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["k3_s2_pad1", "pad_over_half_kernel", "asymmetric_ceil"])
def test_max_pool_gradient_goes_to_first_maximum_on_ties(impl, device, case, dtype):
    p, (x, dy), (_, dx, _, _) = _pool_problem(case, dtype, "ties")
    (found,) = _run(impl, device, "max_pool2d_backward", p, (x, dy), dtype)
    _assert_close(found, dx, dtype, f"{impl.name} max_pool2d_backward {case} ties dx")


@pytest.mark.parametrize("case", ["k3_s2_pad1", "pad_over_half_kernel", "asymmetric_ceil", "same"])
def test_max_pool_padding_never_wins_on_negative_input(impl, device, case):
    p, (x, dy), (y, dx, _, _) = _pool_problem(case, "float32", "negative")
    (found_y,) = _run(impl, device, "max_pool2d", p, (x,), "float32")
    _assert_close(found_y, y, "float32", f"{impl.name} max_pool2d {case} negative y")
    (found_dx,) = _run(impl, device, "max_pool2d_backward", p, (x, dy), "float32")
    _assert_close(found_dx, dx, "float32", f"{impl.name} max_pool2d_backward {case} negative dx")


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
