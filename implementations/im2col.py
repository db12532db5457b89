"""``im2col``: the fast NumPy implementation.

Convolution becomes one GEMM per group over a column matrix of the input's windows. The
public :func:`im2col` returns the textbook layout, rows = output pixels and columns =
(channel, kernel-row, kernel-column) taps: ``(N * OH * OW, C * R * S)``. The convolution
itself uses its transpose, :func:`column_matrix` ``(C * R * S, B * OH * OW)``, built for
a chunk of images at a time (memory stays bounded by :data:`CHUNK_BYTES`) with one
strided copy per kernel tap; then ``w @ cols`` is already channel-major, so the output
needs no transposing copy of the column-sized product. The backward pass is two GEMMs per
chunk (``dy @ cols^T`` for dw, ``w^T @ dy`` for the column gradients) and a scatter of
the column gradients back onto the input, again one strided add per kernel tap. Pooling
uses the same window view, padded with the reducer's identity.

float16 and bfloat16 are computed in float32 and rounded once at the end.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .contract import FEATURES, Implementation
from .geometry import ConvParams, PoolParams, effective_kernel, output_size, pool_counts

#: dtype the arithmetic runs in, per input dtype name.
_COMPUTE = {"float64": np.float64, "float32": np.float32, "float16": np.float32, "bfloat16": np.float32}


def _compute_dtype(array: np.ndarray) -> np.dtype:
    return np.dtype(_COMPUTE[np.dtype(array.dtype).name])


def pad_input(x: np.ndarray, padding, extent, value: float = 0.0) -> np.ndarray:
    """Pad H and W by ``padding``; grow bottom/right further to ``extent`` if needed."""
    (top, bottom), (left, right) = padding
    bottom = max(bottom, extent[0] - top - x.shape[2])
    right = max(right, extent[1] - left - x.shape[3])
    if not (top or bottom or left or right):
        return x
    xp = np.full((*x.shape[:2], x.shape[2] + top + bottom, x.shape[3] + left + right), value, x.dtype)
    xp[:, :, top:top + x.shape[2], left:left + x.shape[3]] = x
    return xp


def window_view(xp: np.ndarray, kernel, stride, dilation, out_hw) -> np.ndarray:
    """Read-only view ``(N, C, OH, OW, R, S)`` of every window of the padded input."""
    sn, sc, sh_, sw_ = xp.strides
    (sh, sw), (dh, dw) = stride, dilation
    shape = (*xp.shape[:2], *out_hw, *kernel)
    strides = (sn, sc, sh_ * sh, sw_ * sw, sh_ * dh, sw_ * dw)
    return as_strided(xp, shape, strides, writeable=False)


def _extent(out_hw, kernel, stride, dilation) -> tuple[int, int]:
    return tuple((o - 1) * s + (k - 1) * d + 1
                 for o, k, s, d in zip(out_hw, kernel, stride, dilation, strict=True))


def im2col(x: np.ndarray, kernel, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), out_hw=None):
    """Column matrix ``(N * OH * OW, C * R * S)`` of ``x``; ``out_hw`` defaults to the floor rule."""
    if out_hw is None:
        out_hw = tuple(
            output_size(n, before, after, effective_kernel(k, d), s)
            for n, (before, after), k, d, s
            in zip(x.shape[2:], padding, kernel, dilation, stride, strict=True)
        )
    xp = pad_input(x, padding, _extent(out_hw, kernel, stride, dilation))
    view = window_view(xp, kernel, stride, dilation, out_hw)  # (N, C, OH, OW, R, S)
    n, c = x.shape[:2]
    return view.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_hw[0] * out_hw[1], c * kernel[0] * kernel[1])


def col2im(cols: np.ndarray, x_shape, kernel, stride, padding, dilation, out_hw) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum every column entry back onto the input pixel it read."""
    n, c, h, w = x_shape
    (r_, s_), (sh, sw), (dh, dw) = kernel, stride, dilation
    (top, bottom), (left, right) = padding
    oh, ow = out_hw
    extent = _extent(out_hw, kernel, stride, dilation)
    dxp = np.zeros((n, c, max(h + top + bottom, extent[0]), max(w + left + right, extent[1])), cols.dtype)
    taps = cols.reshape(n, oh, ow, c, r_, s_).transpose(0, 3, 4, 5, 1, 2)  # (N, C, R, S, OH, OW)
    for r in range(r_):
        for s in range(s_):
            tap_rows = slice(r * dh, r * dh + (oh - 1) * sh + 1, sh)
            tap_cols = slice(s * dw, s * dw + (ow - 1) * sw + 1, sw)
            dxp[:, :, tap_rows, tap_cols] += taps[:, :, r, s]
    return dxp[:, :, top:top + h, left:left + w]


