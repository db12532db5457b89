"""Shrinking a failing problem to a smaller one that still fails, deterministically.

Greedy, in a fixed order: each step tries the candidates of :func:`smaller` (one field made
smaller: batch, channels, groups, size, kernel, stride, dilation, padding, then options
turned off) and takes the first that is valid, uses only claimed options and still fails,
until none does or ``budget`` problems have been tried. The same failing answers give the
same shrunk problem; a count, never a clock, bounds the work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from conformance.catalogue.cases import Problem

#: Most problems one shrink tries.
SHRINK_BUDGET = 120


def _pairs(padding: Any) -> tuple[tuple[int, int], tuple[int, int]] | None:
    if isinstance(padding, str):
        return None
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if all(isinstance(p, int) for p in padding):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return padding


def _down(value: int, floor: int = 1) -> list[int]:
    """Smaller values to try, the smallest first."""
    return sorted({floor, value // 2, value - 1} - {value}) if value > floor else []


def smaller(p: Problem) -> Iterator[Problem]:
    """Problems one step simpler than ``p`` (some invalid: the caller checks)."""
    params = p.params
    n, c, h, w = p.x_shape
    sh, sw = params.stride
    dh, dw = params.dilation
    replace = dataclasses.replace
    conv = p.family == "conv2d"
    yield from (replace(p, x_shape=(v, c, h, w)) for v in _down(n))
    if conv:
        k, cg, r, s = p.w_shape  # type: ignore[misc]
        g = p.groups
        for v in _down(g):  # fewer groups of the same size
            yield replace(p, groups=v, x_shape=(n, cg * v, h, w), w_shape=(k // g * v, cg, r, s))
        yield from (replace(p, x_shape=(n, v * g, h, w), w_shape=(k, v, r, s)) for v in _down(cg))
        yield from (replace(p, w_shape=(v * g, cg, r, s)) for v in _down(k // g))
        yield from (replace(p, w_shape=(k, cg, v, s)) for v in _down(r))
        yield from (replace(p, w_shape=(k, cg, r, v)) for v in _down(s))
    else:
        yield from (replace(p, x_shape=(n, v, h, w)) for v in _down(c))
        kh, kw = params.kernel
        stride = p.stride if p.stride is not None else params.stride
        yield from (replace(p, kernel=(v, kw), stride=stride) for v in _down(kh))
        yield from (replace(p, kernel=(kh, v), stride=stride) for v in _down(kw))
    yield from (replace(p, x_shape=(n, c, v, w)) for v in _down(h))
    yield from (replace(p, x_shape=(n, c, h, v)) for v in _down(w))
    yield from (replace(p, stride=(v, sw)) for v in _down(sh))
    yield from (replace(p, stride=(sh, v)) for v in _down(sw))
    yield from (replace(p, dilation=(v, dw)) for v in _down(dh))
    yield from (replace(p, dilation=(dh, v)) for v in _down(dw))
    pads = _pairs(p.padding)
    if pads is None:
        yield replace(p, padding=params.padding if any(map(any, params.padding)) else 0)  # explicit
    else:
        flat = [v for pair in pads for v in pair]
        for i, v in enumerate(flat):
            for smaller_v in _down(v, 0):
                new = flat[:i] + [smaller_v] + flat[i + 1:]
                yield replace(p, padding=((new[0], new[1]), (new[2], new[3])) if any(new) else 0)
    for flag in ("bias", "ceil_mode", "count_include_pad"):
        if getattr(p, flag):
            yield replace(p, **{flag: False})


def shrink(problem: Problem, fails: Callable[[Problem], bool], allowed: frozenset[str],
           budget: int = SHRINK_BUDGET) -> Problem:
    """The smallest problem reached from ``problem`` by steps of :func:`smaller` that ``fails``."""
    tried: set[str] = {problem.descriptor}
    current = problem
    improved = True
    while improved and len(tried) < budget:
        improved = False
        for candidate in smaller(current):
            try:
                if not candidate.options <= allowed or candidate.descriptor in tried:
                    continue
            except ValueError:  # invalid geometry
                continue
            tried.add(candidate.descriptor)
            if fails(candidate):
                current, improved = candidate, True
                break
            if len(tried) >= budget:
                break
    return current
