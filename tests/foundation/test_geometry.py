"""Geometry against hand-worked cases, and the promised ValueErrors."""

import numpy as np
import pytest

from implementations import ConvParams, PoolParams, get
from implementations.geometry import output_size, pool_counts
from implementations.im2col import im2col
from implementations.validation import check_conv2d, check_tensor


def test_textbook_5x5_by_3x3_output_sizes_for_valid_same_full():
    sizes = {
        mode: ConvParams.create((1, 1, 5, 5), (1, 1, 3, 3), padding=mode).out_hw
        for mode in ("valid", "same", "full")
    }
    assert sizes == {"valid": (3, 3), "same": (5, 5), "full": (7, 7)}


def test_textbook_5x5_by_3x3_values_are_window_sums():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    w = np.ones((1, 1, 3, 3))
    p = ConvParams.create(x.shape, w.shape)
    # A 3x3 all-ones window sums to nine times its centre pixel, 5 * (i + 1) + (j + 1).
    expected = np.array([[9.0 * (5 * (i + 1) + (j + 1)) for j in range(3)] for i in range(3)])
    for name in ("naive", "im2col"):
        np.testing.assert_array_equal(get(name).conv2d(x, w, None, p)[0, 0], expected)


@pytest.mark.parametrize("x_shape, expected", [((1, 3, 7, 7), (9, 75)), ((10, 3, 7, 7), (90, 75))])
def test_im2col_column_shapes_match_the_textbook(x_shape, expected):
    p = ConvParams.create(x_shape, (4, 3, 5, 5))
    cols = im2col(np.zeros(x_shape), p.kernel, p.stride, p.padding, p.dilation)
    assert cols.shape == expected


def test_im2col_rows_are_windows_in_channel_row_column_order():
    x = np.arange(2 * 4 * 4, dtype=float).reshape(1, 2, 4, 4)
    cols = im2col(x, (2, 2))
    assert cols.shape == (9, 8)
    np.testing.assert_array_equal(cols[0], [0, 1, 4, 5, 16, 17, 20, 21])


def test_same_padding_puts_odd_pixel_bottom_right_for_even_kernels():
    p = ConvParams.create((1, 1, 5, 6), (1, 1, 2, 4), padding="same")
    assert p.padding == ((0, 1), (1, 2))
    assert p.out_hw == (5, 6)


def test_same_lower_puts_odd_pixel_top_left_like_onnx():
    p = ConvParams.create((1, 1, 5, 6), (1, 1, 2, 4), padding="same_lower")
    assert p.padding == ((1, 0), (2, 1))
    assert p.out_hw == (5, 6)


def test_same_with_stride_follows_tensorflow_ceil_of_input_over_stride():
    p = ConvParams.create((1, 1, 7, 10), (1, 1, 3, 3), stride=2, padding="same")
    assert p.out_hw == (4, 5)
    # TF: total = max((out - 1) * s + k - in, 0): H: 3*2+3-7 = 2, W: 4*2+3-10 = 1
    assert p.padding == ((1, 1), (0, 1))


def test_same_with_kernel_smaller_than_stride_needs_no_padding_or_one_pixel():
    # H: in 6, k 1, s 3 -> out 2, total max(3 + 1 - 6, 0) = 0.
    # W: in 7, k 2, s 3 -> out 3, total max(6 + 2 - 7, 0) = 1, on the right.
    p = ConvParams.create((1, 1, 6, 7), (1, 1, 1, 2), stride=3, padding="same")
    assert p.padding == ((0, 0), (0, 1))
    assert p.out_hw == (2, 3)


def test_same_uses_the_dilated_kernel_extent():
    p = ConvParams.create((1, 1, 8, 8), (1, 1, 3, 3), padding="same", dilation=2)
    assert p.eff_kernel == (5, 5)
    assert p.padding == ((2, 2), (2, 2))


def test_full_pads_effective_kernel_minus_one_on_every_side():
    p = ConvParams.create((1, 1, 4, 4), (1, 1, 2, 3), padding="full", dilation=(1, 2))
    assert p.padding == ((1, 1), (4, 4))
    assert p.out_hw == (5, 8)


def test_padding_specs_int_pair_and_pairs_resolve_to_explicit_pairs():
    shapes = ((1, 1, 6, 6), (1, 1, 3, 3))
    assert ConvParams.create(*shapes, padding=1).padding == ((1, 1), (1, 1))
    assert ConvParams.create(*shapes, padding=(1, 2)).padding == ((1, 1), (2, 2))
    p = ConvParams.create(*shapes, padding=((0, 1), (2, 0)))
    assert p.padding == ((0, 1), (2, 0)) and p.padding_mode == "explicit" and not p.is_symmetric


