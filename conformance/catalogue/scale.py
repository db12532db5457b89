"""Scale cases: problems past the tile and chunk boundaries of real kernels.

A GPU implicit GEMM, a vendor library or a Triton kernel works in tiles of 64 to 256
output pixels and channels and loops over its reduction in chunks of 32 to 64; its
typical bugs (a dropped partial last tile, a lost reduction tail, a split-K chunk never
added, a channel tile reading the wrong weights) only show past those boundaries. Every
size here is chosen to cross one, and none is a multiple of 32 or 64, so a last tile or
chunk is always partial:

- output pixels per image and batch (``N * OH * OW``) above 256 and above 1024;
- reductions ``C / groups * R * S`` from about 100 to 4617 (past ResNet-50's 512x3x3),
  long weight-gradient sums (``N * OH * OW`` terms) and input-gradient sums
  (``K / groups * R * S`` terms);
- more than 128 output channels; grouped and depthwise layers with many channels;
- ``count_include_pad`` as the only option of a case (so blame can name it);
- stride and dilation whose window nearly fills the padded input (the window fits when
  ``(k - 1) * d + 1`` does, where a ``k * d`` check wrongly refuses it); 1x1 outputs.

Each case stays small in memory (the largest input is 2.8 MB in float64).

**References are computed at run time, not stored.** Their inputs come from a seed, as the
catalogue's do (full 53-bit mantissas in float mode), and the reference is computed exactly
and rounded once (``conformance.judging.exact``), so it is the same on every platform.
Storing them would add about 12 MB of golden data that a seed and an exact computation
already pin down.
"""

from __future__ import annotations

from collections.abc import Iterable

from .cases import CATALOGUE, MODES, Problem, check_unique


def _conv(x, w, note, **kw) -> list[Problem]:
    return [Problem("conv2d", x, w_shape=w, note=note, mode=m, **kw) for m in MODES]


def _pool(families: Iterable[str], x, kernel, note, **kw) -> list[Problem]:
    return [Problem(f, x, kernel=kernel, note=note, mode=m, **kw) for f in families for m in MODES]


_BOTH = ("max_pool2d", "avg_pool2d")

#: The scale set (forward and backward of each, in both input modes).
SCALE: tuple[Problem, ...] = tuple(
    _conv((1, 3, 19, 19), (5, 3, 3, 3), "289 output pixels: one past a 256-pixel tile")
    + _conv((2, 4, 25, 23), (7, 4, 3, 3), "N*OH*OW = 1150 output pixels; dw sums 1150 terms", padding=1)
    + _conv((1, 13, 6, 6), (6, 13, 3, 3), "reduction of 117 terms")
    + _conv((1, 57, 5, 5), (7, 57, 3, 3), "reduction of 513 terms")
    + _conv((1, 229, 4, 4), (5, 229, 3, 3), "reduction of 2061 terms", bias=False)
    + _conv((1, 513, 4, 4), (3, 513, 3, 3), "reduction of 4617 terms (past ResNet-50's 512x3x3), 4 pixels")
    + _conv((1, 5, 6, 6), (150, 5, 3, 3), "150 output channels: past a 128-channel tile; dx sums 1350",
            padding=1)
    + _conv((2, 2, 50, 51), (3, 2, 3, 3), "dw sums N*OH*OW = 4704 terms")
    + _conv((2, 300, 3, 3), (130, 300, 3, 3), "1x1 output: reduction of 2700 terms, 130 channels")
    + _conv((1, 130, 9, 9), (130, 1, 3, 3), "depthwise, 130 channels", padding=1, groups=130)
    + _conv((1, 96, 7, 7), (132, 24, 3, 3), "4 groups of 24 -> 33 channels (K = 132)", padding=1, groups=4)
    + _conv((1, 72, 6, 6), (144, 1, 3, 3), "depthwise with channel multiplier 2, K = 144", groups=72)
    + _conv((1, 3, 7, 8), (4, 3, 3, 3), "dilated window (7) exactly as tall as the input (k*d = 9)",
            dilation=3)
    + _conv((2, 3, 5, 6), (4, 3, 3, 2), "dilated window fills the padded input: (7, 6) in (7, 8)",
            padding=1, dilation=(3, 5))
    + _conv((1, 2, 9, 10), (3, 2, 3, 3), "stride 3, dilation 4: window 9 in a 10x11 padded input",
            stride=3, padding=((0, 1), (1, 0)), dilation=4)
    + _pool(_BOTH, (2, 3, 48, 45), 3, "N*OH*OW = 1104 windows", stride=2, padding=1)
    + _pool(_BOTH, (1, 2, 33, 35), 3, "ceil_mode past 256 windows per image", stride=2, ceil_mode=True)
    + _pool(("avg_pool2d",), (1, 3, 17, 19), (17, 19), "global average of 323 terms")
    + _pool(("avg_pool2d",), (2, 3, 33, 35), 3, "count_include_pad alone (stride = window, symmetric "
            "padding), 264 windows: the one option a wrong padding count can be blamed on", padding=1,
            count_include_pad=True)
)

check_unique(CATALOGUE + SCALE)
