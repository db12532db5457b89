"""Correctly rounded float64 references, whatever the inputs' mantissas.

Inputs with full 53-bit mantissas (what a certifier must draw, so that a plug-in that stores
float64 as float32 cannot pass) make float64 arithmetic inexact: a reference computed in
float64 would carry an error as large as the bound it is judged by. So the reference is
computed exactly and rounded once:

1. each input array is split into a few arrays on fixed power-of-two grids whose sum is
   exactly the input (:func:`split`), each holding integers of at most ``bits`` bits times
   its grid, with ``bits`` chosen so that a sum of ``L`` products of two such integers stays
   below ``2**53`` (:func:`chunk_bits`);
2. the operation (linear or bilinear in its inputs) runs in float64 on every combination of
   chunks: every product and every partial sum is then an integer below ``2**53`` times a
   power of two, so each partial result is exact, in any summation order and with or
   without fused multiply-adds;
3. the partial results are summed (:func:`combine`): as if in twice the float64 precision
   and then rounded (:func:`accurate_sum`), or, where each is divided by an integer (an
   average's count), exactly as Python integers and rounded once (Python's integer
   division is correctly rounded).

The result is within one unit in the last place of the exact value (an average: the
float64 number nearest it), far below any bound it is judged by, and bit for bit the same
on every platform. Max pooling's forward pass selects an element and needs none of this.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from implementations import im2col as fast
from implementations.geometry import ConvParams, PoolParams, pool_counts

#: Significand bits of float64 (the implicit bit included).
FLOAT64_BITS = 53
Part = tuple[np.ndarray, "int | np.ndarray"]  # a partial result and its integer divisor


def chunk_bits(longest_sum: int) -> int:
    """Bits per chunk such that ``longest_sum`` products of two chunks sum exactly in float64."""
    return (FLOAT64_BITS - math.ceil(math.log2(longest_sum + 1))) // 2


def split(a: np.ndarray, bits: int) -> list[np.ndarray]:
    """Arrays summing exactly to ``a``, each an integer of at most ``bits`` bits (magnitude at
    most ``2**bits``) times a power of two common to the array: the first on the coarsest
    grid, each next one on a grid ``2**bits`` times finer."""
    a = np.asarray(a, dtype=np.float64)
    nonzero = np.abs(a[a != 0])
    if not nonzero.size:
        return [a]
    if not np.all(np.isfinite(nonzero)):
        raise ValueError("an exact reference needs finite inputs")
    scale = int(np.frexp(nonzero.max())[1])  # |a| < 2**scale
    finest = int(np.frexp(nonzero)[1].min()) - FLOAT64_BITS  # every value a multiple of 2**finest
    chunks, rest = [], a
    while scale - bits > finest:
        chunk = np.ldexp(np.round(np.ldexp(rest, bits - scale)), scale - bits)  # nearest multiple of the grid
        chunks.append(chunk)
        rest = rest - chunk  # exact: |rest| <= half the grid, and a multiple of 2**finest
        scale -= bits
        if not rest.any():
            return chunks
    return [*chunks, rest]


def combine(parts: Sequence[Part]) -> np.ndarray:
    """``sum(part / divisor)`` over ``parts`` (float64 arrays, integer divisors), rounded once."""
    arrays = [np.asarray(p, dtype=np.float64) for p, _ in parts]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    kept = [(a, d) for a, (_, d) in zip(arrays, parts, strict=True) if a.any()]
    if all(isinstance(d, int) and d == 1 for _, d in kept):
        return accurate_sum([a for a, _ in kept], shape)
    nonzero = [np.abs(a[a != 0]) for a in arrays]
    exps = [int(np.frexp(n)[1].min()) - FLOAT64_BITS for n in nonzero if n.size]
    if not exps:
        return np.zeros(shape)
    low = min(exps)  # every part a multiple of 2**low
    divisors = [np.broadcast_to(np.asarray(d, dtype=np.int64), shape) for _, d in parts]
    common = math.lcm(*{int(v) for d in divisors for v in np.unique(d)})
    as_int = np.frompyfunc(int, 1, 1)
    total = np.zeros(shape, dtype=object)
    for a, d in zip(arrays, divisors, strict=True):
        units = as_int(np.ldexp(np.broadcast_to(a, shape), -low))  # exact integers
        total = total + units * as_int(common // d)
    denominator = common << -low if low < 0 else common
    numerator = total if low < 0 else total * (1 << low)
    return np.asarray(numerator / denominator, dtype=np.float64).reshape(shape)


def accurate_sum(arrays: Sequence[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Elementwise sum of ``arrays`` as if computed in twice the float64 precision and then
    rounded (Sum2, Ogita, Rump and Oishi 2005: cascaded error-free TwoSum): its error is at
    most ``u |sum| + gamma(K - 1)**2 * sum(|array|)``, within one unit in the last place of
    the exact sum for the few parts of a split reference. Only elementwise IEEE additions,
    in a fixed order: the same bits on every platform."""
    total, carried = np.zeros(shape), np.zeros(shape)
    for a in arrays:
        s = total + a
        virtual = s - total
        carried += (total - (s - virtual)) + (a - virtual)  # the rounding error of s, exactly
        total = s
    return total + carried


