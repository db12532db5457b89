"""Tile choice without a GPU: the heuristic, the decision, the disk cache, the launch path.

The compiled launch path is exercised with fake kernels standing in for triton's
``JITFunction`` and autotuner, so the test sees which path a launch took and what reached
the cache, without compiling anything.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the triton implementation needs torch")
pytest.importorskip("triton", reason="triton is not installed")

import torch  # noqa: E402

from implementations.triton_op import kernels, launch  # noqa: E402
from implementations.triton_op import tuning as tt  # noqa: E402
from implementations.triton_op.launch import LaunchShape  # noqa: E402
from implementations.triton_op.tuning import Tile, TileCache  # noqa: E402

#: ResNet-50 res3_conv3x3 at batch 64 as the forward implicit GEMM: M = N*OH*OW, N = K, K = C*R*S.
RESNET_3X3 = (64 * 28 * 28, 128, 128 * 9)


def _never() -> Tile | None:
    raise AssertionError("the cache was consulted for a problem that is not tuned")


def test_heuristic_gives_tiny_problems_one_small_tile_whatever_their_shape() -> None:
    sizes = [(m, n, k) for m in (1, 7, 50, 300) for n in (1, 6, 18) for k in (3, 27, 90)]
    tiles = {tt.heuristic_tile(m, n, k, fma=False) for m, n, k in sizes}
    assert tiles == {Tile(32, 32, 32, 4, 2)}


def test_heuristic_grows_towards_hopper_tiles_for_large_gemms() -> None:
    assert tt.heuristic_tile(*RESNET_3X3, fma=False) == Tile(128, 128, 64, 8, 3)
    assert tt.heuristic_tile(4096, 64, 64, fma=False) == Tile(64, 64, 32, 4, 2)
    assert tt.heuristic_tile(*RESNET_3X3, fma=True) == tt.FMA_TILE


def test_heuristic_rejects_an_empty_gemm_naming_the_size() -> None:
    with pytest.raises(ValueError, match=r"n=0: GEMM sizes must be >= 1"):
        tt.heuristic_tile(10, 0, 10, fma=False)


def test_tile_rejects_a_non_positive_block() -> None:
    with pytest.raises(ValueError, match=r"block_k=0: must be a positive int"):
        Tile(32, 32, 0, 4, 2)


def test_small_problems_take_the_heuristic_without_reading_the_cache() -> None:
    assert tt.choose(50, 18, 27, False, False, _never) == ("heuristic", Tile(32, 32, 32, 4, 2))
    assert tt.choose(50, 18, 27, False, True, _never) == ("interpreter", tt.INTERPRETER_TILE)


def test_large_problems_use_the_cached_tile_else_ask_for_autotuning() -> None:
    hit = Tile(256, 64, 64, 8, 3)
    assert tt.choose(*RESNET_3X3, False, False, lambda: hit) == ("cached", hit)
    assert tt.choose(*RESNET_3X3, False, False, lambda: None) == ("autotune", None)


def test_shared_memory_pruning_drops_float32_tiles_that_fit_only_in_half_precision() -> None:
    big = Tile(128, 256, 64, 8, 3)
    assert tt.fits(big, 2) and not tt.fits(big, 4)
    assert all(tt.fits(tile, 2) for tile in tt.GPU_TILES[False])
    kept = tt._prune([t.config() for t in tt.GPU_TILES[False]], {"x": torch.empty(1, dtype=torch.float32)})
    assert big not in {Tile.from_config(c) for c in kept} and len(kept) >= 5


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(tt.CACHE_ENV, str(tmp_path / "tiles"))
    assert TileCache().folder == tmp_path / "tiles"
    monkeypatch.delenv(tt.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert TileCache().folder == tmp_path / "convcert" / "triton"


KEY = {"kernel": "forward/dot", "shape": [64, 128, 28, 28], "dtypes": ["float16"],
       "layout": ["channels_last"], "precision": "ieee", "gpu": "NVIDIA H100 80GB HBM3",
       "triton": "3.6.0", "candidates": ["a"]}


def test_cache_round_trips_a_tile_atomically_and_keys_on_gpu_and_triton(tmp_path: Path) -> None:
    cache = TileCache(tmp_path / "new")
    tile = Tile(128, 128, 64, 8, 4)
    path = cache.put(KEY, tile)
    assert cache.get(KEY) == tile and TileCache(tmp_path / "new").get(dict(KEY)) == tile
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert json.loads(path.read_text())["tile"]["block_k"] == 64
    for field, other in (("gpu", "NVIDIA H200"), ("triton", "3.7.0"), ("dtypes", ["bfloat16"])):
        assert cache.get({**KEY, field: other}) is None, field


@pytest.mark.parametrize("text", ["", "{not json", '{"key": {}, "tile": {"block_m": 1}}', "[]",
                                  '{"key": null, "tile": null}'])
def test_a_corrupt_or_foreign_cache_file_reads_as_a_miss(tmp_path: Path, text: str) -> None:
    cache = TileCache(tmp_path)
    cache.path(KEY).write_text(text)
    assert cache.get(KEY) is None


def test_an_entry_whose_stored_key_differs_reads_as_a_miss(tmp_path: Path) -> None:
    cache = TileCache(tmp_path)
    path = cache.put(KEY, Tile(64, 64, 64, 4, 3))
    entry = json.loads(path.read_text())
    entry["key"]["gpu"] = "another GPU"
    path.write_text(json.dumps(entry))
    assert cache.get(KEY) is None


# -- the compiled launch path, with fake kernels ------------------------------------------

class FakeKernel:
    """Stands in for a JITFunction (``kernel[grid](*args, **meta)``) and records launches."""

    def __init__(self, best: Tile | None = None):
        self.calls: list[dict[str, Any]] = []
        self.best_config = best.config() if best else None

    def __getitem__(self, grid):
        def run(*args: Any, **meta: Any) -> None:
            self.calls.append(meta)
        return run


@pytest.fixture
def compiled(monkeypatch, tmp_path: Path) -> dict[str, FakeKernel]:
    """Pretend triton compiles: fake jitted kernels and autotuners, an empty tile cache."""
    fakes = {"jit": FakeKernel(), "generic": FakeKernel(), "tuner": FakeKernel(best=Tile(128, 64, 64, 4, 4))}
    monkeypatch.setattr(launch, "interpreting", lambda: False)
    monkeypatch.setattr(launch, "jitted", lambda kind, generic=False: fakes["generic" if generic else "jit"])
    monkeypatch.setattr(launch, "tuner", lambda kind, fma: fakes["tuner"])
    monkeypatch.setattr(launch, "_TUNED", {})
    monkeypatch.setattr(launch, "LAUNCHES", Counter())
    monkeypatch.setenv(tt.CACHE_ENV, str(tmp_path))
    return fakes


def _launch_forward(m: int) -> None:
    x = torch.empty(1, dtype=torch.float16)
    meta = {"FMA": False, "PRECISION": "ieee"}
    shape = LaunchShape((m, 128, 1152), 1, (m, 128), (x,))
    launch._launch("forward", lambda cfg: (1,), (x,), meta, shape)


def test_a_tiny_compiled_launch_runs_the_heuristic_tile_unspecialised_and_never_autotunes(compiled) -> None:
    _launch_forward(8)  # 2.4 MFLOP
    assert compiled["tuner"].calls == [] and compiled["jit"].calls == []
    assert launch.LAUNCHES == {("forward", "heuristic"): 1}
    assert compiled["generic"].calls[0]["BLOCK_M"] == 32 and compiled["generic"].calls[0]["num_warps"] == 4


def test_a_mid_sized_launch_runs_a_heuristic_tile_in_the_specialised_build(compiled) -> None:
    _launch_forward(2048)  # 0.6 GFLOP: under the autotuning threshold
    assert compiled["tuner"].calls == [] and compiled["generic"].calls == []
    assert launch.LAUNCHES == {("forward", "heuristic"): 1} and compiled["jit"].calls[0]["BLOCK_N"] == 128


def test_a_large_launch_autotunes_once_then_later_processes_read_the_cache(compiled, tmp_path: Path) -> None:
    _launch_forward(RESNET_3X3[0])
    _launch_forward(RESNET_3X3[0])  # same process: remembered, no second tuning
    assert len(compiled["tuner"].calls) == 1 and "BLOCK_M" not in compiled["tuner"].calls[0]
    assert launch.LAUNCHES == {("forward", "autotune"): 1, ("forward", "cached"): 1}
    assert len(list(tmp_path.glob("forward-dot-*.json"))) == 1
    launch._TUNED.clear()  # a new process: only the disk remembers
    _launch_forward(RESNET_3X3[0])
    assert len(compiled["tuner"].calls) == 1 and launch.LAUNCHES["forward", "cached"] == 2
    assert compiled["jit"].calls[-1]["BLOCK_M"] == 128 and compiled["jit"].calls[-1]["num_stages"] == 4
    assert compiled["generic"].calls == []  # tuned shapes keep triton's specialisations


def test_an_unwritable_cache_warns_and_the_launch_still_happens(compiled, monkeypatch, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(tt.CACHE_ENV, str(blocker / "sub"))
    with pytest.warns(UserWarning, match="not written"):
        _launch_forward(RESNET_3X3[0])
    assert len(compiled["tuner"].calls) == 1


def test_generic_kernels_leave_every_shape_and_stride_argument_unspecialised() -> None:
    names = kernels.int_args("forward")
    assert {"N", "C", "sxn", "syw", "Kg"} <= set(names)
    assert not {"x", "w", "bias", "y", "BLOCK_M", "HAS_BIAS"} & set(names)
    assert kernels.int_args("sum_splits") == ["NUMEL", "SPLIT"]


@pytest.mark.parametrize(("operands", "capability", "ready"), [
    ([(4096, (64, 1), 2), (8192, (1, 64), 2)], (9, 0), True),    # fp16, one operand transposed
    ([(4096, (64, 1), 2)], (8, 9), False),                        # Ada: no TMA
    ([(4104, (64, 1), 2)], (9, 0), False),                        # address not 16-byte aligned
    ([(4096, (20, 1), 2)], (9, 0), False),                        # 40-byte rows
    ([(4096, (20, 1), 4)], (10, 0), True),                        # 80-byte rows, Blackwell
    ([(4096, (64, 2), 2)], (9, 0), False),                        # no unit stride
])
def test_tma_needs_hopper_a_unit_stride_and_16_byte_alignment(operands, capability, ready) -> None:
    assert tt.tma_ready(operands, capability) is ready


def test_a_tma_tile_round_trips_through_config_cache_and_text(tmp_path: Path) -> None:
    tile = Tile(128, 256, 64, 8, 3, tma=True)
    assert Tile.from_config(tile.config()) == tile and tile.meta()["TMA"] is True
    assert "TMA" not in Tile(64, 64, 32, 4, 2).meta()  # the other kernels take no TMA argument
    assert str(tile).endswith("persistent-TMA")
    cache = TileCache(tmp_path)
    cache.put(KEY, tile)
    assert cache.get(KEY) == tile
    with pytest.raises(ValueError, match="tma=1"):
        Tile(1, 1, 1, 1, 1, tma=1)  # type: ignore[arg-type]


def test_a_remembered_tma_tile_runs_without_tma_where_the_operands_cannot(compiled) -> None:
    x = torch.empty(1, dtype=torch.float16)
    memo_shape = (RESNET_3X3[0], 128)
    compiled["tuner"].best_config = Tile(128, 128, 64, 8, 4, tma=True).config()
    meta = {"FMA": False, "PRECISION": "ieee", "A_T": True, "B_T": False}
    for tma_ok in (True, False):
        problem = LaunchShape((RESNET_3X3[0], 128, 1152), 1, memo_shape, (x,))
        launch._launch("gemm", lambda cfg: (1,), (x,), meta, problem, tma_ok=tma_ok)
    assert len(compiled["tuner"].calls) == 1  # tuned once (TMA fitted then), remembered after
    assert compiled["tuner"].calls[0]["A_T"] is True  # the TMA candidates need the operand layout
    assert "TMA" not in compiled["jit"].calls[-1] and compiled["jit"].calls[-1]["BLOCK_K"] == 64
    assert "A_T" not in compiled["jit"].calls[-1]  # the plain GEMM: one build for every layout
