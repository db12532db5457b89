"""``naive``: the float64 reference. Short, slow and obviously right.

Every output pixel is a window of the padded input times the kernel, summed, exactly as
the textbook formula reads:

    y[n, k, i, j] = b[k] + sum_{c, r, s} xp[n, g*Cg + c, i*sh + r*dh, j*sw + s*dw] * w[k, c, r, s]

where ``xp`` is the zero-padded input and ``g = k // (K / groups)`` is the group of
output channel ``k``. Results are computed in float64 and rounded to the input dtype.
"""

from __future__ import annotations

import numpy as np

from .contract import FEATURES, Implementation
from .geometry import ConvParams, PoolParams, pool_counts


def _pad(x: np.ndarray, padding, extent=None, value: float = 0.0) -> np.ndarray:
    """Pad H and W by ``((top, bottom), (left, right))``, then (ceil_mode) up to ``extent``."""
    (top, bottom), (left, right) = padding
    if extent is not None:  # windows that ceil_mode lets run past the padding
        bottom = max(bottom, extent[0] - top - x.shape[-2])
        right = max(right, extent[1] - left - x.shape[-1])
    pads = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, pads, constant_values=value)


def _window(i: int, j: int, kernel, stride, dilation=(1, 1)) -> tuple[slice, slice]:
    """Rows and columns of the padded input that output pixel (i, j) reads."""
    (r, s), (sh, sw), (dh, dw) = kernel, stride, dilation
    return (
        slice(i * sh, i * sh + (r - 1) * dh + 1, dh),
        slice(j * sw, j * sw + (s - 1) * dw + 1, dw),
    )


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams) -> np.ndarray:
    """Forward cross-correlation in float64 loops over (n, k, i, j)."""
    xp = _pad(x.astype(np.float64), p.padding)
    w = w.astype(np.float64)
    n_, k_, oh, ow = p.y_shape
    cg = p.w_shape[1]
    kg = k_ // p.groups
    y = np.zeros(p.y_shape)
    for n in range(n_):
        for k in range(k_):
            g = k // kg
            for i in range(oh):
                for j in range(ow):
                    rows, cols = _window(i, j, p.kernel, p.stride, p.dilation)
                    y[n, k, i, j] = np.sum(xp[n, g * cg:(g + 1) * cg, rows, cols] * w[k])
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def conv2d_backward(x: np.ndarray, w: np.ndarray, dy: np.ndarray, p: ConvParams):
    """(dx, dw, db) in float64.

    dx is the full correlation of dy (strided: zeros inserted between its pixels) with
    the 180-degree-rotated kernel, channels swapped within each group, then cropped to
    the unpadded input. dw[k, c, r, s] sums dy times the input pixel that tap (r, s) read.
    """
    dy = dy.astype(np.float64)
    n_, c_, h, w_ = p.x_shape
    k_, cg, r_, s_ = p.w_shape
    kg = k_ // p.groups
    (sh, sw), (dh, dw_) = p.stride, p.dilation
    oh, ow = p.out_hw

    # dx: upsample dy by the stride, correlate with the rotated kernel under "full" padding.
    up = np.zeros((n_, k_, (oh - 1) * sh + 1, (ow - 1) * sw + 1))
    up[:, :, ::sh, ::sw] = dy
    w_rot = w.astype(np.float64)[:, :, ::-1, ::-1]
    w_t = np.concatenate(  # (C, K // groups, R, S): output and input channels swapped per group
        [w_rot[g * kg:(g + 1) * kg].transpose(1, 0, 2, 3) for g in range(p.groups)]
    )
    full = ConvParams.create(up.shape, w_t.shape, padding="full", dilation=p.dilation, groups=p.groups)
    dxp = conv2d(up, w_t, None, full)  # gradient w.r.t. the padded input it can reach
    (top, bottom), (left, right) = p.padding
    dxp = _pad(dxp, ((0, 0), (0, 0)), extent=(h + top + bottom, w_ + left + right))
    dx = dxp[:, :, top:top + h, left:left + w_]

    # dw: for each tap, the strided slice of the padded input it read, times dy.
    xp = _pad(x.astype(np.float64), p.padding)
    dw = np.zeros(p.w_shape)
    for k in range(k_):
        g = k // kg
        for r in range(r_):
            for s in range(s_):
                rows = slice(r * dh, r * dh + (oh - 1) * sh + 1, sh)
                cols = slice(s * dw_, s * dw_ + (ow - 1) * sw + 1, sw)
                patch = xp[:, g * cg:(g + 1) * cg, rows, cols]  # (N, Cg, OH, OW)
                dw[k, :, r, s] = np.einsum("ncij,nij->c", patch, dy[:, k])
    return dx, dw, dy.sum(axis=(0, 2, 3))


