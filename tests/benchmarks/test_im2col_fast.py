"""The optimised im2col still equals the naive reference (float64, 1e-10), on every feature."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from implementations import im2col, naive
from implementations.geometry import ConvParams, PoolParams

# Small problems: every feature (stride, dilation, groups, asymmetric padding), and
# chunk sizes forced down so that several image chunks are exercised.
SIDE = st.integers(1, 3)


@st.composite
def conv_problems(draw):
    groups = draw(st.integers(1, 3))
    c, k = groups * draw(SIDE), groups * draw(SIDE)
    kernel = (draw(SIDE), draw(SIDE))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    hw = (draw(st.integers(5, 9)), draw(st.integers(5, 9)))
    x_shape = (draw(st.integers(1, 4)), c, *hw)
    return ConvParams.create(x_shape, (k, c // groups, *kernel), stride, padding, dilation, groups)


@given(conv_problems(), st.sampled_from([1, 2**10, 2**30]), st.booleans())
def test_conv_forward_and_gradients_match_naive(p, chunk_bytes, bias):
    rng = np.random.default_rng(0)
    x, w, dy = (rng.standard_normal(s) for s in (p.x_shape, p.w_shape, p.y_shape))
    b = rng.standard_normal(p.w_shape[0]) if bias else None
    saved, im2col.CHUNK_BYTES = im2col.CHUNK_BYTES, chunk_bytes
    try:
        np.testing.assert_allclose(im2col.conv2d(x, w, b, p), naive.conv2d(x, w, b, p), rtol=0, atol=1e-10)
        for fast, ref in zip(im2col.conv2d_backward(x, w, dy, p),
                            naive.conv2d_backward(x, w, dy, p), strict=True):
            np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-10)
    finally:
        im2col.CHUNK_BYTES = saved


@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.booleans(), st.booleans())
def test_pooling_forward_and_backward_match_naive(k, s, pad, ceil_mode, include_pad):
    p = PoolParams.create((2, 3, 7, 6), (k + pad, k + pad), (s, s), ((pad, 0), (0, pad)),
                          ceil_mode=ceil_mode, count_include_pad=include_pad)
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal(p.x_shape), rng.standard_normal(p.y_shape)
    for op in ("max_pool2d", "avg_pool2d"):
        np.testing.assert_allclose(getattr(im2col, op)(x, p), getattr(naive, op)(x, p), atol=1e-10)
        np.testing.assert_allclose(getattr(im2col, op + "_backward")(x, dy, p),
                                   getattr(naive, op + "_backward")(x, dy, p), atol=1e-10)


def test_public_im2col_keeps_the_textbook_shape_and_agrees_with_the_fast_layout():
    x = np.random.default_rng(2).standard_normal((10, 3, 7, 7))
    assert im2col.im2col(x[:1], (5, 5)).shape == (9, 75)
    cols = im2col.im2col(x, (5, 5))
    assert cols.shape == (90, 75)
    p = ConvParams.create(x.shape, (4, 3, 5, 5))
    fast = im2col.column_matrix(x, p)[0]  # (C*R*S, N*OH*OW)
    np.testing.assert_array_equal(fast.T, cols)
