"""A gallery of deliberately wrong implementations: proof that the suite has teeth.

Each mutant wraps ``im2col`` and breaks one thing, the way real implementations break.
:data:`GALLERY` lists them with the feature certification must name when it rejects them;
``tests/conformance/test_mutants.py`` certifies every one. :data:`LEGAL` lists variants
that look suspicious but are correct under the contract's error model and must pass.

Every class here loads by spec, e.g. ``python -m conformance certify
conformance.mutants:KernelFlipped``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from implementations import im2col as base
from implementations.geometry import PoolParams
from implementations.im2col import Im2col


def _swap_sides(padding):
    return tuple((b, a) for a, b in padding)


class Mutant(Im2col):
    """Base of the gallery: im2col under another name, on float64 and float32 (and halves)."""

    name = "mutant"


class KernelFlipped(Mutant):
    """Computes true convolution (kernel rotated 180 degrees) instead of cross-correlation."""

    name = "mutant-kernel-flipped"

    def conv2d(self, x, w, b, params):
        return base.conv2d(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, params)


class SameOddPixelWrongSide(Mutant):
    """``"same"`` puts the odd padding pixel top/left (it belongs bottom/right)."""

    name = "mutant-same-odd-pixel-top-left"

    def _fix(self, params):
        if params.padding_mode == "same":
            params = dataclasses.replace(params, padding=_swap_sides(params.padding))
        return params

    def conv2d(self, x, w, b, params):
        return base.conv2d(x, w, b, self._fix(params))

    def max_pool2d(self, x, params):
        return base.max_pool2d(x, self._fix(params))


class StrideOffByOne(Mutant):
    """Windows advance by ``stride - 1`` (output cropped to the right shape)."""

    name = "mutant-stride-off-by-one"

    def conv2d(self, x, w, b, params):
        if params.stride == (1, 1):
            return base.conv2d(x, w, b, params)
        wrong = dataclasses.replace(params, stride=tuple(max(s - 1, 1) for s in params.stride))
        oh, ow = params.out_hw
        return np.ascontiguousarray(base.conv2d(x, w, b, wrong)[:, :, :oh, :ow])


class DilationIgnored(Mutant):
    """Reads a dense window whatever the dilation (output cropped to the right shape)."""

    name = "mutant-dilation-ignored"

    def conv2d(self, x, w, b, params):
        if params.dilation == (1, 1):
            return base.conv2d(x, w, b, params)
        oh, ow = params.out_hw
        undilated = base.conv2d(x, w, b, dataclasses.replace(params, dilation=(1, 1)))
        return np.ascontiguousarray(undilated[:, :, :oh, :ow])


class GroupsMixed(Mutant):
    """Group g reads the input channels of group g + 1."""

    name = "mutant-groups-mixed"

    def conv2d(self, x, w, b, params):
        if params.groups == 1:
            return base.conv2d(x, w, b, params)
        return base.conv2d(np.roll(x, -params.w_shape[1], axis=1), w, b, params)


class BiasGradAveraged(Mutant):
    """db is averaged over the batch instead of summed."""

    name = "mutant-bias-grad-averaged"

    def conv2d_backward(self, x, w, dy, params):
        dx, dw, db = base.conv2d_backward(x, w, dy, params)
        return dx, dw, (db.astype(np.float64) / x.shape[0]).astype(x.dtype)


class DwFirstSampleOnly(Mutant):
    """dw accumulates the first sample of the batch only."""

    name = "mutant-dw-first-sample"

    def conv2d_backward(self, x, w, dy, params):
        dx, _, db = base.conv2d_backward(x, w, dy, params)
        one = dataclasses.replace(params, x_shape=(1, *params.x_shape[1:]))
        _, dw, _ = base.conv2d_backward(x[:1], w, dy[:1], one)
        return dx, dw, db


class MaxPoolGradToAllTies(Mutant):
    """The max-pool gradient goes to every tied maximum (it belongs to the first)."""

    name = "mutant-maxpool-grad-all-ties"

    def max_pool2d_backward(self, x, dy, params):
        view = base.pool_windows(x.astype(np.float64), params, -np.inf)
        hits = view == view.max(axis=-1, keepdims=True)
        dwin = hits * dy.astype(np.float64)[..., None]
        return base.scatter_windows(dwin, params).astype(x.dtype)


class MaxPoolGradToLastTie(Mutant):
    """The max-pool gradient goes to the last tied maximum (a ``>=`` scan)."""

    name = "mutant-maxpool-grad-last-tie"

    def max_pool2d_backward(self, x, dy, params):
        view = base.pool_windows(x.astype(np.float64), params, -np.inf)
        last = view.shape[-1] - 1 - np.argmax(view[..., ::-1], axis=-1)
        dwin = (np.arange(view.shape[-1]) == last[..., None]) * dy.astype(np.float64)[..., None]
        return base.scatter_windows(dwin, params).astype(x.dtype)


class BiasIgnored(Mutant):
    """Forgets to add the bias."""

    name = "mutant-bias-ignored"

    def conv2d(self, x, w, b, params):
        return base.conv2d(x, w, None, params)


class CountIncludePadInverted(Mutant):
    """Average pooling reads ``count_include_pad`` the wrong way round."""

    name = "mutant-count-include-pad-inverted"

    def _flip(self, params):
        return dataclasses.replace(params, count_include_pad=not params.count_include_pad)

    def avg_pool2d(self, x, params):
        return base.avg_pool2d(x, self._flip(params))

    def avg_pool2d_backward(self, x, dy, params):
        return base.avg_pool2d_backward(x, dy, self._flip(params))


class CountIncludePadIgnored(Mutant):
    """Average pooling never counts the padding, whatever ``count_include_pad`` says."""

    name = "mutant-count-include-pad-ignored"

    def _drop(self, params):
        return dataclasses.replace(params, count_include_pad=False)

    def avg_pool2d(self, x, params):
        return base.avg_pool2d(x, self._drop(params))

    def avg_pool2d_backward(self, x, dy, params):
        return base.avg_pool2d_backward(x, dy, self._drop(params))


class CeilModeIgnored(Mutant):
    """Pooling always rounds the output size down."""

    name = "mutant-ceil-mode-ignored"

    def max_pool2d(self, x, params):
        return base.max_pool2d(x, dataclasses.replace(params, ceil_mode=False))

    def avg_pool2d(self, x, params):
        return base.avg_pool2d(x, dataclasses.replace(params, ceil_mode=False))


class InputModifiedInPlace(Mutant):
    """Applies a ReLU to its input in place after the convolution."""

    name = "mutant-input-modified"

    def conv2d(self, x, w, b, params):
        y = base.conv2d(x, w, b, params)
        np.maximum(x, 0, out=x)
        return y


class KernelHWSwapped(Mutant):
    """Reads the kernel as (K, C, S, R): height and width swapped."""

    name = "mutant-kernel-hw-swapped"

    def conv2d(self, x, w, b, params):
        swapped = np.ascontiguousarray(w.transpose(0, 1, 3, 2))
        wrong = dataclasses.replace(params, w_shape=swapped.shape)
        return base.conv2d(x, swapped, b, wrong)


class DxIgnoresStride(Mutant):
    """dx treats dy as if the forward pass had stride 1 (dy not spread by the stride)."""

    name = "mutant-dx-ignores-stride"

    def conv2d_backward(self, x, w, dy, params):
        dx, dw, db = base.conv2d_backward(x, w, dy, params)
        if params.stride == (1, 1):
            return dx, dw, db
        dense = dataclasses.replace(params, stride=(1, 1))
        placed = np.zeros((*dy.shape[:2], *dense.out_hw), dy.dtype)
        placed[:, :, :dy.shape[2], :dy.shape[3]] = dy
        wrong_dx, _, _ = base.conv2d_backward(x, w, placed, dense)
        return wrong_dx, dw, db


class FullPaddingOffByOne(Mutant):
    """``"full"`` pads ``eff_k - 2`` instead of ``eff_k - 1`` on every side."""

    name = "mutant-full-padding-off-by-one"

    def conv2d(self, x, w, b, params):
        if params.padding_mode != "full":
            return base.conv2d(x, w, b, params)
        pad = tuple((max(k - 2, 0),) * 2 for k in params.eff_kernel)
        return base.conv2d(x, w, b, dataclasses.replace(params, padding=pad))


class AvgDividesByKernelArea(Mutant):
    """Average pooling always divides by the window area, padding or not."""

    name = "mutant-avg-divides-by-area"

    def avg_pool2d(self, x, params):
        return base.avg_pool2d(x, dataclasses.replace(params, count_include_pad=True))


class MaxPoolPadsWithZero(Mutant):
    """Max pooling pads with 0 instead of -inf (wrong when a border window is all negative)."""

    name = "mutant-maxpool-zero-padding"

    def max_pool2d(self, x, params):
        xp = base.pad_input(x, params.padding, params.padded_extent, 0.0)
        view = base.window_view(xp, params.kernel, params.stride, (1, 1), params.out_hw)
        return np.ascontiguousarray(view.max(axis=(-2, -1)))


class CeilModeNoDrop(Mutant):
    """ceil_mode keeps a last window that starts inside the padding (it must be dropped)."""

    name = "mutant-ceil-mode-no-drop"

    @staticmethod
    def _shape(params: PoolParams):
        if not params.ceil_mode:
            return params.out_hw
        return tuple(-(-(n + a + b - k) // s) + 1 for n, (a, b), k, s in
                     zip(params.x_shape[2:], params.padding, params.kernel, params.stride, strict=True))

    def max_pool2d(self, x, params):
        out = self._shape(params)
        if out == params.out_hw:
            return base.max_pool2d(x, params)
        cls = type("Undropped", (PoolParams,), {"out_hw": property(lambda _s: out)})
        fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
        return base.max_pool2d(x, cls(**fields))


class ReturnsFloat64(Mutant):
    """Returns float64 whatever the input dtype."""

    name = "mutant-returns-float64"

    def conv2d(self, x, w, b, params):
        return base.conv2d(x.astype(np.float64), w.astype(np.float64),
                           None if b is None else b.astype(np.float64), params)


class Float32InFloat16(Mutant):
    """Computes float32 convolutions in float16 without declaring reduced precision."""

    name = "mutant-float32-in-float16"

    def conv2d(self, x, w, b, params):
        if x.dtype != np.float32:
            return base.conv2d(x, w, b, params)
        h = base.conv2d(x.astype(np.float16), w.astype(np.float16),
                        None if b is None else b.astype(np.float16), params)
        return h.astype(np.float32)


def _round_tf32(a: np.ndarray) -> np.ndarray:
    """Round float32 to TF32 (10 explicit significand bits), to nearest even."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    lsb = (bits >> 13) & 1
    return ((bits + 0xFFF + lsb) & np.uint32(0xFFFFE000)).view(np.float32)