def _bilinear(f: Callable[[np.ndarray, np.ndarray], np.ndarray], a: list[np.ndarray],
              b: list[np.ndarray]) -> list[Part]:
    return [(f(x, y), 1) for x in a for y in b]


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams, bits: int) -> np.ndarray:
    """Correctly rounded ``conv2d`` (see the module docstring)."""
    parts = _bilinear(lambda xc, wc: fast.conv2d(xc, wc, None, p), split(x, bits), split(w, bits))
    if b is not None:
        parts.append((np.broadcast_to(np.asarray(b, dtype=np.float64)[None, :, None, None], p.y_shape), 1))
    return combine(parts)


def conv2d_backward(x: np.ndarray, w: np.ndarray, dy: np.ndarray, p: ConvParams,
                    bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correctly rounded ``(dx, dw, db)``: dx is bilinear in (w, dy), dw in (x, dy), db linear in dy."""
    xs, ws, dys = split(x, bits), split(w, bits), split(dy, bits)
    dx: list[Part] = []
    dw: list[Part] = []
    for i in range(max(len(xs), len(ws))):  # one call gives dx of (w_i, dy_k) and dw of (x_i, dy_k)
        xc = xs[i] if i < len(xs) else np.zeros_like(xs[0])
        wc = ws[i] if i < len(ws) else np.zeros_like(ws[0])
        for dyc in dys:
            gx, gw, _ = fast.conv2d_backward(xc, wc, dyc, p)
            dx += [(gx, 1)] if i < len(ws) else []
            dw += [(gw, 1)] if i < len(xs) else []
    db = combine([(np.asarray(dyc).sum(axis=(0, 2, 3)), 1) for dyc in dys])
    return combine(dx), combine(dw), db


def max_pool2d_backward(x: np.ndarray, dy: np.ndarray, p: PoolParams, bits: int) -> np.ndarray:
    """Correctly rounded max-pool gradient: each window's dy to its first maximum, summed."""
    return combine([(fast.max_pool2d_backward(np.asarray(x, dtype=np.float64), dyc, p), 1)
                    for dyc in split(dy, bits)])


def avg_pool2d(x: np.ndarray, p: PoolParams, bits: int) -> np.ndarray:
    """Correctly rounded average: exact window sums over their counts, rounded once."""
    counts = pool_counts(p).astype(np.int64)
    return combine([(fast.pool_windows(xc, p, 0.0).sum(axis=-1), counts) for xc in split(x, bits)])


def avg_pool2d_backward(x: np.ndarray, dy: np.ndarray, p: PoolParams, bits: int) -> np.ndarray:
    """Correctly rounded average-pool gradient: the shares ``dy / count`` of every window a pixel
    is in, grouped by count so that each group's sum is exact before its one division."""
    counts = pool_counts(p).astype(np.int64)
    taps = p.kernel[0] * p.kernel[1]
    parts: list[Part] = []
    for count in np.unique(counts):
        for dyc in split(dy, bits):
            share = np.where(counts == count, dyc, 0.0)
            dwin = np.broadcast_to(share[..., None], (*share.shape, taps))
            parts.append((fast.scatter_windows(dwin, p), int(count)))
    return combine(parts)
