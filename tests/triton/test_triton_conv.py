"""The Triton implicit-GEMM convolution, on the Triton interpreter (CPU tensors).

Results are judged against ``naive`` in float64 on inputs already rounded to the dtype, with
an error bound proportional to the sum of absolute products (what a float32 accumulator can
lose), so an indexing or masking bug (an O(1) error) fails and rounding never does.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("torch", reason="the triton implementation needs torch")
pytest.importorskip("triton", reason="triton is not installed")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from conformance.judging.compare import assert_close
from conformance.judging.tolerance import error_bound
from implementations import ConvParams, get  # noqa: E402
from implementations.dtypes import numpy_dtype  # noqa: E402
from implementations.triton_op.conv import Triton, TritonTF32  # noqa: E402
from implementations.triton_op.launch import ConvArgs, backward_weight, forward, stride_phases  # noqa: E402

#: Small problems, one per geometry option and its combinations: (x_shape, w_shape, options).
#: Channel counts of 18 and 20 exceed the interpreter's 16-wide tiles, so the channel loops
#: and the output-channel tiles run more than once.
CASES = {
    "stride_asymmetric_padding": ((2, 3, 7, 6), (4, 3, 3, 2), dict(stride=(2, 1), padding=((1, 0), (2, 1)))),
    "dilation_groups": ((1, 4, 6, 7), (6, 2, 2, 3),
                        dict(padding=((0, 1), (1, 0)), dilation=(2, 1), groups=2)),
    "depthwise_strided_dilated": ((2, 3, 8, 8), (3, 1, 3, 3),
                                  dict(stride=2, padding=1, dilation=2, groups=3)),
    "pointwise_wide_channels": ((1, 20, 3, 4), (18, 20, 1, 1), dict()),
}


@pytest.fixture(scope="module")
def impl() -> Triton:
    return Triton()


def _rounded(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    """Random values already representable in ``dtype`` (as its NumPy array type)."""
    return rng.standard_normal(shape).astype(numpy_dtype(dtype))


@pytest.mark.parametrize(
    "case, dtype",
    [(c, d) for c in CASES for d in ("float32", "float16")]
    + [("stride_asymmetric_padding", "float64"), ("dilation_groups", "bfloat16")],
)
def test_forward_and_gradients_match_float64_naive(impl: Triton, case: str, dtype: str) -> None:
    x_shape, w_shape, options = CASES[case]
    p = ConvParams.create(x_shape, w_shape, **options)
    rng = np.random.default_rng(0)
    x, w, b, dy = (_rounded(rng, s, dtype) for s in (x_shape, w_shape, w_shape[:1], p.y_shape))

    y = impl.to_numpy(impl.conv2d(*(impl.to_device(a, "cpu") for a in (x, w, b)), p))
    grads = impl.conv2d_backward(*(impl.to_device(a, "cpu") for a in (x, w, dy)), p)
    dx, dw, db = (impl.to_numpy(g) for g in grads)

    naive = get("naive")
    f64 = [a.astype(np.float64) for a in (x, w, b, dy)]
    ax, aw, ab, ady = (np.abs(a) for a in f64)
    y_ref = naive.conv2d(f64[0], f64[1], f64[2], p)
    y_abs = naive.conv2d(ax, aw, ab, p)
    refs = naive.conv2d_backward(f64[0], f64[1], f64[3], p)
    abss = naive.conv2d_backward(ax, aw, ady, p)
    n, k, oh, ow = p.y_shape
    _, cg, r, s = w_shape
    assert y.dtype == x.dtype and dx.dtype == x.dtype and dw.dtype == x.dtype and db.dtype == x.dtype
    checks = {"y": (y, y_ref, y_abs, cg * r * s + 1), "dx": (dx, refs[0], abss[0], k * r * s),
              "dw": (dw, refs[1], abss[1], n * oh * ow), "db": (db, refs[2], abss[2], n * oh * ow)}
    for name, (found, ref, magnitude, terms) in checks.items():
        bound = error_bound(dtype, terms, magnitude, ref)
        assert_close(found, ref, bound, case=f"{case} [{dtype}]", output=name)


@pytest.mark.parametrize("case", ["dilation_groups", "pointwise_wide_channels"])
def test_both_forward_reduction_orders_match_torch(case: str) -> None:
    """Tap by tap (wide groups) and flattened (r, s, c) (narrow groups), each forced."""
    x_shape, w_shape, options = CASES[case]
    p = ConvParams.create(x_shape, w_shape, **options)
    (top, bottom), (left, right) = p.padding
    conf = (p.stride, (top, bottom, left, right), p.dilation, p.groups)
    torch.manual_seed(5)
    x, w = torch.randn(x_shape, dtype=torch.float64), torch.randn(w_shape, dtype=torch.float64)
    want = _f_conv2d(x, w, None, *conf)
    for flat in (False, True):
        y = torch.empty(p.y_shape, dtype=torch.float64)
        forward(x, w, None, y, ConvArgs.of(*conf), flat=flat)
        torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-12,
                                   msg=lambda m, flat=flat: f"flat={flat}: {m}")


def _f_conv2d(x, w, b, stride, padding, dilation, groups):
    """torch's own convolution with (top, bottom, left, right) padding, as the reference."""
    top, bottom, left, right = padding
    return F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride, 0, dilation, groups)


