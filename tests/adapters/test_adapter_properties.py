"""Random geometry, float64: every adapter equals the reference to 1e-12 on problems the
fixed case lists do not spell out (Hypothesis, derandomized in CI by tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from implementations import ConvParams, PoolParams, Unsupported, get

#: spatial size, kernel, stride, dilation and per-side padding bounds: small enough for
#: naive's Python loops and for one jit compilation per example.
SIZES = st.integers(3, 8)
KERNELS = st.integers(1, 3)
STRIDES = st.integers(1, 3)
DILATIONS = st.integers(1, 2)
PADS = st.integers(0, 2)
#: JAX compiles every new geometry: a few examples per run keep the suite fast.
FEW = settings(max_examples=12)


@st.composite
def conv_params(draw) -> ConvParams:
    groups = draw(st.integers(1, 2))
    c, k = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    for _ in range(20):
        kh, kw, dh, dw = draw(KERNELS), draw(KERNELS), draw(DILATIONS), draw(DILATIONS)
        h, w = draw(SIZES), draw(SIZES)
        padding = ((draw(PADS), draw(PADS)), (draw(PADS), draw(PADS)))
        try:
            return ConvParams.create((draw(st.integers(1, 2)), c, h, w), (k, c // groups, kh, kw),
                                     stride=(draw(STRIDES), draw(STRIDES)), padding=padding,
                                     dilation=(dh, dw), groups=groups)
        except ValueError:  # an empty output: draw again
            continue
    return ConvParams.create((1, c, 4, 4), (k, c // groups, 1, 1), groups=groups)


@st.composite
def pool_params(draw) -> PoolParams:
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = tuple((draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in (kh, kw))
    try:
        return PoolParams.create((1, 2, draw(SIZES), draw(SIZES)), (kh, kw),
                                 stride=(draw(STRIDES), draw(STRIDES)), padding=padding,
                                 dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                                 ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()))
    except ValueError:  # an empty output, or a dilated window that reads only padding
        reject()


def _close(impl, found, expected, what: str) -> None:
    np.testing.assert_allclose(impl.to_numpy(found), expected, rtol=1e-12, atol=1e-12, err_msg=what)


@FEW
@given(p=conv_params(), seed=st.integers(0, 2**16))
def test_conv2d_and_gradients_match_reference_on_random_geometry(impl, documented_unsupported, p, seed):
    rng = np.random.default_rng(seed)
    x, w, b, dy = (rng.standard_normal(s) for s in (p.x_shape, p.w_shape, p.w_shape[:1], p.y_shape))
    naive = get("naive")
    dev = lambda a: impl.to_device(a, "cpu")  # noqa: E731
    _close(impl, impl.conv2d(dev(x), dev(w), dev(b), p), naive.conv2d(x, w, b, p), f"{impl.name} y {p}")
    reason = documented_unsupported(impl, "conv2d_backward", p, "float64", "cpu")
    if reason:
        with pytest.raises(Unsupported, match=reason):
            impl.conv2d_backward(dev(x), dev(w), dev(dy), p)
        return
    for name, f, e in zip("dx dw db".split(), impl.conv2d_backward(dev(x), dev(w), dev(dy), p),
                          naive.conv2d_backward(x, w, dy, p), strict=True):
        _close(impl, f, e, f"{impl.name} {name} {p}")


@FEW
@given(p=pool_params(), seed=st.integers(0, 2**16))
def test_pooling_and_gradients_match_reference_on_random_geometry(impl, p, seed):
    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal(p.x_shape), rng.standard_normal(p.y_shape)
    naive = get("naive")
    for kind in ("max", "avg"):
        y = getattr(impl, f"{kind}_pool2d")(impl.to_device(x, "cpu"), p)
        _close(impl, y, getattr(naive, f"{kind}_pool2d")(x, p), f"{impl.name} {kind} y {p}")
        dx = getattr(impl, f"{kind}_pool2d_backward")(impl.to_device(x, "cpu"), impl.to_device(dy, "cpu"), p)
        _close(impl, dx, getattr(naive, f"{kind}_pool2d_backward")(x, dy, p), f"{impl.name} {kind} dx {p}")
