"""Validation at the boundary: arrays that do not match the params are refused, never truncated."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.catalogue.selection import find_case
from conformance.verdicts.certify import certify
from implementations import ConvParams, Implementation, PoolParams, get

CONV = ConvParams.create((1, 2, 5, 5), (3, 2, 3, 3))
POOL = PoolParams.create((1, 2, 4, 4), 2)
X, W, B = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), np.ones(3)

BAD_CONV = [
    (dict(x=np.ones((2, 2, 5, 5))), r"x\.shape=\(2, 2, 5, 5\): the params need \(1, 2, 5, 5\)"),
    (dict(x=np.ones((2, 5, 5))), r"x\.ndim=3"),
    (dict(x=np.ones((1, 2, 5, 5), np.complex128)), r"x\.dtype=complex128"),
    (dict(x=np.ones((1, 2, 5, 5), np.int32)), r"x\.dtype=int32"),
    (dict(w=np.ones((3, 2, 3, 2))), r"w\.shape"),
    (dict(w=np.ones((3, 2, 3, 3), np.float32)), r"w\.dtype=float32: must equal x\.dtype=float64"),
    (dict(b=np.ones((3, 1))), r"b\.ndim=2"),
    (dict(b=np.ones(4)), r"b\.shape=\(4,\)"),
]


@pytest.mark.parametrize("name", ["naive", "im2col"])
@pytest.mark.parametrize("bad,message", BAD_CONV, ids=[m.split("=")[0] for _, m in BAD_CONV])
def test_numpy_implementations_refuse_inconsistent_arrays_on_a_direct_call(name, bad, message):
    args = dict(x=X, w=W, b=B, **{})
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        get(name).conv2d(args["x"], args["w"], args["b"], CONV)


@pytest.mark.parametrize("name", ["naive", "im2col"])
def test_backward_and_pooling_check_dy_against_the_output_shape(name):
    impl = get(name)
    with pytest.raises(ValueError, match=r"dy\.shape=\(1, 3, 2, 2\): the params need \(1, 3, 3, 3\)"):
        impl.conv2d_backward(X, W, np.ones((1, 3, 2, 2)), CONV)
    with pytest.raises(ValueError, match=r"x\.shape"):
        impl.max_pool2d(np.ones((2, 2, 4, 4)), POOL)
    with pytest.raises(ValueError, match=r"dy\.shape"):
        impl.avg_pool2d_backward(np.ones((1, 2, 4, 4)), np.ones((1, 2, 3, 3)), POOL)
    with pytest.raises(ValueError, match="params"):
        impl.max_pool2d(np.ones((1, 2, 4, 4)), CONV)


def test_a_plugin_gets_the_checks_without_writing_them():
    class Plugin(Implementation):
        name = "plugin"
        calls = 0

        def conv2d(self, x, w, b, params):
            Plugin.calls += 1
            return x[:, :1]

    with pytest.raises(ValueError, match=r"b\.ndim"):
        Plugin().conv2d(X, W, np.ones((3, 1)), params=CONV)
    assert Plugin.calls == 0


@pytest.mark.parametrize("framework", ["torch", "jax"])  # tensorflow: see tests/adapters
def test_framework_adapters_refuse_a_bias_of_the_wrong_shape(framework):
    pytest.importorskip(framework)
    impl = get(framework)
    x, w, b = (impl.to_device(a.astype(np.float32), "cpu") for a in (X, W, np.ones((3, 1))))
    with pytest.raises(ValueError, match=r"b\.ndim=2"):
        impl.conv2d(x, w, b, CONV)


def test_a_transfer_that_truncates_the_batch_fails_the_case_instead_of_passing_it():
    case = find_case("conv2d-n2c3h7w6-k4r3s3-pad_valid-bias")
    cert = certify("tests.conformance.misbehaving:TruncatesOnTransfer", cases=[case])
    r = cert.results[0]
    assert r.status == "fail" and "ValueError: x.shape=(1, 3, 7, 6): the params need (2, 3, 7, 6)" in r.reason
