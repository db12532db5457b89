"""The certifier's inputs catch precision loss: a plug-in that stores float64 as float32, or
that computes only on inputs it recognises as the certifier's, is rejected by the catalogue
and by the random sweep."""

import numpy as np
import pytest

from conformance.verdicts.certify import certify
from implementations.im2col import Im2col

OPS = ("conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward")


class StoresFloat64AsFloat32(Im2col):
    """Keeps float64 inputs as float32 (half the memory), computes from them in float64."""

    name = "stores-float64-as-float32"


class ComputesOnlyOnAGrid(Im2col):
    """Right only where every input is a multiple of 2**-20 (what the certifier used to draw);
    zeros anywhere else."""

    name = "computes-only-on-a-grid"


def _narrowed(method):
    def call(self, *args):  # what it stores: float32; what it computes in: float64
        stored = [a.astype(np.float32).astype(np.float64)
                  if isinstance(a, np.ndarray) and a.dtype == np.float64 else a for a in args]
        return method(self, *stored)
    return call


def _on_grid_only(method):
    def call(self, *args):
        out = method(self, *args)
        arrays = [a.astype(np.float64) for a in args if isinstance(a, np.ndarray)]
        if all(np.array_equal(a * 2**20, np.round(a * 2**20)) for a in arrays):
            return out
        return tuple(np.zeros_like(o) for o in out) if isinstance(out, tuple) else np.zeros_like(out)
    return call


for _op in OPS:
    setattr(StoresFloat64AsFloat32, _op, _narrowed(getattr(Im2col, _op)))
    setattr(ComputesOnlyOnAGrid, _op, _on_grid_only(getattr(Im2col, _op)))


def _failed(cert):
    return {s.feature for s in cert.features if s.status == "fail"}


def test_float64_computed_from_float32_storage_fails_by_orders_of_magnitude():
    cert = certify(StoresFloat64AsFloat32(), quick=True, dtypes=["float64"], isolate=False, sweep_examples=4)
    assert not cert.passed
    assert {"conv2d", "conv2d_backward", "avg_pool2d"} <= _failed(cert)
    conv = next(s for s in cert.features if s.feature == "conv2d")
    assert conv.worst_ratio > 1e3  # about 1e-7 of error where the bound is about 1e-14
    assert cert.sweep["failing_problems"] > 0  # the sweep's inputs catch it too


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_plug_in_that_computes_only_on_the_certifiers_grid_fails(dtype):
    cert = certify(ComputesOnlyOnAGrid(), quick=True, dtypes=[dtype], isolate=False, sweep_examples=4)
    assert not cert.passed
    assert {"conv2d", "max_pool2d", "avg_pool2d"} <= _failed(cert)
    assert cert.sweep["failing_problems"] > 0


def test_the_plug_ins_are_right_on_grid_inputs_so_only_the_inputs_catch_them():
    from conformance.catalogue.cases import CATALOGUE

    problem = next(p for p in CATALOGUE if p.family == "conv2d" and p.mode == "exact")
    inputs = problem.inputs()  # small integers: on every grid, exact in float32
    expected = Im2col().conv2d(inputs["x"], inputs["w"], inputs["b"], problem.params)
    for impl in (StoresFloat64AsFloat32(), ComputesOnlyOnAGrid()):
        found = impl.conv2d(inputs["x"], inputs["w"], inputs["b"], problem.params)
        np.testing.assert_array_equal(found, expected)
