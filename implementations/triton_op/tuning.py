"""Which tile a Triton convolution launch uses, and autotuning's choices kept on disk.

Autotuning times every candidate tile for every new problem shape (about a second per
shape and kernel on an H100), which a conformance catalogue of hundreds of tiny shapes
cannot afford and tiny problems do not need. So a launch takes its tile from, in order:

1. the interpreter's one small tile, when triton runs interpreted;
2. :func:`heuristic_tile`, a pure function of the GEMM sizes, when the problem is under
   :data:`AUTOTUNE_MIN_FLOPS`;
3. the on-disk :class:`TileCache`, when an earlier process autotuned the same problem
   (kernel, shape, dtypes, layout, GPU, Triton version);
4. triton's autotuner, whose choice is then written to the cache.

:func:`choose` makes that decision and is pure, so it is tested without a GPU. The
autotuner's side is here too: the candidate tiles and what it keys on (:func:`tuner`), and
the key of a cached choice (:func:`cache_key`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import triton
import triton.language as tl

from ..files import write_atomic
from .kernels import jitted

#: Problems with fewer FLOPs (2 * M * N * K of the implicit GEMM) run a heuristic tile.
#: Every ResNet-50 layer at batch 64 is above it; every conformance case far below.
AUTOTUNE_MIN_FLOPS = 2**30
#: Problems with fewer FLOPs are launch-bound whatever the tile: one small tile, and a
#: kernel build that serves every shape (see ``kernels.jitted``).
TINY_FLOPS = 2**24
#: Shared memory one program may use on an H100 (227 KiB); tiles needing more are pruned.
SMEM_LIMIT_BYTES = 227 * 1024
#: Bump when the key's fields or their meaning change: older entries are then never read.
CACHE_FORMAT = 2
CACHE_ENV = "CONVCERT_TRITON_CACHE"


@dataclass(frozen=True)
class Tile:
    """A GEMM tile and how it runs: block sizes, warps per program, pipeline stages, and
    for the plain GEMM kernel whether it runs persistent with tensor-descriptor (TMA) loads."""

    block_m: int
    block_n: int
    block_k: int
    warps: int
    stages: int
    tma: bool = False

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "tma":
                if not isinstance(value, bool):
                    raise ValueError(f"tma={value!r}: must be a bool")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive int")

    def _blocks(self) -> dict[str, Any]:
        blocks: dict[str, Any] = {"BLOCK_M": self.block_m, "BLOCK_N": self.block_n, "BLOCK_K": self.block_k}
        return {**blocks, "TMA": True} if self.tma else blocks  # only the GEMM kernel takes TMA

    def meta(self) -> dict[str, Any]:
        """Keyword arguments of a direct kernel launch with this tile."""
        return {**self._blocks(), "num_warps": self.warps, "num_stages": self.stages}

    def config(self) -> Any:
        return triton.Config(self._blocks(), num_warps=self.warps, num_stages=self.stages)

    @classmethod
    def from_config(cls, cfg: Any) -> Tile:
        kw = cfg.kwargs
        return cls(kw["BLOCK_M"], kw["BLOCK_N"], kw["BLOCK_K"], cfg.num_warps, cfg.num_stages,
                   bool(kw.get("TMA", False)))

    def smem_bytes(self, itemsize: int) -> int:
        """Shared memory of the software pipeline: one A and one B tile per stage."""
        return self.stages * (self.block_m + self.block_n) * self.block_k * itemsize

    def __str__(self) -> str:
        return (f"BLOCK_M={self.block_m} BLOCK_N={self.block_n} BLOCK_K={self.block_k} "
                f"warps={self.warps} stages={self.stages}" + (" persistent-TMA" if self.tma else ""))


#: The interpreter runs every program in Python: one small tile, nothing to tune. 16 is the
#: smallest block ``tl.dot`` accepts.
INTERPRETER_TILE = Tile(32, 16, 16, 1, 1)
#: float64 multiplies by broadcast-and-sum (no tensor cores): small tiles keep the
#: (BLOCK_M, BLOCK_K, BLOCK_N) product in registers.
FMA_TILE = Tile(32, 32, 8, 4, 2)


#: Tensor-descriptor (TMA) loads need Hopper (sm_90) or later.
TMA_MIN_CAPABILITY = (9, 0)


def tma_ready(operands: list[tuple[int, tuple[int, int], int]], capability: tuple[int, int]) -> bool:
    """Whether 2-D GEMM operands, each (address, (row stride, column stride) in elements,
    item size), can be read through tensor descriptors (TMA) on a GPU of ``capability``:
    each has a unit stride, and its address and its other stride are 16-byte aligned."""
    if tuple(capability) < TMA_MIN_CAPABILITY:
        return False
    for address, (rows, cols), itemsize in operands:
        if 1 not in (rows, cols):
            return False
        major = rows if cols == 1 else cols
        if address % 16 or (major * itemsize) % 16:
            return False
    return True


def _pow2_at_least(value: int, low: int, high: int) -> int:
    size = low
    while size < value and size < high:
        size *= 2
    return size


def heuristic_tile(m: int, n: int, k: int, fma: bool) -> Tile:
    """A tile for a GEMM of (m x k) @ (k x n) without timing anything.

    Tiny problems (the conformance catalogue) get one of very few tiles, so that a whole
    certification compiles few kernel variants; larger ones grow the tile towards the
    128 x 128 x 64, 8-warp shape that suits Hopper tensor cores.
    """
    for name, value in (("m", m), ("n", n), ("k", k)):
        if value < 1:
            raise ValueError(f"{name}={value!r}: GEMM sizes must be >= 1")
    if fma:
        return FMA_TILE
    if 2 * m * n * k < TINY_FLOPS:
        return Tile(32, 32 if n <= 32 else 64, 32, 4, 2)
    block_n = _pow2_at_least(n, 32, 128)
    block_m = 128 if m >= 8192 else 64
    block_k = 64 if k >= 256 else 32
    big = block_m * block_n >= 128 * 128
    return Tile(block_m, block_n, block_k, 8 if big else 4, 3 if big else 2)


def fits(tile: Tile, itemsize: int, limit: int = SMEM_LIMIT_BYTES) -> bool:
    return tile.smem_bytes(itemsize) <= limit


def choose(m: int, n: int, k: int, fma: bool, interpreting: bool,
           lookup: Callable[[], Tile | None]) -> tuple[str, Tile | None]:
    """(source, tile) for one launch; source is ``interpreter``, ``heuristic``, ``cached``
    or ``autotune`` (tile None: the caller runs triton's autotuner). ``lookup`` reads the
    disk cache and is called only for problems big enough to tune."""
    if interpreting:
        return "interpreter", INTERPRETER_TILE
    if 2 * m * n * k < AUTOTUNE_MIN_FLOPS:
        return "heuristic", heuristic_tile(m, n, k, fma)
    cached = lookup()
    if cached is not None:
        return "cached", cached
    return "autotune", None


# -- autotuning --------------------------------------------------------------------------

#: Arguments the autotuner keys on: the problem shape, plus per kernel the output layout
#: (its channel stride), the split-K factor or the operands' strides (triton adds the
#: tensor dtypes itself).
_SHAPE_KEY = ["N", "C", "H", "W", "K", "R", "S", "sh", "sw", "pt", "pl", "dh", "dw", "Cg", "Kg"]
TUNING_KEYS = {
    "forward": _SHAPE_KEY + ["syk"],
    "backward_input": _SHAPE_KEY + ["sxc"],
    "backward_weight": _SHAPE_KEY + ["SPLIT"],
    "gemm": ["M", "N", "K", "SPLIT", "sam", "sak", "sbk", "sbn", "scm"],
}

#: Candidate tiles on a GPU: tensor-core shapes for fp16/bf16/fp32 (BLOCK_K 64 with 3-4
#: stages and 8 warps suit Hopper), small FMA tiles for fp64. Tiles whose pipeline would
#: not fit in shared memory for the dtype are pruned before timing.
GPU_TILES: dict[bool, list[Tile]] = {
    False: [
        Tile(128, 256, 64, 8, 3),
        Tile(256, 128, 64, 8, 3),
        Tile(128, 128, 64, 8, 4),
        Tile(128, 128, 64, 8, 3),
        Tile(128, 128, 32, 8, 4),
        Tile(256, 64, 64, 8, 3),  # 64 output channels (ResNet stage 2): whole-K tiles
        Tile(128, 64, 64, 4, 4),
        Tile(64, 128, 64, 4, 4),
        Tile(128, 64, 32, 4, 4),
        Tile(64, 64, 64, 4, 3),
        Tile(64, 32, 32, 4, 4),
    ],
    True: [FMA_TILE, Tile(64, 32, 8, 4, 2), Tile(32, 64, 8, 4, 2)],
}
#: Extra candidates of the plain GEMM kernel on Hopper: persistent, TMA loads (the shapes
#: of triton's persistent matmul tutorial). Pruned where the GPU or the operands cannot.
#: None before triton 3.4 (no ``tl.make_tensor_descriptor``).
TMA_TILES = [Tile(128, 256, 64, 8, 3, tma=True), Tile(128, 128, 64, 8, 4, tma=True),
             Tile(128, 64, 64, 4, 4, tma=True)] if hasattr(tl, "make_tensor_descriptor") else []


def candidates(kind: str, fma: bool) -> list[Tile]:
    """The tiles the autotuner times for kernel ``kind``."""
    return GPU_TILES[fma] + (TMA_TILES if kind == "gemm" and not fma else [])


_TUNERS: dict[tuple[str, bool], Any] = {}


def gemm_tma_ready(args: dict[str, Any]) -> bool:
    """Whether the GEMM kernel's operands (its named arguments) can be read through tensor
    descriptors on their GPU (see :func:`tma_ready`)."""
    a, b = args["a"], args["b"]
    if a.device.type != "cuda":
        return False
    operands = [(t.data_ptr(), (args[rows], args[cols]), t.element_size())
                for t, rows, cols in ((a, "sam", "sak"), (b, "sbk", "sbn"))]
    return tma_ready(operands, torch.cuda.get_device_capability(a.device))


def _prune(configs: list[Any], named_args: dict[str, Any], **_: Any) -> list[Any]:
    """Drop tiles whose pipeline needs more shared memory than the GPU has, and TMA tiles
    where the GPU or the operands cannot take tensor descriptors."""
    itemsize = next(v.element_size() for v in named_args.values() if isinstance(v, torch.Tensor))
    tiles = [Tile.from_config(c) for c in configs]
    tma = any(t.tma for t in tiles) and gemm_tma_ready(named_args)
    kept = [c for c, t in zip(configs, tiles, strict=True) if fits(t, itemsize) and (tma or not t.tma)]
    return kept or configs[-1:]


def tuner(kind: str, fma: bool) -> Any:
    """triton's autotuner over :func:`candidates` for kernel ``kind`` (compiled mode only)."""
    if (kind, fma) not in _TUNERS:
        configs = [t.config() for t in candidates(kind, fma)]
        _TUNERS[kind, fma] = triton.autotune(configs, key=TUNING_KEYS[kind],
                                             prune_configs_by={"early_config_prune": _prune})(jitted(kind))
    return _TUNERS[kind, fma]


# -- the disk cache ----------------------------------------------------------------------

def cache_dir() -> Path:
    """``$CONVCERT_TRITON_CACHE``, else ``$XDG_CACHE_HOME/convcert/triton`` (``~/.cache``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "convcert" / "triton"


class TileCache:
    """Autotuned tiles on disk, one small JSON file per key.

    One file per entry means concurrent processes never overwrite each other's entries;
    each file is written atomically and holds its own key, so a hash collision, a
    truncated file or a hand edit reads as a miss, never as a wrong tile.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else cache_dir()

    @staticmethod
    def _canonical(key: dict[str, Any]) -> str:
        return json.dumps({"format": CACHE_FORMAT, **key}, sort_keys=True, separators=(",", ":"))

    def path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(self._canonical(key).encode()).hexdigest()[:32]
        return self.folder / f"{key.get('kernel', 'kernel').replace('/', '-')}-{digest}.json"

    def get(self, key: dict[str, Any]) -> Tile | None:
        try:
            entry = json.loads(self.path(key).read_text())
            if entry["key"] != json.loads(self._canonical(key)):
                return None
            return Tile(**entry["tile"])
        except (OSError, ValueError, KeyError, TypeError):  # missing, corrupt or foreign
            return None

    def put(self, key: dict[str, Any], tile: Tile) -> Path:
        path = self.path(key)
        entry = {"key": json.loads(self._canonical(key)), "tile": asdict(tile)}
        write_atomic(path, (json.dumps(entry, indent=1, sort_keys=True) + "\n").encode())
        return path


def _layout(t: torch.Tensor) -> str:
    if t.is_contiguous():
        return "contiguous"
    channels_last = t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
    return "channels_last" if channels_last else "strided"


def cache_key(kind: str, fma: bool, shape: Sequence[int], tensors: Sequence[torch.Tensor],
              precision: str) -> dict[str, Any]:
    """What an autotuned tile depends on: kernel, shape, dtypes, layout, GPU, Triton."""
    device = tensors[0].device
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return {
        "kernel": f"{kind}/{'fma' if fma else 'dot'}",
        "shape": [int(v) for v in shape],
        "dtypes": [str(t.dtype).removeprefix("torch.") for t in tensors],
        "layout": [_layout(t) for t in tensors],
        "precision": precision,
        "gpu": gpu,
        "triton": triton.__version__,
        "candidates": [str(t) for t in candidates(kind, fma)],
    }