def _pool_windows(p: PoolParams):
    for i in range(p.out_hw[0]):
        for j in range(p.out_hw[1]):
            yield i, j, _window(i, j, p.kernel, p.stride, p.dilation)


def _unpad(dxp: np.ndarray, p: PoolParams) -> np.ndarray:
    (top, _), (left, _) = p.padding
    return dxp[:, :, top:top + p.x_shape[2], left:left + p.x_shape[3]]


def max_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    xp = _pad(x.astype(np.float64), p.window_padding, value=-np.inf)
    y = np.empty(p.y_shape)
    for i, j, (rows, cols) in _pool_windows(p):
        y[:, :, i, j] = xp[:, :, rows, cols].max(axis=(2, 3))
    return y


def max_pool2d_backward(x: np.ndarray, dy: np.ndarray, p: PoolParams) -> np.ndarray:
    """Each window's gradient goes to its first maximum in row-major order."""
    xp = _pad(x.astype(np.float64), p.window_padding, value=-np.inf)
    dxp = np.zeros_like(xp)
    n_, c_ = p.x_shape[:2]
    for i, j, (rows, cols) in _pool_windows(p):
        for n in range(n_):
            for c in range(c_):
                window = xp[n, c, rows, cols]
                r, s = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                dxp[n, c, rows.start + r * rows.step, cols.start + s * cols.step] += dy[n, c, i, j]
    return _unpad(dxp, p)


def avg_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """Window sums divided by :func:`~implementations.geometry.pool_counts`."""
    xp = _pad(x.astype(np.float64), p.window_padding)
    counts = pool_counts(p)
    y = np.empty(p.y_shape)
    for i, j, (rows, cols) in _pool_windows(p):
        y[:, :, i, j] = xp[:, :, rows, cols].sum(axis=(2, 3)) / counts[i, j]
    return y


def avg_pool2d_backward(x: np.ndarray, dy: np.ndarray, p: PoolParams) -> np.ndarray:
    dxp = _pad(np.zeros(p.x_shape), p.window_padding)
    counts = pool_counts(p)
    for i, j, (rows, cols) in _pool_windows(p):
        dxp[:, :, rows, cols] += dy[:, :, i, j, None, None] / counts[i, j]
    return _unpad(dxp, p)


class Naive(Implementation):
    """The float64 reference: results are computed in float64, returned in the input dtype."""

    name = "naive"
    devices = ("cpu",)
    dtypes = ("float64", "float32", "float16", "bfloat16")
    features = frozenset(FEATURES)

    def conv2d(self, x, w, b, params):
        return conv2d(x, w, b, params).astype(x.dtype)

    def conv2d_backward(self, x, w, dy, params):
        return tuple(g.astype(x.dtype) for g in conv2d_backward(x, w, dy, params))

    def max_pool2d(self, x, params):
        return max_pool2d(x, params).astype(x.dtype)

    def max_pool2d_backward(self, x, dy, params):
        return max_pool2d_backward(x, dy.astype(np.float64), params).astype(x.dtype)

    def avg_pool2d(self, x, params):
        return avg_pool2d(x, params).astype(x.dtype)

    def avg_pool2d_backward(self, x, dy, params):
        return avg_pool2d_backward(x, dy.astype(np.float64), params).astype(x.dtype)