class UndeclaredTF32(Mutant):
    """Rounds float32 inputs to TF32 (as tensor cores do) without declaring it."""

    name = "mutant-undeclared-tf32"

    def conv2d(self, x, w, b, params):
        if x.dtype == np.float32:
            x, w = _round_tf32(x), _round_tf32(w)
        return base.conv2d(x, w, b, params)


class DeclaredTF32(UndeclaredTF32):
    """The same TF32 arithmetic, declared: judged at TF32 precision, so it must pass."""

    name = "legal-declared-tf32"
    reduced_precision = {"float32": "tf32"}


class Float16Accumulator(Mutant):
    """float16 convolution accumulated tap by tap in float16, declared: legal, must pass."""

    name = "legal-float16-accumulator"
    reduced_precision = {"float16": "float16"}

    def conv2d(self, x, w, b, params):
        if x.dtype != np.float16:
            return base.conv2d(x, w, b, params)
        cols = base.im2col(x, params.kernel, params.stride, params.padding, params.dilation, params.out_hw)
        n, k = params.y_shape[:2]
        oh, ow = params.out_hw
        g, kg, cg = params.groups, k // params.groups, params.w_shape[1]
        taps = cg * params.kernel[0] * params.kernel[1]
        wm = w.reshape(g, kg, taps)
        y = np.zeros((cols.shape[0], k), np.float16)
        for grp in range(g):
            for t in range(taps):
                col = cols[:, grp * taps + t][:, None]
                y[:, grp * kg:(grp + 1) * kg] += col * wm[grp, :, t][None, :]
        if b is not None:
            y += b
        return y.reshape(n, oh, ow, k).transpose(0, 3, 1, 2).copy()


