"""The speed paths on the interpreter: pointwise convolutions as plain GEMMs, the split-K
weight gradient reduced in a fixed order, grouped tile order, against torch in float64."""

from __future__ import annotations

from collections import Counter

import pytest

pytest.importorskip("torch", reason="the triton implementation needs torch")
pytest.importorskip("triton", reason="triton is not installed")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from implementations.triton_op import launch, tuning  # noqa: E402
from implementations.triton_op.launch import ConvArgs  # noqa: E402
from implementations.triton_op.tuning import Tile  # noqa: E402

CONF = ConvArgs((1, 1), (0, 0, 0, 0), (1, 1), 1)


def _pointwise_problem(fmt: torch.memory_format) -> tuple[torch.Tensor, ...]:
    """272 pixels x 20 channels -> 18: with the interpreter's 32 x 16 tiles, 9 row tiles (a
    full group of 8 and a partial one in grouped order) by 2 column tiles."""
    torch.manual_seed(7)
    x = torch.randn(2, 20, 8, 17, dtype=torch.float64).to(memory_format=fmt)
    w = torch.randn(18, 20, 1, 1, dtype=torch.float64)
    return x, w, torch.randn(18, dtype=torch.float64), torch.randn(2, 18, 8, 17, dtype=torch.float64)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last], ids=["nchw", "channels_last"])
def test_pointwise_convolution_runs_as_a_gemm_and_matches_torch(fmt: torch.memory_format) -> None:
    x, w, b, dy = _pointwise_problem(fmt)
    before = launch.LAUNCHES.copy()
    y = torch.full((2, 18, 8, 17), float("nan"), dtype=torch.float64).to(memory_format=fmt)
    launch.forward(x, w, b, y, CONF)
    dx = torch.full_like(x, float("nan"))  # a tile never written stays NaN
    launch.backward_input(dy, w, dx, CONF)
    dw = launch.backward_weight(dy, x, tuple(w.shape), CONF, split=3)
    assert launch.LAUNCHES == before + Counter({("gemm", "interpreter"): 3})  # no implicit-GEMM launch
    want_dx, want_dw, _ = torch.ops.aten.convolution_backward(
        dy, x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, False])
    torch.testing.assert_close(y, F.conv2d(x, w, b), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dx, want_dx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dw, want_dw, rtol=1e-12, atol=1e-12)


def test_pointwise_gemm_and_implicit_gemm_agree() -> None:
    x, w, _, dy = _pointwise_problem(torch.contiguous_format)
    for gemm_path in (True, False):
        dx = torch.empty_like(x)
        launch.backward_input(dy, w, dx, CONF, gemm_path=gemm_path)
        dw = launch.backward_weight(dy, x, tuple(w.shape), CONF, gemm_path=gemm_path)
        if gemm_path:
            want = dx, dw
    torch.testing.assert_close((dx, dw), want, rtol=1e-12, atol=1e-12)


def test_split_partials_add_in_index_order_to_the_same_bits_each_run() -> None:
    torch.manual_seed(8)
    ws = (torch.randn(5, 3, 700) * torch.logspace(-4, 4, 700)).float()  # cancellations: order matters
    sequential = ws[0].clone()
    for part in ws[1:]:
        sequential += part
    for dtype in (torch.float32, torch.float16):
        runs = [launch.sum_splits(ws, torch.empty(3, 700, dtype=dtype)) for _ in range(2)]
        assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], sequential.to(dtype)), dtype


def test_sum_splits_rejects_a_workspace_of_another_shape() -> None:
    with pytest.raises(ValueError, match=r"ws.shape=\(2, 3\): must be contiguous \(split, \*\(4,\)\)"):
        launch.sum_splits(torch.zeros(2, 3), torch.empty(4))


def test_split_weight_gradient_in_float16_reduces_in_float32() -> None:
    """Partials in float16 would lose the small terms of a long sum; float32 ones do not."""
    torch.manual_seed(9)
    x = torch.randn(4, 3, 9, 9).half()
    dy = torch.randn(4, 5, 9, 9).half()
    conf = ConvArgs((1, 1), (1, 1, 1, 1), (1, 1), 1)
    w = torch.zeros(5, 3, 3, 3, dtype=torch.float64)
    want = torch.ops.aten.convolution_backward(dy.double(), x.double(), w, None, [1, 1], [1, 1], [1, 1],
                                               False, [0, 0], 1, [False, True, False])[1]
    got = launch.backward_weight(dy, x, (5, 3, 3, 3), conf, split=4)
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.double(), want, rtol=2e-3, atol=2e-3)


# -- the persistent tensor-descriptor (TMA) GEMM, forced on the interpreter ------------------

TMA_TILE = Tile(32, 16, 16, 1, 1, tma=True)  # the interpreter's block sizes, persistent


@pytest.mark.skipif(not tuning.TMA_TILES, reason="this triton has no tl.make_tensor_descriptor")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_persistent_tma_gemm_matches_the_plain_one_for_every_operand_layout(dtype: torch.dtype) -> None:
    """The three pointwise GEMMs (forward: b transposed; dx: none; dw: a transposed, split
    in 3), with row, column and reduction tails: 272 pixels, 24 -> 40 channels (rows of 16
    bytes and more: what tensor descriptors need); 4 programs walk the tiles and splits."""
    torch.manual_seed(10)
    x = torch.randn(2, 24, 8, 17).to(dtype=dtype, memory_format=torch.channels_last)
    w, b, dy = torch.randn(40, 24, 1, 1, dtype=dtype), torch.randn(40, dtype=dtype), torch.randn(2, 40, 8, 17)
    dy = dy.to(dtype=dtype, memory_format=torch.channels_last)
    meta = launch._common(dtype, x.device, False)
    x_rows, dy_rows, w2 = launch._rows(x), launch._rows(dy), w[:, :, 0, 0]
    problems = {"forward": (x_rows, w2.t(), b), "dx": (dy_rows, w2, None), "dw": (dy_rows.t(), x_rows, None)}
    for name, (a, bm, bias) in problems.items():
        split = 3 if name == "dw" else 1
        out = {}
        for tile in (Tile(32, 16, 16, 1, 1), TMA_TILE):
            c = torch.full((split, a.shape[0], bm.shape[1]), float("nan"), dtype=torch.float32)
            launch.gemm(a, bm, c, bias, meta, split, tile=tile)
            out[tile.tma] = c.sum(0)
        assert not out[True].isnan().any(), name  # every tile of every split written
        # the same products in the same order: equal, whatever the dtype
        assert torch.equal(out[True], out[False]), name
        want = a.double() @ bm.double() + (bias.double() if bias is not None else 0)
        torch.testing.assert_close(out[True].double(), want, rtol=1e-2, atol=1e-2)
    assert launch.LAST["gemm"].endswith("persistent-TMA (forced)")


def test_tma_tiles_are_candidates_of_the_gemm_kernel_only_and_pruned_off_hopper() -> None:
    assert set(tuning.TMA_TILES) <= set(tuning.candidates("gemm", False))
    assert not any(t.tma for kind in ("forward", "backward_input", "backward_weight")
                   for t in tuning.candidates(kind, False))
    assert not any(t.tma for t in tuning.candidates("gemm", True))  # float64: FMA tiles only
    a = torch.zeros(64, 32, dtype=torch.float16)
    args = {"a": a, "b": a.t(), "sam": 32, "sak": 1, "sbk": 1, "sbn": 32}
    kept = tuning._prune([t.config() for t in tuning.candidates("gemm", False)], args)
    assert kept and not any(Tile.from_config(c).tma for c in kept)  # CPU tensors: no TMA