def test_output_size_floor_rule_with_stride_and_padding():
    assert output_size(7, 1, 1, 3, 2) == 4  # floor((7 + 2 - 3) / 2) + 1
    assert output_size(8, 0, 0, 3, 3) == 2


def test_ceil_mode_adds_a_partial_last_window():
    p = PoolParams.create((1, 1, 5, 5), kernel=2, stride=2, ceil_mode=True)
    assert p.out_hw == (3, 3)
    assert PoolParams.create((1, 1, 5, 5), kernel=2, stride=2).out_hw == (2, 2)


def test_ceil_mode_drops_a_last_window_that_would_start_in_the_padding():
    # in 5, k 2, s 2, pad 1: ceil((5 + 2 - 2) / 2) + 1 = 4, but window 4 starts at
    # padded index 6 = in + pad_before, inside the bottom padding, so it is dropped.
    p = PoolParams.create((1, 1, 5, 5), kernel=2, stride=2, padding=1, ceil_mode=True)
    assert p.out_hw == (3, 3)


def test_ceil_mode_sizes_match_torch():
    torch = pytest.importorskip("torch")
    for size, k, s, pad in [(5, 2, 2, 1), (6, 3, 2, 1), (7, 3, 3, 1), (9, 4, 3, 2), (1, 2, 2, 1)]:
        x = torch.zeros(1, 1, size, size)
        expected = torch.nn.functional.max_pool2d(x, k, s, pad, ceil_mode=True).shape[2:]
        assert PoolParams.create(x.shape, k, s, pad, ceil_mode=True).out_hw == tuple(expected)


def test_pool_stride_defaults_to_kernel():
    assert PoolParams.create((1, 1, 8, 8), kernel=(2, 4)).stride == (2, 4)


def test_padded_extent_covers_ceil_mode_overhang():
    p = PoolParams.create((1, 1, 5, 5), kernel=2, stride=2, ceil_mode=True)
    assert p.padded_extent == (6, 6)


def test_pool_counts_exclude_padding_and_never_count_ceil_mode_overhang():
    # 5 rows, kernel 2, stride 2, padding 1, ceil_mode: windows [pad, x0], [x1, x2], [x3, x4]
    # and, overhanging, nothing more; 4 columns, kernel 3, stride 3, no padding, ceil_mode:
    # windows [x0..x2] and [x3, overhang, overhang].
    p = PoolParams.create((1, 1, 5, 4), kernel=(2, 3), stride=(2, 3), padding=((1, 1), (0, 0)),
                          ceil_mode=True)
    assert p.out_hw == (3, 2)
    np.testing.assert_array_equal(pool_counts(p), np.outer([1, 2, 2], [3, 1]))
    q = PoolParams.create((1, 1, 5, 4), kernel=(2, 3), stride=(2, 3), padding=((1, 1), (0, 0)),
                          ceil_mode=True, count_include_pad=True)
    np.testing.assert_array_equal(pool_counts(q), np.outer([2, 2, 2], [3, 1]))


def test_dilated_pool_output_sizes_match_torch():
    torch = pytest.importorskip("torch")
    for size, k, s, pad, d, ceil in [(7, 2, 1, 0, 2, False), (9, 3, 2, 1, 2, False), (8, 2, 2, 1, 2, True),
                                     (10, 3, 3, 1, 3, True), (6, 2, 1, 1, 4, False)]:
        x = torch.zeros(1, 1, size, size)
        expected = torch.nn.functional.max_pool2d(x, k, s, pad, d, ceil_mode=ceil).shape[2:]
        p = PoolParams.create(x.shape, k, s, pad, d, ceil_mode=ceil)
        assert p.out_hw == tuple(expected), (size, k, s, pad, d, ceil)
        assert p.eff_kernel == ((k - 1) * d + 1,) * 2


def test_dilated_pool_counts_skip_the_gaps():
    # 5 columns, kernel 2, dilation 3, padding 1 each side, count_include_pad off: windows
    # read padded columns (0, 3), (1, 4), (2, 5), (3, 6): inside are columns 1..5.
    p = PoolParams.create((1, 1, 1, 5), (1, 2), stride=1, padding=((0, 0), (1, 1)), dilation=(1, 3))
    np.testing.assert_array_equal(pool_counts(p), [[1, 2, 2, 1]])


def test_dilated_window_reading_only_padding_is_refused():
    # input 2 wide, padding 2, kernel 2 dilated by 4: the first window reads columns 0 and 4
    # of the padded axis, both padding.
    with pytest.raises(ValueError, match=r"window 0 on axis 3 reads only padding"):
        PoolParams.create((1, 1, 3, 2), (1, 2), stride=1, padding=((0, 0), (2, 2)), dilation=(1, 4))