# -- bugs that only show past the tile and chunk boundaries of real kernels --------------
#: Output-pixel tile, reduction chunk, split-K threshold and channel tile of the mutants below.
TILE_PIXELS, CHUNK, SPLIT_K_FROM, SPLIT_K, TILE_CHANNELS = 256, 64, 512, 4, 128


def _gemm(x, w, b, params, taps: slice | None = None, split: int = 1):
    """im2col convolution as one GEMM per group, over ``taps`` of the reduction only, or
    summing only the first ``split - 1`` of ``split`` chunks of it (``y`` is ``(G, Kg, N*OH*OW)``)."""
    ct = base._compute_dtype(x)
    cols = base.column_matrix(base.pad_input(x.astype(ct), params.padding, (0, 0)), params)
    wg = w.astype(ct).reshape(params.groups, params.w_shape[0] // params.groups, -1)
    length = wg.shape[-1]
    if split > 1:
        bounds = np.linspace(0, length, split + 1).astype(int)
        taps = slice(0, int(bounds[-2]))  # the last chunk's partial sum is never added
    taps = taps or slice(0, length)
    y = np.matmul(wg[:, :, taps], cols[:, taps])
    if b is not None:
        y = y + b.astype(ct).reshape(params.groups, -1, 1)
    return y


def _to_nchw(y, params, dtype):
    n, k, oh, ow = params.y_shape
    return np.ascontiguousarray(y.reshape(k, n, oh, ow).transpose(1, 0, 2, 3)).astype(dtype)


class TileTailLost(Mutant):
    """Drops the partial last tile of 256 output pixels (N*OH*OW) once there is a full one."""

    name = "mutant-tile-tail-lost"

    def conv2d(self, x, w, b, params):
        y = _gemm(x, w, b, params)
        pixels = y.shape[-1]
        if pixels > TILE_PIXELS:
            y[..., pixels - pixels % TILE_PIXELS:] = 0
        return _to_nchw(y, params, x.dtype)


class ReductionTailLost(Mutant):
    """Sums the reduction in chunks of 64 terms and forgets the partial last chunk."""

    name = "mutant-reduction-tail-lost"

    def conv2d(self, x, w, b, params):
        length = params.w_shape[1] * params.kernel[0] * params.kernel[1]
        kept = length - length % CHUNK if length > CHUNK else length
        return _to_nchw(_gemm(x, w, b, params, taps=slice(0, kept)), params, x.dtype)


class SplitKChunkLost(Mutant):
    """Splits reductions of 512 terms or more in 4 (split-K) and never adds the last partial sum."""

    name = "mutant-split-k-chunk-lost"

    def conv2d(self, x, w, b, params):
        length = params.w_shape[1] * params.kernel[0] * params.kernel[1]
        split = SPLIT_K if length >= SPLIT_K_FROM else 1
        return _to_nchw(_gemm(x, w, b, params, split=split), params, x.dtype)


class ChannelTileWrongWeights(Mutant):
    """The second tile of 128 output channels reads the weights one channel too early."""

    name = "mutant-channel-tile-wrong-weights"

    def conv2d(self, x, w, b, params):
        if params.w_shape[0] > TILE_CHANNELS:
            w = w.copy()
            w[TILE_CHANNELS:] = w[TILE_CHANNELS - 1:-1].copy()
        return base.conv2d(x, w, b, params)


class UndeclaredFloat16Accumulator(Float16Accumulator):
    """The float16 accumulator above without declaring it: judged at float32 accumulation, fails."""

    name = "mutant-undeclared-float16-accumulator"
    reduced_precision: dict[str, str] = {}


class MaxPoolGradToColumnMajorFirstTie(Mutant):
    """The max-pool gradient goes to the first tied maximum in column-major order (an NHWC-style
    scan down the columns): right without ties, wrong where a tie spans two columns."""

    name = "mutant-maxpool-grad-column-major-tie"

    def max_pool2d_backward(self, x, dy, params):
        view = base.pool_windows(x.astype(np.float64), params, -np.inf)
        kh, kw = params.kernel
        column_major = view.reshape(*view.shape[:-1], kh, kw).swapaxes(-1, -2).reshape(view.shape)
        first = np.argmax(column_major, axis=-1)
        row, col = first % kh, first // kh
        dwin = (np.arange(kh * kw) == (row * kw + col)[..., None]) * dy.astype(np.float64)[..., None]
        return base.scatter_windows(dwin, params).astype(x.dtype)


class DilatedWindowFitKD(Mutant):
    """Refuses (raises) dilated windows whose ``k * d`` exceeds the padded input, a third-party
    library's window-fit check: the window really spans ``(k - 1) * d + 1``."""

    name = "mutant-dilated-window-fit-k-times-d"

    def conv2d(self, x, w, b, params):
        padded = [n + a + z for n, (a, z) in zip(params.x_shape[2:], params.padding, strict=True)]
        if any(k * d > n for k, d, n in zip(params.kernel, params.dilation, padded, strict=True)):
            raise ValueError(f"kernel {params.kernel} with dilation {params.dilation} does not fit {padded}")
        return base.conv2d(x, w, b, params)


class CountIncludePadIgnoredWhenAsymmetric(Mutant):
    """Average pooling drops ``count_include_pad`` where the padding is asymmetric (a divisor
    bug of one real library): only the two options together are wrong, never stride."""

    name = "mutant-count-include-pad-ignored-when-asymmetric"

    def _drop(self, params):
        return dataclasses.replace(params, count_include_pad=params.count_include_pad and params.is_symmetric)

    def avg_pool2d(self, x, params):
        return base.avg_pool2d(x, self._drop(params))

    def avg_pool2d_backward(self, x, dy, params):
        return base.avg_pool2d_backward(x, dy, self._drop(params))


class AvgPoolFloat16Rounding(Mutant):
    """Average pooling of float16 sums its windows tap by tap in float16 and divides in float16,
    without declaring reduced precision: right in form, off by rounding, on some data more than
    the float32-accumulation bound allows (as TensorFlow's CPU half-precision pooling is). Its
    failures depend on the data, never on an option: blame must not pin them on ``stride``."""

    name = "mutant-avg-pool-float16-rounding"

    def avg_pool2d(self, x, params):
        if x.dtype != np.float16:
            return base.avg_pool2d(x, params)
        windows = base.pool_windows(x, params, 0.0)
        sums = np.zeros(windows.shape[:-1], np.float16)
        for t in range(windows.shape[-1]):
            sums += windows[..., t]
        return (sums / base.pool_counts(params).astype(np.float16)).astype(np.float16)


#: (mutant, the feature certification must name); each docstring says what it breaks.
GALLERY: tuple[tuple[type[Mutant], str], ...] = (
    (KernelFlipped, "conv2d"),
    (SameOddPixelWrongSide, "asymmetric_padding"),
    (StrideOffByOne, "stride"),
    (DilationIgnored, "dilation"),
    (GroupsMixed, "groups"),
    (BiasGradAveraged, "conv2d_backward"),
    (DwFirstSampleOnly, "conv2d_backward"),
    (MaxPoolGradToAllTies, "max_pool2d_backward"),
    (MaxPoolGradToLastTie, "max_pool2d_backward"),
    (BiasIgnored, "conv2d"),
    # inverted, the default rule (padding not counted) is wrong too: the operation is to blame
    (CountIncludePadInverted, "avg_pool2d"),
    (CountIncludePadIgnored, "count_include_pad"),
    (CeilModeIgnored, "ceil_mode"),
    (InputModifiedInPlace, "conv2d"),
    (KernelHWSwapped, "conv2d"),
    (DxIgnoresStride, "stride"),
    (FullPaddingOffByOne, "conv2d"),
    (AvgDividesByKernelArea, "avg_pool2d"),
    (MaxPoolPadsWithZero, "max_pool2d"),
    (CeilModeNoDrop, "ceil_mode"),
    (ReturnsFloat64, "conv2d"),
    (Float32InFloat16, "conv2d"),
    (UndeclaredTF32, "conv2d"),
    (DilatedWindowFitKD, "dilation"),
    (CountIncludePadIgnoredWhenAsymmetric, "count_include_pad"),
)

#: Mutants right on every toy shape: (mutant, feature blamed, words its diagnosis must contain).
SCALE_GALLERY: tuple[tuple[type[Mutant], str, str], ...] = (
    (TileTailLost, "conv2d", "partial tile"),
    (ReductionTailLost, "conv2d", "reduction"),
    (SplitKChunkLost, "conv2d", "reduction"),
    (ChannelTileWrongWeights, "conv2d", "channel"),
    (UndeclaredFloat16Accumulator, "conv2d", "float16"),
    (MaxPoolGradToColumnMajorFirstTie, "max_pool2d_backward", "ties"),
)

#: Variants that are correct under the error model and must certify clean.
LEGAL: tuple[type[Mutant], ...] = (DeclaredTF32, Float16Accumulator)
