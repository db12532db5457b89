"""The naive reference gradients against central finite differences of its own forward."""

import numpy as np
import pytest

from implementations import ConvParams, PoolParams, get

NAIVE = get("naive")
EPS = 1e-6


def numeric_gradient(f, a: np.ndarray) -> np.ndarray:
    """d f / d a by central differences, one element at a time (float64)."""
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + EPS
        up = f()
        a[i] = old - EPS
        down = f()
        a[i] = old
        grad[i] = (up - down) / (2 * EPS)
    return grad


CONV_CASES = {
    "plain": dict(x_shape=(1, 2, 5, 4), w_shape=(3, 2, 3, 2)),
    "stride2-same": dict(x_shape=(2, 2, 6, 5), w_shape=(2, 2, 3, 3), stride=2, padding="same"),
    "dilated-asymmetric": dict(x_shape=(1, 1, 7, 6), w_shape=(2, 1, 2, 3), padding=((0, 2), (1, 0)),
                               dilation=(2, 1)),
    "groups-full": dict(x_shape=(1, 4, 4, 4), w_shape=(6, 2, 2, 2), padding="full", groups=2),
    "depthwise-stride3": dict(x_shape=(1, 3, 8, 7), w_shape=(3, 1, 3, 3), stride=(3, 2), groups=3),
}


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_naive_conv_gradients_match_finite_differences(case):
    params = ConvParams.create(**CONV_CASES[case])
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(params.x_shape), rng.standard_normal(params.w_shape)
    b, dy = rng.standard_normal(params.w_shape[0]), rng.standard_normal(params.y_shape)

    def loss():
        return float(np.sum(NAIVE.conv2d(x, w, b, params) * dy))

    dx, dw, db = NAIVE.conv2d_backward(x, w, dy, params)
    for name, analytic, wrt in (("dx", dx, x), ("dw", dw, w), ("db", db, b)):
        np.testing.assert_allclose(analytic, numeric_gradient(loss, wrt), rtol=1e-6, atol=1e-7,
                                   err_msg=f"{case} {name}")


POOL_CASES = {
    "overlapping": dict(x_shape=(1, 2, 5, 5), kernel=3, stride=1),
    "padded-ceil": dict(x_shape=(1, 1, 6, 5), kernel=(2, 3), stride=2, padding=1, ceil_mode=True),
    "asymmetric-count-pad": dict(x_shape=(2, 1, 5, 6), kernel=3, stride=(2, 3), padding=((0, 2), (1, 1)),
                                 count_include_pad=True),
}


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_naive_pool_gradients_match_finite_differences(case, op):
    params = PoolParams.create(**POOL_CASES[case])
    rng = np.random.default_rng(11)
    x = rng.permutation(np.prod(params.x_shape)).reshape(params.x_shape) * 0.1  # no ties
    dy = rng.standard_normal(params.y_shape)
    forward = getattr(NAIVE, f"{op}_pool2d")
    backward = getattr(NAIVE, f"{op}_pool2d_backward")
    dx = backward(x, dy, params)
    expected = numeric_gradient(lambda: float(np.sum(forward(x, params) * dy)), x)
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-7, err_msg=f"{case} {op}")