def test_pool_counts_match_torch_divisors():
    torch = pytest.importorskip("torch")
    for include in (False, True):
        p = PoolParams.create((1, 1, 7, 6), kernel=3, stride=2, padding=1, ceil_mode=True,
                              count_include_pad=include)
        ones = torch.ones(1, 1, 7, 6, dtype=torch.float64)
        means = torch.nn.functional.avg_pool2d(ones, 3, 2, 1, ceil_mode=True, count_include_pad=include)
        sums = torch.nn.functional.avg_pool2d(ones, 3, 2, 1, ceil_mode=True, divisor_override=1)
        np.testing.assert_allclose(pool_counts(p), (sums / means)[0, 0].numpy())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(x_shape=(1, 4, 5, 5), w_shape=(2, 3, 3, 3)), r"w\.shape\[1\]=3 must equal C // groups"),
        (dict(x_shape=(1, 4, 5, 5), w_shape=(6, 2, 3, 3), groups=3),
         r"groups=3: must divide the input channels C=4"),
        (dict(x_shape=(1, 4, 5, 5), w_shape=(3, 2, 3, 3), groups=2),
         r"groups=2: must divide the output channels K=3"),
        (dict(x_shape=(1, 1, 5, 5), w_shape=(1, 1, 3, 3), stride=0),
         r"stride=\(0, 0\): every entry must be >= 1"),
        (dict(x_shape=(1, 1, 5, 5), w_shape=(1, 1, 3, 3), dilation=(1, 0)), r"dilation=\(1, 0\)"),
        (dict(x_shape=(1, 1, 5, 5), w_shape=(1, 1, 3, 3), padding=-1),
         r"padding=\(-1, -1\): every entry must be >= 0"),
        (dict(x_shape=(1, 1, 5, 5), w_shape=(1, 1, 3, 3), padding=((0, -2), (0, 0))), r"padding"),
        (dict(x_shape=(1, 1, 2, 5), w_shape=(1, 1, 3, 3)), r"output \(0, 3\) would be empty"),
        (dict(x_shape=(1, 1, 5, 5), w_shape=(1, 1, 3, 3), dilation=3), r"would be empty"),
        (dict(x_shape=(1, 5, 5), w_shape=(1, 1, 3, 3)),
         r"x_shape=\(1, 5, 5\): must have 4 integer dimensions, got 3"),
        (dict(x_shape=(1, 1, 5, 5), w_shape=(1, 1, 3, 3), padding="sam"),
         r"padding='sam': a padding string must be one of"),
        (dict(x_shape=(1, 1, 5, 5), w_shape=(1, 1, 3, 3), groups=0), r"groups=0: must be a positive int"),
        (dict(x_shape=(1, 1, 5, 5), w_shape=(1, 1, 3, 3), stride=1.5),
         r"stride=1.5: must be an int or a pair"),
    ],
)
def test_bad_conv_geometry_raises_value_error_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvParams.create(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(x_shape=(1, 1, 5, 5), kernel=2, padding=2), r"must be smaller than the kernel 2"),
        (dict(x_shape=(1, 1, 5, 5), kernel=0), r"kernel=\(0, 0\)"),
        (dict(x_shape=(1, 1, 5, 5), kernel=6), r"would be empty"),
        (dict(x_shape=(1, 1, 5, 5), kernel=2, ceil_mode="yes"), r"ceil_mode='yes': must be a bool"),
    ],
)
def test_bad_pool_geometry_raises_value_error_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PoolParams.create(**kwargs)


def test_integer_arrays_are_rejected_with_the_dtype_named():
    with pytest.raises(ValueError, match=r"x\.dtype=int64: must be one of"):
        check_tensor("x", np.zeros((1, 1, 3, 3), dtype=np.int64), (1, 1, 3, 3))


def test_conv_arrays_must_match_the_resolved_shapes_and_each_others_dtype():
    p = ConvParams.create((1, 2, 4, 4), (3, 2, 3, 3))
    x, w = np.zeros(p.x_shape), np.zeros(p.w_shape, np.float32)
    with pytest.raises(ValueError, match=r"w\.dtype=float32: must equal x\.dtype=float64"):
        check_conv2d(x, w, None, p)
    with pytest.raises(ValueError, match=r"b\.shape=\(2,\): the params need \(3,\)"):
        check_conv2d(x, w.astype(np.float64), np.zeros(2), p)


def test_params_are_frozen_and_hashable():
    p = ConvParams.create((1, 1, 5, 5), (1, 1, 3, 3))
    assert hash(p) == hash(ConvParams.create((1, 1, 5, 5), (1, 1, 3, 3)))
    with pytest.raises(AttributeError):
        p.groups = 2  # type: ignore[misc]
