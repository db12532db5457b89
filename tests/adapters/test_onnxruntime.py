"""The onnxruntime adapter: one-node models that say the geometry, agreement with naive
(dilated pooling included), honest dtype refusals, cached sessions, untouched inputs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("onnx", reason="onnx is not installed")

from implementations import ConvParams, PoolParams, Unsupported, available, get  # noqa: E402
from implementations.frameworks import onnxruntime_adapter as ort_adapter  # noqa: E402

ORT = get("onnxruntime")

CONV = ConvParams.create((2, 4, 9, 8), (6, 2, 3, 2), stride=2, padding=((1, 2), (0, 1)), dilation=(2, 1),
                         groups=2)
POOLS = {
    "dilated": PoolParams.create((1, 2, 9, 8), (3, 2), stride=2, padding=1, dilation=(2, 3)),
    "dilated_ceil": PoolParams.create((1, 1, 8, 8), 2, stride=2, padding=1, dilation=2, ceil_mode=True),
    "ceil_drops_last_window": PoolParams.create((1, 1, 5, 5), 2, stride=2, padding=1, ceil_mode=True),
    "asymmetric_count_pad": PoolParams.create((1, 2, 6, 6), 3, stride=2, padding=((0, 2), (1, 0)),
                                              count_include_pad=True),
}
#: float32 results of these small sums are within a few ulps of the float64 reference;
#: float16 within a few float16 ulps of values of magnitude <= 20.
RTOL = {"float32": 1e-5, "float16": 2e-2}


def _run(op: str, params, dtype: str, *arrays):
    tensors = [None if a is None else ORT.to_device(a.astype(dtype), "cpu") for a in arrays]
    return ORT.to_numpy(getattr(ORT, op)(*tensors, params))


def test_onnxruntime_is_registered_and_claims_forward_operations_only():
    assert "onnxruntime" in available()
    assert {"conv2d", "max_pool2d", "avg_pool2d", "pool_dilation"} <= ORT.features
    assert not {f for f in ORT.features if f.endswith("_backward")}
    assert ORT.dtypes == ("float32", "float16")


def test_model_carries_the_geometry_as_onnx_attributes():
    model = ort_adapter.build_model("conv2d", CONV, "float32", bias=True)
    node = model.graph.node[0]
    attrs = {a.name: list(a.ints) if a.ints else a.i for a in node.attribute}
    assert node.op_type == "Conv" and list(node.input) == ["x", "w", "b"]
    assert attrs == {"pads": [1, 0, 2, 1], "strides": [2, 2], "dilations": [2, 1], "kernel_shape": [3, 2],
                     "group": 2}
    assert model.opset_import[0].version == 19


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_matches_naive(dtype, bias):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(CONV.x_shape), rng.standard_normal(CONV.w_shape)
    b = rng.standard_normal(CONV.w_shape[0]) if bias else None
    found = _run("conv2d", CONV, dtype, x, w, b)
    xr, wr = x.astype(dtype).astype(np.float64), w.astype(dtype).astype(np.float64)
    br = None if b is None else b.astype(dtype).astype(np.float64)
    expected = get("naive").conv2d(xr, wr, br, CONV)
    assert found.dtype == np.dtype(dtype)
    np.testing.assert_allclose(found, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("case", list(POOLS))
def test_pooling_matches_naive_dilation_included(case, op, dtype):
    p = POOLS[case]
    x = np.random.default_rng(4).standard_normal(p.x_shape)
    found = _run(op, p, dtype, x)
    expected = getattr(get("naive"), op)(x.astype(dtype).astype(np.float64), p)
    assert found.shape == p.y_shape
    np.testing.assert_allclose(found, expected, rtol=RTOL[dtype], atol=RTOL[dtype])


def test_inputs_are_left_unchanged_and_sessions_are_cached():
    x = np.random.default_rng(5).standard_normal(CONV.x_shape).astype(np.float32)
    w = np.random.default_rng(6).standard_normal(CONV.w_shape).astype(np.float32)
    before = x.copy(), w.copy()
    tx, tw = ORT.to_device(x, "cpu"), ORT.to_device(w, "cpu")
    ORT.conv2d(tx, tw, None, CONV)
    hits = ort_adapter._session.cache_info().hits
    ORT.conv2d(tx, tw, None, CONV)
    assert ort_adapter._session.cache_info().hits == hits + 1
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(w, before[1])


def test_float64_conv_and_bfloat16_are_refused_with_the_reason():
    x = np.ones(CONV.x_shape)
    with pytest.raises(Unsupported, match="float64 is not claimed"):
        ORT.conv2d(ORT.to_device(x, "cpu"), ORT.to_device(np.ones(CONV.w_shape), "cpu"), None, CONV)
    ml_dtypes = pytest.importorskip("ml_dtypes")
    with pytest.raises(Unsupported, match="bfloat16"):
        ORT.to_device(x.astype(ml_dtypes.bfloat16), "cpu")



def test_pooling_padding_as_large_as_the_kernel_is_a_declared_limit_in_the_librarys_words():
    """ONNX Runtime refuses a pad >= the undilated kernel ('Pad should be smaller than kernel'):
    declared, so the certifier lists the case as limited; what ORT runs stays claimed."""
    from implementations.contract import limit_for

    refused = PoolParams.create((1, 1, 1, 1), (1, 2), stride=1, padding=((0, 0), (0, 2)), dilation=(1, 2))
    with pytest.raises(Exception, match="Pad should be smaller than kernel"):
        _run("max_pool2d", refused, "float32", np.ones(refused.x_shape))
    for op in ("max_pool2d", "avg_pool2d"):
        lim = limit_for(ORT.limits, op, {"pool_dilation", "asymmetric_padding"}, "float32", "cpu", refused)
        assert lim is not None and "Pad should be smaller than kernel" in lim.reason
    assert limit_for(ORT.limits, "max_pool2d", {"pool_dilation"}, "float32", "cpu", POOLS["dilated"]) is None
    conv = ConvParams.create((1, 1, 5, 5), (1, 1, 2, 2), padding=2)  # Conv has no such rule
    assert limit_for(ORT.limits, "conv2d", set(), "float32", "cpu", conv) is None
    _run("conv2d", conv, "float32", np.ones(conv.x_shape), np.ones(conv.w_shape), None)
