"""benchdnn descriptors: benchdnn's defaults and conventions, labels, comments, the negative
end padding rule, and the errors for malformed input."""

from __future__ import annotations

import pytest

from implementations import benchdnn
from implementations.benchdnn import parse
from implementations.geometry import ConvParams, PoolParams


def test_defaults_are_benchdnns_mb2_g1_stride1_padding0_and_square():
    d = parse("ic3ih5oc4kh3")
    assert (d.kind, d.mb, d.groups, d.stride, d.dilation) == ("conv", 2, 1, (1, 1), (1, 1))
    assert (d.in_hw, d.kernel, d.out_hw, d.padding) == ((5, 5), (3, 3), (3, 3), ((0, 0), (0, 0)))
    p = d.params()
    assert isinstance(p, ConvParams) and p.w_shape == (4, 3, 3, 3)


def test_resnet_stem_padding_and_derived_end_padding():
    d = parse('mb1ic3ih224oc64oh112kh7sh2ph3n"resnet_50:conv1"')
    assert d.padding == ((3, 2), (3, 2))  # (112 - 1) * 2 - 224 + 7 - 3 = 2 at the end
    p = d.params()
    assert isinstance(p, ConvParams) and p.y_shape == (1, 64, 112, 112)


def test_padding_deduced_from_the_output_size_divides_as_c_does():
    assert parse("mb1ic8ih14oc8oh14kh3").padding[0] == (1, 1)
    assert benchdnn._cdiv(-3, 2) == -1  # C truncates toward zero; Python's // would give -2
    d = parse("mb1ic1ih5oc1oh1kh2sh2")  # ((1 - 1) * 2 - 5 + 2) / 2 = -3 / 2 -> -1
    assert d.padding[0][0] == -1
    with pytest.raises(ValueError, match="begin padding ph=-1 is negative"):
        d.params()


def test_dilation_counts_gaps_dh0_is_no_dilation():
    assert parse("ic1ih7oc1kh3dh0").dilation == (1, 1)
    d = parse("ic1ih7oc1kh3dh1")
    assert d.dilation == (2, 2) and d.out_hw == (3, 3)  # span (3 - 1) * 2 + 1 = 5
    assert d.params().eff_kernel == (5, 5)


def test_dilated_pooling_descriptor_from_benchdnns_shapes_2d():
    d = parse("mb1ic8_ih3oh3_kh3ph1_dh2dw2")
    assert d.kind == "pool" and d.dilation == (3, 3)
    p = d.params()
    assert isinstance(p, PoolParams)
    assert p.padding == ((1, 5), (1, 5)) and p.out_hw == (3, 3) and p.eff_kernel == (7, 7)


def test_labels_comments_blank_lines_and_several_descriptors_per_line():
    lines = ["# a comment", "", 'mb1ic2ih4oc2kh3n"net:a"  ic2ih4oc2kh1 # trailing comment', "   "]
    first, second = benchdnn.parse_lines(lines, "f")
    assert (first.name, first.label, first.where) == ("net:a", "net:a", "f:3")
    assert (second.name, second.label, second.mb) == ("", "ic2ih4oc2kh1", 2)


def test_underscores_are_ignored_and_w_entries_override_the_square_copy():
    d = parse("mb2_ic35_iw42ih20_ow14oh17_kw3kh4_sw3sh1", kind="pool")
    assert (d.in_hw, d.out_hw, d.kernel, d.stride) == ((20, 42), (17, 14), (4, 3), (1, 3))


def test_w_only_descriptor_is_one_dimensional():
    d = parse("ic4iw9oc2kw3")
    assert d.in_hw == (1, 9) and d.kernel == (1, 3) and d.out_hw == (1, 7)


def test_negative_end_padding_is_clamped_where_no_window_reads_the_dropped_rows():
    d = parse('g1mb50ic256ih56iw56oc512oh28ow28kh1kw1sh2sw2ph0pw0n"resnet_50:res3a_branch1"')
    assert d.padding == ((0, -1), (0, -1))
    assert d.convcert_padding() == ((0, 0), (0, 0))
    assert d.params(batch=1).out_hw == (28, 28)


def test_negative_end_padding_is_refused_where_a_window_would_read_the_dropped_rows():
    d = parse("mb1ic1_ih32oh6kh6sh6ph2_iw2ow1kw1sw1pw0")
    assert d.padding[1] == (0, -1)
    with pytest.raises(ValueError, match=r"end padding -1 on w drops input rows .* \(2 outputs instead of 1"):
        d.params()


def test_depth_one_3d_descriptor_is_2d_and_a_real_3d_one_is_refused():
    flat = parse("mb1_ic16oc16_kd1kh3kw3_id1ih5iw5_od1oh5ow5_sd1sh1sw1_pd0ph1pw1_dd0dh0dw0")
    assert flat.params().y_shape == (1, 16, 5, 5)
    deep = parse('ic16oc16_ih13kh3ph1_iw50kw3pw1_id10kd3pd1_n"3d_conv_pad:1"')
    with pytest.raises(ValueError, match="a 3-D problem; convcert is 2-D only"):
        deep.params()


@pytest.mark.parametrize("text, message", [
    ("ic3ih5oc4kh3q1", r"unrecognised entry at 'q1'"),
    ("ic3ihoc4kh3", r"no value for 'ih'"),
    ("ic3ih-5oc4kh3", r"ih=-5 must be >= 0"),
    ("ih5oc4kh3", r"ic must be set to a positive value"),
    ("mb0ic3ih5oc4kh3", r"mb must be set to a positive value"),
    ("ic3oc4kh3", r"ih is not set"),
    ("g2ic3ih5oc4kh3", r"g=2 must divide ic=3 and oc=4"),
    ("ic3ih2oc4kh3", r"oh deduced as 0"),
    ("mb2ic3", r"no spatial size"),
])
def test_malformed_descriptors_name_the_descriptor_and_the_rule(text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_pooling_kind_refuses_convolution_fields():
    with pytest.raises(ValueError, match=r"\['oc'\] are not pooling fields"):
        parse("ic3ih5oc4kh3", kind="pool")


def test_files_refuse_benchdnn_options_with_their_location(tmp_path):
    path = tmp_path / "shapes"
    path.write_text("ic3ih5oc4kh3\n--dir=FWD_B ic3ih5oc4kh3\n")
    with pytest.raises(ValueError, match=r"shapes:2: '--dir=FWD_B' is a benchdnn option"):
        benchdnn.read(path)
    with pytest.raises(ValueError, match="no such file"):
        benchdnn.read(tmp_path / "missing")

