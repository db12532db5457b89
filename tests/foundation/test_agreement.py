"""naive vs im2col vs an independent oracle (PyTorch float64) on random problems.

Every feature is drawn: stride, dilation, groups, every padding mode and asymmetric
explicit padding, ceil_mode and count_include_pad. Two float64 results agree when they
differ by at most twice ``conformance.tolerance``'s float64 bound (each is within it of the
exact result); a max-pool output, a selection, must be equal.
"""

import numpy as np
import pytest
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st

from conformance.catalogue.cases import Problem
from conformance.judging import references
from conformance.judging.compare import assert_close
from conformance.judging.tolerance import error_bound
from implementations import ConvParams, PoolParams, get

NAIVE, IM2COL = get("naive"), get("im2col")
MANY = settings(max_examples=150)  # 'many random problems', still a few seconds

# Sizes stay tiny: the naive reference loops in Python over every output pixel.
SMALL = st.integers(1, 3)
PADDING = st.one_of(
    st.sampled_from(["valid", "same", "same_lower", "full"]),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
              st.tuples(st.integers(0, 2), st.integers(0, 2))),
)


@st.composite
def conv_problems(draw):
    """A valid ConvParams with small random geometry, plus a seed for its data."""
    groups = draw(SMALL)
    c, k = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(SMALL), draw(SMALL))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(SMALL), draw(SMALL))
    eff = [(r - 1) * d + 1 for r, d in zip(kernel, dilation, strict=True)]
    h, w = draw(st.integers(eff[0], eff[0] + 5)), draw(st.integers(eff[1], eff[1] + 5))
    params = ConvParams.create(
        (draw(st.integers(1, 2)), c, h, w), (k, c // groups, *kernel), stride, draw(PADDING), dilation, groups
    )
    return params, draw(st.integers(0, 2**32 - 1))


@st.composite
def pool_problems(draw):
    """A valid PoolParams with small random geometry (padding < kernel, dilation 1 or 2),
    plus a seed."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(
        (draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in kernel
    )
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(span[0], 9)),
             draw(st.integers(span[1], 9)))
    try:
        params = PoolParams.create(
            shape, kernel, (draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding, dilation,
            ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()),
        )
    except ValueError:  # a dilated window that reads only padding
        reject()
    return params, draw(st.integers(0, 2**32 - 1))


def as_problem(family, params):
    """The conformance problem of resolved ``params`` (for its reduction lengths and magnitudes)."""
    if family == "conv2d":
        return Problem(family, params.x_shape, params.w_shape, stride=params.stride, padding=params.padding,
                       dilation=params.dilation, groups=params.groups)
    return Problem(family, params.x_shape, kernel=params.kernel, stride=params.stride, padding=params.padding,
                   dilation=params.dilation, ceil_mode=params.ceil_mode,
                   count_include_pad=params.count_include_pad)


def assert_agree(case, problem, inputs, found, expected):
    """Every output of ``found`` within twice the float64 error bound of ``expected``."""
    __tracebackhide__ = True
    magnitudes, lengths = references.magnitudes(problem, inputs), references.reduction_lengths(problem)
    for name, f in found.items():
        exact = problem.family == "max_pool2d" and name == "y"
        bound = 2 * error_bound("float64", lengths[name], magnitudes[name], expected[name], exact=exact,
                                extra_roundings=2 if problem.family == "avg_pool2d" else 0)
        assert_close(f, expected[name], bound, case=case, output=name, kind="exact" if exact else "float")


def conv_data(params, seed):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(params.x_shape),
        rng.standard_normal(params.w_shape),
        rng.standard_normal(params.w_shape[0]),
        rng.standard_normal(params.y_shape),
    )


def conv_results(impl, params, x, w, b, dy):
    outputs = (impl.conv2d(x, w, b, params), *impl.conv2d_backward(x, w, dy, params))
    return dict(zip(("y", "dx", "dw", "db"), outputs, strict=True))


def conv_inputs(x, w, b, dy):
    return {"x": x, "w": w, "b": b, "dy": dy}


def pool_results(impl, params, x, dy):
    """``{family: {"y": ..., "dx": ...}}`` for max and average pooling."""
    return {
        "max_pool2d": {"y": impl.max_pool2d(x, params), "dx": impl.max_pool2d_backward(x, dy, params)},
        "avg_pool2d": {"y": impl.avg_pool2d(x, params), "dx": impl.avg_pool2d_backward(x, dy, params)},
    }


@MANY
@given(conv_problems())
def test_im2col_conv_forward_and_gradients_match_naive(problem):
    params, seed = problem
    data = conv_data(params, seed)
    assert_agree(f"{params}", as_problem("conv2d", params), conv_inputs(*data),
                 conv_results(IM2COL, params, *data), conv_results(NAIVE, params, *data))


@MANY
@given(pool_problems())
def test_im2col_pooling_forward_and_gradients_match_naive(problem):
    params, seed = problem
    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal(params.x_shape), rng.standard_normal(params.y_shape)
    expected = pool_results(NAIVE, params, x, dy)
    for family, found in pool_results(IM2COL, params, x, dy).items():
        assert_agree(f"{params}", as_problem(family, params), {"x": x, "dy": dy}, found, expected[family])


def torch_conv(params, x, w, b, dy):
    """PyTorch float64 oracle: explicit F.pad for any padding, then autograd."""
    import torch
    import torch.nn.functional as F

    (top, bottom), (left, right) = params.padding
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(F.pad(xt, (left, right, top, bottom)), wt, bt, params.stride, 0, params.dilation,
                 params.groups)
    y.backward(torch.tensor(dy))
    return {"y": y.detach().numpy(), "dx": xt.grad.numpy(), "dw": wt.grad.numpy(), "db": bt.grad.numpy()}


def torch_pool(params, x, dy):
    import torch
    import torch.nn.functional as F

    out = {}
    for family, op, kwargs in (
        ("max_pool2d", F.max_pool2d, {"dilation": params.dilation}),
        ("avg_pool2d", F.avg_pool2d, {"count_include_pad": params.count_include_pad}),
    ):
        if family == "avg_pool2d" and params.dilation != (1, 1):  # F.avg_pool2d has no dilation
            continue
        xt = torch.tensor(x, requires_grad=True)
        pad = (params.padding[0][0], params.padding[1][0])
        y = op(xt, params.kernel, params.stride, pad, ceil_mode=params.ceil_mode, **kwargs)
        y.backward(torch.tensor(dy))
        out[family] = {"y": y.detach().numpy(), "dx": xt.grad.numpy()}
    return out


@MANY
@given(conv_problems())
def test_naive_and_im2col_conv_match_torch_float64(problem):
    pytest.importorskip("torch")
    params, seed = problem
    data = conv_data(params, seed)
    expected = torch_conv(params, *data)
    for impl in (NAIVE, IM2COL):
        assert_agree(f"{impl.name} {params}", as_problem("conv2d", params), conv_inputs(*data),
                     conv_results(impl, params, *data), expected)


@MANY
@given(pool_problems())
def test_naive_and_im2col_pooling_match_torch_float64(problem):
    pytest.importorskip("torch")
    params, seed = problem
    half_kernel = all(2 * p[0] <= k for p, k in zip(params.padding, params.kernel, strict=True))
    assume(params.is_symmetric and half_kernel)
    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal(params.x_shape), rng.standard_normal(params.y_shape)
    expected = torch_pool(params, x, dy)
    for impl in (NAIVE, IM2COL):
        for family, found in pool_results(impl, params, x, dy).items():
            if family in expected:  # torch has no dilated average pooling to compare with
                assert_agree(f"{impl.name} {params}", as_problem(family, params), {"x": x, "dy": dy}, found,
                             expected[family])


def test_max_pool_gradient_goes_to_the_first_maximum_of_a_tie():
    x = np.ones((1, 1, 2, 2))
    params = PoolParams.create(x.shape, kernel=2)
    for impl in (NAIVE, IM2COL):
        dx = impl.max_pool2d_backward(x, np.full((1, 1, 1, 1), 3.0), params)
        np.testing.assert_array_equal(dx[0, 0], [[3.0, 0.0], [0.0, 0.0]], err_msg=impl.name)


def test_avg_pool_count_include_pad_never_counts_ceil_mode_overhang():
    # in 3, k 2, s 2, pad 1, ceil: windows [-1, 0], [1, 2], [3, 4]? the third starts at
    # index 3 = in + pad_before -> dropped; so outputs are 2 and the counts are 2 and 2.
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    p = PoolParams.create(x.shape, 2, 2, 1, ceil_mode=True, count_include_pad=True)
    assert p.out_hw == (2, 2)
    for impl in (NAIVE, IM2COL):
        y = impl.avg_pool2d(x, p)
        assert y[0, 0, 0, 0] == pytest.approx(1.0 / 4)  # one input pixel, three padding
        assert y[0, 0, 1, 1] == pytest.approx((5 + 6 + 8 + 9) / 4)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("impl", [NAIVE, IM2COL], ids=lambda i: i.name)
def test_low_precision_inputs_come_back_in_their_dtype(impl, dtype):
    ml_dtypes = pytest.importorskip("ml_dtypes") if dtype == "bfloat16" else None
    np_dtype = ml_dtypes.bfloat16 if ml_dtypes else np.dtype(dtype)
    p = ConvParams.create((1, 2, 5, 5), (2, 2, 3, 3))
    x, w = np.ones(p.x_shape, np_dtype), np.ones(p.w_shape, np_dtype)
    y = impl.conv2d(x, w, None, p)
    assert y.dtype == np_dtype and float(y[0, 0, 0, 0]) == 18.0
    assert all(g.dtype == np_dtype for g in impl.conv2d_backward(x, w, np.ones(p.y_shape, np_dtype), p))