OP_ARGS = dict(stride=[2, 1], padding=[1, 0, 0, 2], dilation=[1, 2], groups=2)


def test_op_autograd_matches_torch_conv2d_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    args = list(OP_ARGS.values())
    y = torch.ops.convcert.conv2d(x, w, b, *args)
    y_ref = _f_conv2d(x, w, b, *args)
    dy = torch.randn_like(y_ref)
    got = torch.autograd.grad((y * dy).sum(), (x, w, b))
    want = torch.autograd.grad((y_ref * dy).sum(), (x, w, b))
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    for name, g, r in zip(("dx", "dw", "db"), got, want, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12, msg=lambda m, name=name: f"{name}: {m}")


def test_op_passes_gradcheck_in_float64() -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: torch.ops.convcert.conv2d(x, w, b, *OP_ARGS.values()), (x, w, b), fast_mode=True
    )


def test_op_only_computes_the_gradients_asked_for() -> None:
    x = torch.randn(1, 2, 4, 4)
    w = torch.randn(2, 2, 3, 3, requires_grad=True)
    y = torch.ops.convcert.conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], 1)
    (dw,) = torch.autograd.grad(y.sum(), (w,))
    assert x.grad is None and dw.shape == w.shape


def test_channels_last_input_keeps_its_layout_and_its_values() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 4, 5, 6)
    w = torch.randn(6, 2, 3, 2)
    args = list(OP_ARGS.values())
    y_cl = torch.ops.convcert.conv2d(x.to(memory_format=torch.channels_last), w, None, *args)
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y_cl, _f_conv2d(x, w, None, *args), rtol=1e-5, atol=1e-5)


def test_fake_impl_gives_the_geometry_module_shapes() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    p = ConvParams.create((2, 4, 9, 7), (6, 2, 3, 2), stride=(2, 3), padding=((2, 0), (1, 3)),
                          dilation=(1, 2), groups=2)
    args = [list(p.stride), [2, 0, 1, 3], list(p.dilation), p.groups]
    with FakeTensorMode():
        x, w = torch.empty(p.x_shape), torch.empty(p.w_shape)
        y = torch.ops.convcert.conv2d(x, w, None, *args)
        dx = torch.ops.convcert.conv2d_backward_input(y, w, list(p.x_shape), *args)
        dw = torch.ops.convcert.conv2d_backward_weight(y, x, list(p.w_shape), *args)
    assert (tuple(y.shape), tuple(dx.shape), tuple(dw.shape)) == (p.y_shape, p.x_shape, p.w_shape)


