"""An independent float64 reference for 2-D convolution and pooling (NCHW, cross-correlation).

Written from the contract's text only (no convcert code): direct loops over output
positions and kernel taps, vectorised over batch and channels with NumPy.

Geometry: padding ``((top, bottom), (left, right))``; effective kernel ``(k - 1) * d + 1``;
output ``floor((in + before + after - eff) / s) + 1``, or with ``ceil_mode`` the ceiling,
dropping a last window that would start in the bottom/right padding. Average pooling
divides by the taps inside the input (``count_include_pad=False``) or inside the padded
input (``True``; taps that ceil mode pushes past the padding never count). The max-pool
gradient goes to the first maximum of a window in row-major order.
"""

from __future__ import annotations

import math

import numpy as np


def out_size(n: int, k: int, s: int, before: int, after: int, d: int = 1, ceil: bool = False) -> int:
    eff = (k - 1) * d + 1
    span = n + before + after - eff
    if span < 0:
        raise ValueError("window larger than the padded input")
    if not ceil:
        return span // s + 1
    o = -(-span // s) + 1
    if (o - 1) * s >= n + before:  # last window would start in the bottom/right padding
        o -= 1
    return o


def same_padding(n: int, k: int, s: int, d: int = 1, lower: bool = False) -> tuple[int, int]:
    """TensorFlow / ONNX SAME_UPPER (odd pixel after) or SAME_LOWER (odd pixel before)."""
    eff = (k - 1) * d + 1
    total = max((math.ceil(n / s) - 1) * s + eff - n, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


# -- convolution -------------------------------------------------------------------
def conv2d(x, w, b, stride, padding, dilation, groups):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    (pt, pb), (pl, pr) = padding
    oh = out_size(h, r, stride[0], pt, pb, dilation[0])
    ow = out_size(wd, s, stride[1], pl, pr, dilation[1])
    kg = k // groups
    y = np.zeros((n, k, oh, ow))
    for g in range(groups):
        for i in range(oh):
            for j in range(ow):
                for a in range(r):
                    hi = i * stride[0] - pt + a * dilation[0]
                    if not 0 <= hi < h:
                        continue
                    for e in range(s):
                        wi = j * stride[1] - pl + e * dilation[1]
                        if not 0 <= wi < wd:
                            continue
                        xs = x[:, g * cg : (g + 1) * cg, hi, wi]  # (n, cg)
                        ws = w[g * kg : (g + 1) * kg, :, a, e]  # (kg, cg)
                        y[:, g * kg : (g + 1) * kg, i, j] += xs @ ws.T
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_backward(x, w, dy, stride, padding, dilation, groups):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    dy = np.asarray(dy, np.float64)
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    (pt, _), (pl, _) = padding
    _, _, oh, ow = dy.shape
    kg = k // groups
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for g in range(groups):
        for i in range(oh):
            for j in range(ow):
                d = dy[:, g * kg : (g + 1) * kg, i, j]  # (n, kg)
                for a in range(r):
                    hi = i * stride[0] - pt + a * dilation[0]
                    if not 0 <= hi < h:
                        continue
                    for e in range(s):
                        wi = j * stride[1] - pl + e * dilation[1]
                        if not 0 <= wi < wd:
                            continue
                        dx[:, g * cg : (g + 1) * cg, hi, wi] += d @ w[g * kg : (g + 1) * kg, :, a, e]
                        dw[g * kg : (g + 1) * kg, :, a, e] += d.T @ x[:, g * cg : (g + 1) * cg, hi, wi]
    return dx, dw, dy.sum(axis=(0, 2, 3))


# -- pooling -----------------------------------------------------------------------
def _windows(h, wd, kernel, stride, padding, dilation, ceil):
    """For each output (i, j): the in-input taps in row-major order and the divisor counts."""
    (pt, pb), (pl, pr) = padding
    oh = out_size(h, kernel[0], stride[0], pt, pb, dilation[0], ceil)
    ow = out_size(wd, kernel[1], stride[1], pl, pr, dilation[1], ceil)
    out = []
    for i in range(oh):
        row = []
        for j in range(ow):
            taps, padded = [], 0
            for a in range(kernel[0]):
                hi = i * stride[0] - pt + a * dilation[0]
                for e in range(kernel[1]):
                    wi = j * stride[1] - pl + e * dilation[1]
                    if -pt <= hi < h + pb and -pl <= wi < wd + pr:
                        padded += 1
                    if 0 <= hi < h and 0 <= wi < wd:
                        taps.append((hi, wi))
            row.append((taps, padded))
        out.append(row)
    return out


def max_pool2d(x, kernel, stride, padding, dilation=(1, 1), ceil=False):
    x = np.asarray(x, np.float64)
    win = _windows(x.shape[2], x.shape[3], kernel, stride, padding, dilation, ceil)
    y = np.empty(x.shape[:2] + (len(win), len(win[0])))
    for i, row in enumerate(win):
        for j, (taps, _) in enumerate(row):
            y[:, :, i, j] = np.max(np.stack([x[:, :, a, e] for a, e in taps]), axis=0)
    return y


def max_pool2d_backward(x, dy, kernel, stride, padding, dilation=(1, 1), ceil=False):
    x = np.asarray(x, np.float64)
    dy = np.asarray(dy, np.float64)
    n, c = x.shape[:2]
    dx = np.zeros_like(x)
    win = _windows(x.shape[2], x.shape[3], kernel, stride, padding, dilation, ceil)
    nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for i, row in enumerate(win):
        for j, (taps, _) in enumerate(row):
            vals = np.stack([x[:, :, a, e] for a, e in taps])  # (taps, n, c)
            first = np.argmax(vals, axis=0)  # argmax = first maximum
            ta = np.array([t[0] for t in taps])[first]
            te = np.array([t[1] for t in taps])[first]
            np.add.at(dx, (nn, cc, ta, te), dy[:, :, i, j])
    return dx


def avg_pool2d(x, kernel, stride, padding, dilation=(1, 1), ceil=False, count_include_pad=False):
    x = np.asarray(x, np.float64)
    win = _windows(x.shape[2], x.shape[3], kernel, stride, padding, dilation, ceil)
    y = np.empty(x.shape[:2] + (len(win), len(win[0])))
    for i, row in enumerate(win):
        for j, (taps, padded) in enumerate(row):
            total = sum(x[:, :, a, e] for a, e in taps)
            y[:, :, i, j] = total / (padded if count_include_pad else len(taps))
    return y


def avg_pool2d_backward(x, dy, kernel, stride, padding, dilation=(1, 1), ceil=False, count_include_pad=False):
    x = np.asarray(x, np.float64)
    dy = np.asarray(dy, np.float64)
    dx = np.zeros_like(x)
    win = _windows(x.shape[2], x.shape[3], kernel, stride, padding, dilation, ceil)
    for i, row in enumerate(win):
        for j, (taps, padded) in enumerate(row):
            share = dy[:, :, i, j] / (padded if count_include_pad else len(taps))
            for a, e in taps:
                dx[:, :, a, e] += share
    return dx
