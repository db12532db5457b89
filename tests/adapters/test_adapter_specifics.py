"""What each framework adapter promises beyond matching the reference: lazy imports,
precision flags, the documented workarounds and the known framework gaps (pinned here so
that a framework fixing one makes the list in docs/adapters.md fail loudly instead of going stale)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from implementations import ConvParams, PoolParams, Unsupported, get, load
from implementations.contract import limit_for


def test_importing_implementations_loads_no_framework():
    code = (
        "import sys, implementations; implementations.available(); implementations.registered();"
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- NaN in max pooling: a window [[nan, 1], [2, 0]] -------------------------------------
#: framework -> (forward value, index the gradient goes to). The contract's reference
#: treats NaN as the maximum (NumPy argmax): forward NaN, gradient to index 0.
NAN_WINDOW_BEHAVIOUR = {
    "torch": (np.nan, 0),  # as the reference
    "tensorflow": (2.0, 0),  # forward drops NaN, yet the gradient goes to the NaN
    "jax": (np.nan, 2),  # forward propagates NaN, the gradient skips it (select >=)
}


@pytest.mark.parametrize("name", list(NAN_WINDOW_BEHAVIOUR))
def test_max_pool_nan_behaviour_is_the_documented_one(name):
    pytest.importorskip(name)
    impl = get(name)
    x = np.array([[[[np.nan, 1.0], [2.0, 0.0]]]])
    p = PoolParams.create(x.shape, 2)
    xt = impl.to_device(x, "cpu")
    y = impl.to_numpy(impl.max_pool2d(xt, p)).item()
    dx = impl.to_numpy(impl.max_pool2d_backward(xt, impl.to_device(np.ones((1, 1, 1, 1)), "cpu"), p))
    value, index = NAN_WINDOW_BEHAVIOUR[name]
    assert (np.isnan(y) and np.isnan(value)) or y == value, f"{name} max_pool2d gave {y}"
    assert np.flatnonzero(dx.ravel()).tolist() == [index], f"{name} gradient went to {dx.ravel()}"


# -- torch ------------------------------------------------------------------------------
@pytest.fixture
def torch_adapter():
    pytest.importorskip("torch")
    from implementations.frameworks.torch_adapter import Torch

    return Torch


def test_torch_tf32_is_off_by_default_so_float32_is_judged_as_float32(torch_adapter, monkeypatch):
    monkeypatch.delenv("CONVCERT_TORCH_TF32", raising=False)
    impl = torch_adapter()
    assert impl.tf32 is False and "float32" not in impl.reduced_precision
    assert impl.environment()["tf32"] is False


def test_torch_tf32_env_var_turns_it_on_and_float32_is_judged_as_tf32(torch_adapter, monkeypatch):
    monkeypatch.setenv("CONVCERT_TORCH_TF32", "1")
    impl = torch_adapter()
    assert impl.reduced_precision["float32"] == "tf32"
    assert impl.environment()["tf32"] is True


def test_torch_declares_half_precision_accumulation_whatever_tf32(torch_adapter, monkeypatch):
    for flag in ("0", "1"):
        monkeypatch.setenv("CONVCERT_TORCH_TF32", flag)
        halves = {k: v for k, v in torch_adapter().reduced_precision.items() if k != "float32"}
        assert halves == {"float16": "float16", "bfloat16": "bfloat16"}


def test_torch_cudnn_benchmark_follows_env_var_unless_given(torch_adapter, monkeypatch):
    monkeypatch.setenv("CONVCERT_CUDNN_BENCHMARK", "1")
    assert torch_adapter().cudnn_benchmark is True
    assert torch_adapter(cudnn_benchmark=False).cudnn_benchmark is False


def test_torch_tf32_variant_loads_by_spec(torch_adapter):
    impl = load("implementations.frameworks.torch_adapter:TorchTF32")
    assert impl.name == "torch-tf32" and impl.tf32 and impl.reduced_precision["float32"] == "tf32"


@pytest.mark.gpu
def test_torch_cuda_call_applies_the_adapters_tf32_setting(torch_adapter):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    impl = torch_adapter(tf32=False)
    torch.backends.cudnn.conv.fp32_precision = "tf32"  # someone else's global setting
    p = ConvParams.create((1, 2, 5, 5), (2, 2, 3, 3))
    x, w = (impl.to_device(np.ones(s, np.float32), "cuda") for s in (p.x_shape, p.w_shape))
    impl.conv2d(x, w, None, p)
    impl.synchronize("cuda")
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"


# -- tensorflow -------------------------------------------------------------------------
@pytest.fixture
def tensorflow_impl():
    pytest.importorskip("tensorflow")
    return get("tensorflow")


def test_tensorflow_turns_tf32_off(tensorflow_impl):
    import tensorflow as tf

    assert not tf.config.experimental.tensor_float_32_execution_enabled()
    assert tensorflow_impl.environment()["tf32"] is False


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_tensorflow_cpu_dilated_backward_is_unsupported_for_eigen_dtypes(tensorflow_impl, dtype):
    p = ConvParams.create((1, 2, 7, 7), (2, 2, 3, 3), dilation=2)
    x, w, dy = (tensorflow_impl.to_device(np.ones(s, dtype), "cpu")
                for s in (p.x_shape, p.w_shape, p.y_shape))
    with pytest.raises(Unsupported, match="TensorFlow CPU has no dilated Conv2DBackpropInput"):
        tensorflow_impl.conv2d_backward(x, w, dy, p)


@pytest.mark.parametrize("onednn", [True, False])
def test_tensorflow_declares_a_limit_for_exactly_the_cases_it_refuses(onednn):
    from implementations.frameworks.tensorflow_adapter import _dilated_backward_limit

    limit = _dilated_backward_limit(onednn)
    dilated = ConvParams.create((1, 2, 7, 7), (2, 2, 3, 3), dilation=2)
    plain = ConvParams.create((1, 2, 7, 7), (2, 2, 3, 3))
    uses = {"conv2d_backward", "dilation"}
    refused = {"float64", "float16"} | (set() if onednn else {"float32", "bfloat16"})
    for dtype in ("float64", "float32", "float16", "bfloat16"):
        assert limit.covers("conv2d_backward", uses, dtype, "cpu", dilated) is (dtype in refused)
        assert not limit.covers("conv2d_backward", uses, dtype, "cuda", dilated)
    assert not limit.covers("conv2d_backward", {"conv2d_backward"}, "float64", "cpu", plain)
    assert not limit.covers("conv2d", {"conv2d", "dilation"}, "float64", "cpu", dilated)


def test_tensorflow_eigen_kernels_really_reject_dilated_backward(tensorflow_impl):
    """Guards the rule above: if TensorFlow gains the kernel, the Unsupported must go."""
    import tensorflow as tf

    w, dy = tf.ones((3, 3, 2, 2), tf.float64), tf.ones((1, 3, 3, 2), tf.float64)
    with pytest.raises(tf.errors.InvalidArgumentError, match="dilation"):
        tf.raw_ops.Conv2DBackpropInput(input_sizes=[1, 7, 7, 2], filter=w, out_backprop=dy,
                                       strides=[1, 1, 1, 1], padding="VALID", dilations=[1, 2, 2, 1])


def test_tensorflow_without_onednn_splits_groups_and_refuses_dilation(tensorflow_impl, monkeypatch):
    monkeypatch.setattr(tensorflow_impl, "onednn", False)
    p = ConvParams.create((2, 4, 6, 6), (6, 2, 3, 3), groups=2, padding=((1, 0), (0, 2)))
    rng = np.random.default_rng(0)
    x, w, dy = (rng.standard_normal(s).astype(np.float32) for s in (p.x_shape, p.w_shape, p.y_shape))
    found = tensorflow_impl.conv2d_backward(*(tensorflow_impl.to_device(a, "cpu") for a in (x, w, dy)), p)
    expected = get("naive").conv2d_backward(x.astype(np.float64), w.astype(np.float64),
                                            dy.astype(np.float64), p)
    for f, e in zip(found, expected, strict=True):
        np.testing.assert_allclose(tensorflow_impl.to_numpy(f), e, rtol=1e-4, atol=1e-4)
    dilated = ConvParams.create((1, 2, 7, 7), (2, 2, 3, 3), dilation=2)
    arrays = (tensorflow_impl.to_device(np.ones(s, np.float32), "cpu")
              for s in (dilated.x_shape, dilated.w_shape, dilated.y_shape))
    with pytest.raises(Unsupported, match="oneDNN on: False"):
        tensorflow_impl.conv2d_backward(*arrays, dilated)


# -- jax --------------------------------------------------------------------------------
@pytest.fixture
def jax_impl():
    pytest.importorskip("jax")
    return get("jax")


def test_jax_compiles_each_geometry_once(jax_impl):
    from implementations.frameworks.jax_adapter import _PROGRAMS

    def pool(**kwargs):
        p = PoolParams.create((1, 1, 9, 9), 4, stride=3, ceil_mode=True, **kwargs)
        return jax_impl.max_pool2d(jax_impl.to_device(np.ones(p.x_shape), "cpu"), p)

    def conv(padding):
        p = ConvParams.create((1, 1, 5, 5), (1, 1, 3, 3), padding=padding)
        x, w = (jax_impl.to_device(np.ones(s), "cpu") for s in (p.x_shape, p.w_shape))
        return jax_impl.to_numpy(jax_impl.conv2d(x, w, None, p))

    pool()
    first = conv("same")
    before = len(_PROGRAMS)
    pool()  # equal but distinct params objects
    pool(count_include_pad=True)  # what a max pool does not read
    assert np.array_equal(conv(((1, 1), (1, 1))), first)  # "same", written out
    assert len(_PROGRAMS) == before


def test_jax_float64_is_float64_and_conv_precision_highest(jax_impl):
    env = jax_impl.environment()
    assert env["x64"] is True and env["conv_precision"] == "HIGHEST"
    p = ConvParams.create((1, 1, 3, 3), (1, 1, 3, 3))
    x = np.full(p.x_shape, 1 + 2.0**-40)  # lost in float32
    on_device = jax_impl.to_device(x, "cpu"), jax_impl.to_device(np.ones(p.w_shape), "cpu")
    y = jax_impl.to_numpy(jax_impl.conv2d(*on_device, None, p))
    assert y.dtype == np.float64 and y.item() == 9 * (1 + 2.0**-40)


def test_jax_synchronize_waits_for_the_last_result(jax_impl):
    p = PoolParams.create((1, 1, 4, 4), 2)
    jax_impl.avg_pool2d(jax_impl.to_device(np.ones(p.x_shape), "cpu"), p)
    assert "cpu" in jax_impl._pending
    jax_impl.synchronize("cpu")
    assert "cpu" not in jax_impl._pending


# TensorFlow's CPU has dilated backward kernels for float32 only, and only with oneDNN (declared limits)
@pytest.mark.parametrize(("name", "dtype", "tol"),
                         [("jax", "float64", 1e-7), ("tensorflow", "float32", 1e-4)])
def test_nhwc_holds_arrays_transposed_and_matches_the_reference(name, dtype, tol):
    pytest.importorskip(name)
    impl = get(name)
    nhwc, naive = impl.with_layout("NHWC"), get("naive")
    assert nhwc.layout == "NHWC" and impl.with_layout(impl.layout) is impl
    rng = np.random.default_rng(0)

    def put(a):
        return nhwc.to_device(a, "cpu")

    def check(found, expected):
        np.testing.assert_allclose(nhwc.to_numpy(found), expected, rtol=tol, atol=tol)

    def draw(*shapes):
        return (rng.standard_normal(s).astype(dtype) for s in shapes)

    p = ConvParams.create((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), ((1, 0), (1, 1)), (1, 2), 2)
    x, w, b, dy = draw(p.x_shape, p.w_shape, (6,), p.y_shape)
    assert tuple(put(x).shape) == (2, 7, 6, 4) and tuple(put(w).shape) == (6, 3, 2, 2)  # NHWC, OHWI
    assert nhwc.tensor_info(put(x)) == (p.x_shape, dtype)  # the boundary check sees NCHW
    y = nhwc.conv2d(put(x), put(w), put(b), p)
    assert tuple(y.shape) == tuple(p.y_shape[a] for a in (0, 2, 3, 1))
    check(y, naive.conv2d(x, w, b, p))
    uses = frozenset({"conv2d_backward", "stride", "dilation", "groups", "asymmetric_padding"})
    if limit_for(nhwc.limits, "conv2d_backward", uses, dtype, "cpu", p) is None:  # oneDNN off: a limit
        grads = nhwc.conv2d_backward(put(x), put(w), put(dy), p)
        for found, expected in zip(grads, naive.conv2d_backward(x, w, dy, p), strict=True):
            check(found, expected)
    q = PoolParams.create((2, 3, 7, 5), (3, 2), (2, 2), 1, ceil_mode=True)
    x, dy = draw(q.x_shape, q.y_shape)
    for op in ("max_pool2d", "avg_pool2d"):
        check(getattr(nhwc, op)(put(x), q), getattr(naive, op)(x, q))
        check(getattr(nhwc, op + "_backward")(put(x), put(dy), q), getattr(naive, op + "_backward")(x, dy, q))
    with pytest.raises(ValueError, match="layout='NDHWC'"):
        type(impl)("NDHWC")


def test_tensorflow_nhwc_float32_uses_onednn_kernels_with_explicit_padding():
    """float32 backward through oneDNN (pad, VALID, crop) and groups natively, held NHWC."""
    pytest.importorskip("tensorflow")
    nhwc, naive = get("tensorflow").with_layout("NHWC"), get("naive")
    if not nhwc.onednn:
        pytest.skip("TensorFlow runs without oneDNN here (its dilated backward is then a declared limit)")
    rng = np.random.default_rng(1)
    p = ConvParams.create((2, 6, 9, 8), (4, 3, 3, 3), (2, 2), ((2, 1), (0, 1)), (2, 1), 2)
    x, w, dy = (rng.standard_normal(s).astype(np.float32) for s in (p.x_shape, p.w_shape, p.y_shape))
    grads = nhwc.conv2d_backward(*(nhwc.to_device(a, "cpu") for a in (x, w, dy)), p)
    for found, expected in zip(grads, naive.conv2d_backward(x, w, dy, p), strict=True):
        np.testing.assert_allclose(nhwc.to_numpy(found), expected, rtol=1e-4, atol=1e-4)


# -- the geometry the adapters share ------------------------------------------------------
def test_window_padding_grows_bottom_right_by_the_ceil_mode_overhang():
    # 8 + 1 + 1 - 3 = 7 is not a multiple of 4: ceil_mode adds a third window, starting at
    # row 8 of the padded input (inside the input) and reaching 1 row past the padding
    p = PoolParams.create((1, 1, 8, 8), 3, stride=4, padding=1, ceil_mode=True)
    assert p.out_hw == (3, 3) and p.window_padding == ((1, 2), (1, 2))
    floor = PoolParams.create((1, 1, 8, 8), 3, stride=4, padding=1)
    assert floor.window_padding == floor.padding