#: Bytes one column-matrix chunk may take; images are processed in chunks of this size so
#: that memory stays bounded and the chunk stays near the cache while the GEMM reads it.
CHUNK_BYTES = 8 * 2**20


def _chunks(p: ConvParams, itemsize: int) -> list[slice]:
    """Image ranges whose column matrices fit in :data:`CHUNK_BYTES` (at least one image)."""
    n = p.x_shape[0]
    per_image = p.x_shape[1] * p.kernel[0] * p.kernel[1] * p.out_hw[0] * p.out_hw[1] * itemsize
    step = max(1, min(n, CHUNK_BYTES // per_image))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _taps(p: ConvParams):
    """(r, s, rows, cols): for each kernel tap, the padded-input slices it reads."""
    (r_, s_), (sh, sw), (dh, dw) = p.kernel, p.stride, p.dilation
    oh, ow = p.out_hw
    for r in range(r_):
        for s in range(s_):
            rows = slice(r * dh, r * dh + (oh - 1) * sh + 1, sh)
            yield r, s, rows, slice(s * dw, s * dw + (ow - 1) * sw + 1, sw)


def column_matrix(xp: np.ndarray, p: ConvParams) -> np.ndarray:
    """Columns ``(G, Cg * R * S, B * OH * OW)`` of the padded images ``xp (B, C, Hp, Wp)``.

    The GEMM-friendly transpose of :func:`im2col`: rows are taps in (channel, kernel row,
    kernel column) order, columns are output pixels in (image, row, column) order, so
    ``w (G, Kg, Cg*R*S) @ cols`` lands as ``(G, Kg, B, OH, OW)``. It is filled with one
    strided copy per kernel tap rather than one per output pixel.
    """
    b, c = xp.shape[:2]
    (r_, s_), (oh, ow) = p.kernel, p.out_hw
    cols = np.empty((c, r_, s_, b, oh, ow), xp.dtype)
    for r, s, rows, cs in _taps(p):
        cols[:, r, s] = xp[:, :, rows, cs].transpose(1, 0, 2, 3)
    return cols.reshape(p.groups, -1, b * oh * ow)


def _scatter_columns(dcols: np.ndarray, dxp: np.ndarray, p: ConvParams) -> None:
    """Adjoint of :func:`column_matrix`: add every column entry onto the pixel it read."""
    b, c = dxp.shape[:2]
    (r_, s_), (oh, ow) = p.kernel, p.out_hw
    taps = dcols.reshape(c, r_, s_, b, oh, ow)
    for r, s, rows, cs in _taps(p):
        dxp[:, :, rows, cs] += taps[:, r, s].transpose(1, 0, 2, 3)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams) -> np.ndarray:
    """y = W @ columns, per chunk of images; the GEMM output is already channel-major."""
    ct = _compute_dtype(x)
    k = p.w_shape[0]
    oh, ow = p.out_hw
    wg = w.astype(ct, copy=False).reshape(p.groups, k // p.groups, -1)  # (G, Kg, Cg*R*S)
    y = np.empty(p.y_shape, ct)
    for chunk in _chunks(p, np.dtype(ct).itemsize):
        xp = pad_input(x[chunk].astype(ct, copy=False), p.padding, (0, 0))
        yc = np.matmul(wg, column_matrix(xp, p))  # (G, Kg, B*OH*OW)
        y[chunk] = yc.reshape(k, -1, oh, ow).transpose(1, 0, 2, 3)
    if b is not None:
        y += b.astype(ct)[:, None, None]
    return y.astype(x.dtype, copy=False)


def conv2d_backward(x: np.ndarray, w: np.ndarray, dy: np.ndarray, p: ConvParams):
    """dW = dY @ columns^T and dcolumns = W^T @ dY per chunk of images; dx by scattering."""
    ct = _compute_dtype(x)
    n, c, h, w_ = p.x_shape
    k = p.w_shape[0]
    (top, bottom), (left, right) = p.padding
    wg = w.astype(ct, copy=False).reshape(p.groups, k // p.groups, -1)  # (G, Kg, L)
    dw = np.zeros(wg.shape, ct)
    dx = np.empty(p.x_shape, ct)
    for chunk in _chunks(p, np.dtype(ct).itemsize):
        xp = pad_input(x[chunk].astype(ct, copy=False), p.padding, (0, 0))
        dyc = dy[chunk].astype(ct, copy=False).transpose(1, 0, 2, 3).reshape(p.groups, k // p.groups, -1)
        dw += np.matmul(dyc, column_matrix(xp, p).transpose(0, 2, 1))
        dxp = np.zeros(xp.shape, ct)
        _scatter_columns(np.matmul(wg.transpose(0, 2, 1), dyc), dxp, p)
        dx[chunk] = dxp[:, :, top:top + h, left:left + w_]
    db = dy.astype(ct, copy=False).sum(axis=(0, 2, 3))
    dw = dw.reshape(p.w_shape)
    return dx.astype(x.dtype, copy=False), dw.astype(x.dtype, copy=False), db.astype(x.dtype)


def pool_windows(x: np.ndarray, p: PoolParams, value: float) -> np.ndarray:
    """(N, C, OH, OW, kh * kw) pooling windows of ``x`` padded with ``value``."""
    xp = pad_input(x, p.window_padding, (0, 0), value)
    view = window_view(xp, p.kernel, p.stride, p.dilation, p.out_hw)
    return view.reshape(*view.shape[:4], -1)


def scatter_windows(dwin: np.ndarray, p: PoolParams) -> np.ndarray:
    """Sum window gradients ``(N, C, OH, OW, kh * kw)`` back onto the unpadded input."""
    kh, kw = p.kernel
    cols = dwin.reshape(*dwin.shape[:4], kh, kw).transpose(0, 2, 3, 1, 4, 5)
    return col2im(cols.reshape(-1, p.x_shape[1] * kh * kw), p.x_shape, p.kernel, p.stride, p.padding,
                  p.dilation, p.out_hw)


def max_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    view = pool_windows(x, p, -np.inf)
    first = np.argmax(view, axis=-1)[..., None]  # first maximum; NaN counts as the maximum
    return np.take_along_axis(view, first, axis=-1)[..., 0]


def max_pool2d_backward(x: np.ndarray, dy: np.ndarray, p: PoolParams) -> np.ndarray:
    ct = _compute_dtype(x)
    view = pool_windows(x, p, -np.inf)
    first = np.argmax(view, axis=-1)
    dwin = (np.arange(view.shape[-1]) == first[..., None]) * dy.astype(ct)[..., None]
    return scatter_windows(dwin, p).astype(x.dtype)


def avg_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    ct = _compute_dtype(x)
    sums = pool_windows(x.astype(ct, copy=False), p, 0.0).sum(axis=-1)
    return (sums / pool_counts(p).astype(ct)).astype(x.dtype)


def avg_pool2d_backward(x: np.ndarray, dy: np.ndarray, p: PoolParams) -> np.ndarray:
    ct = _compute_dtype(x)
    share = dy.astype(ct) / pool_counts(p).astype(ct)
    dwin = np.broadcast_to(share[..., None], (*share.shape, p.kernel[0] * p.kernel[1]))
    return scatter_windows(dwin, p).astype(x.dtype)


class Im2col(Implementation):
    """Vectorised NumPy: im2col + GEMM forward, GEMM + col2im backward."""

    name = "im2col"
    devices = ("cpu",)
    dtypes = ("float64", "float32", "float16", "bfloat16")
    features = frozenset(FEATURES)

    def conv2d(self, x, w, b, params):
        return conv2d(x, w, b, params)

    def conv2d_backward(self, x, w, dy, params):
        return conv2d_backward(x, w, dy, params)

    def max_pool2d(self, x, params):
        return max_pool2d(x, params)

    def max_pool2d_backward(self, x, dy, params):
        return max_pool2d_backward(x, dy, params)

    def avg_pool2d(self, x, params):
        return avg_pool2d(x, params)

    def avg_pool2d_backward(self, x, dy, params):
        return avg_pool2d_backward(x, dy, params)