def _opcheck_calls() -> dict[str, tuple]:
    torch.manual_seed(3)
    x = torch.randn(1, 2, 4, 3, requires_grad=True)
    w = torch.randn(2, 1, 2, 2, requires_grad=True)
    b = torch.randn(2, requires_grad=True)
    conf = ([1, 2], [0, 1, 1, 0], [1, 1], 2)
    dy = torch.randn(1, 2, 4, 2)
    ops = torch.ops.convcert
    return {
        "conv2d": (ops.conv2d.default, (x, w, b, *conf)),
        "backward_input": (ops.conv2d_backward_input.default, (dy, w.detach(), [1, 2, 4, 3], *conf)),
        "backward_weight": (ops.conv2d_backward_weight.default, (dy, x.detach(), [2, 1, 2, 2], *conf)),
    }


@pytest.mark.parametrize("op", ["conv2d", "backward_input", "backward_weight"])
def test_opcheck_finds_schema_fake_autograd_and_aot_registrations_consistent(op: str) -> None:
    """torch.library.opcheck: schema, fake impl vs real, autograd registration, AOT dispatch."""
    fn, args = _opcheck_calls()[op]
    torch.library.opcheck(fn, args)


def test_bad_padding_and_mixed_dtypes_raise_value_errors_naming_the_argument() -> None:
    x, w = torch.randn(1, 2, 4, 4), torch.randn(2, 2, 3, 3)
    with pytest.raises(ValueError, match=r"padding=\[1, 1\]"):
        torch.ops.convcert.conv2d(x, w, None, [1, 1], [1, 1], [1, 1], 1)
    with pytest.raises(ValueError, match=r"w.dtype=torch.float64"):
        torch.ops.convcert.conv2d(x, w.double(), None, [1, 1], [0, 0, 0, 0], [1, 1], 1)
    with pytest.raises(ValueError, match="groups=3"):
        torch.ops.convcert.conv2d(x, w, None, [1, 1], [0, 0, 0, 0], [1, 1], 3)


def test_split_weight_gradient_equals_unsplit() -> None:
    torch.manual_seed(4)
    x = torch.randn(3, 4, 9, 7, dtype=torch.float64)
    dy = torch.randn(3, 6, 5, 3, dtype=torch.float64)
    conf = ConvArgs((2, 2), (1, 1, 0, 1), (1, 2), 2)
    whole = backward_weight(dy, x, (6, 2, 3, 2), conf, split=1)
    for split in (2, 5):  # 5 slices of 45 pixels: the last slices are partly empty
        torch.testing.assert_close(backward_weight(dy, x, (6, 2, 3, 2), conf, split=split), whole)


def test_registration_survives_a_second_import() -> None:
    import importlib

    import implementations.triton_op.ops as module

    importlib.reload(module)
    y = torch.ops.convcert.conv2d(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), None,
                                  [1, 1], [0, 0, 0, 0], [1, 1], 1)
    assert y.item() == 4.0


def test_claims_cpu_under_the_interpreter_and_records_its_environment() -> None:
    impl = Triton()
    p = ConvParams.create((1, 1, 3, 3), (1, 1, 2, 2))
    impl.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 2, 2), None, p)
    env = impl.environment()
    assert "cpu" in impl.devices and "max_pool2d" not in impl.features
    assert env["interpreter"] is True and env["allow_tf32"] is False and env["triton"]
    assert "forward/dot" in env["autotune_chosen"]
    assert dict(impl.reduced_precision) == {}
    assert dict(TritonTF32().reduced_precision) == {"float32": "tf32"}


@given(
    size=st.integers(1, 12), pad=st.integers(0, 4), taps=st.integers(1, 5),
    stride=st.integers(1, 4), dilation=st.integers(1, 4),
)
def test_stride_phases_give_each_input_pixel_exactly_the_taps_that_reach_it(size, pad, taps, stride,
                                                                            dilation) -> None:
    seen = {}
    for first, count, tap0, step, n in stride_phases(size, pad, taps, stride, dilation):
        for i in range(first, first + stride * count, stride):
            seen[i] = [tap0 + step * j for j in range(n)]
    brute = {i: [r for r in range(taps) if (i + pad - r * dilation) % stride == 0] for i in range(size)}
    assert seen == brute
