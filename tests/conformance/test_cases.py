"""The catalogue covers every feature of the contract, with readable unique names."""

import re

import pytest

from conformance.catalogue.cases import CATALOGUE
from conformance.catalogue.selection import all_cases, find_case, quick_cases
from implementations import FEATURES

CONV = [p for p in CATALOGUE if p.family == "conv2d"]
POOL = [p for p in CATALOGUE if p.family != "conv2d"]


def test_case_names_read_as_problem_descriptors():
    name = find_case("conv2d-n2c4h9w7-k6r3s2-st2-pad_same-dil2-g2-bias").name
    assert re.fullmatch(r"conv2d-n\d+c\d+h\d+w\d+-k\d+r\d+s\d+(-[a-z0-9_x]+)+", name)
    assert len({c.name for c in all_cases()}) == len(all_cases())


def test_find_case_ignores_a_dtype_suffix_and_rejects_unknown_names():
    assert find_case("conv2d-n2c3h7w6-k4r3s3-pad_valid-bias-float32").op == "conv2d"
    with pytest.raises(ValueError, match="case="):
        find_case("conv2d-nope")


def test_every_padding_form_is_covered():
    modes = {p.params.padding_mode for p in CONV}
    assert modes == {"valid", "same", "same_lower", "full", "explicit"}
    assert any(p.params.padding_mode == "explicit" and not p.params.is_symmetric for p in CONV)
    assert any(p.params.padding_mode == "explicit" and p.params.is_symmetric
               and any(map(any, p.params.padding)) for p in CONV)


def test_strides_dilations_and_groups_span_the_issue_ranges():
    assert {s for p in CONV for s in p.params.stride} >= {1, 2, 3}
    assert any(max(p.params.stride) > max(p.params.kernel) for p in CONV)
    assert {d for p in CONV for d in p.params.dilation} >= {1, 2, 3}
    groups = {(p.params.groups, p.w_shape[1], p.w_shape[0] // p.params.groups) for p in CONV}
    assert any(g == 2 and cg > 1 for g, cg, _ in groups)          # grouped
    assert any(g > 1 and cg == 1 and kg == 1 for g, cg, kg in groups)  # depthwise
    assert any(g > 1 and cg == 1 and kg > 1 for g, cg, kg in groups)   # channel multiplier


def test_shapes_cover_the_corner_cases():
    assert any(p.params.kernel == (1, 1) for p in CONV)
    assert any(p.params.kernel[0] != p.params.kernel[1] and p.x_shape[2] != p.x_shape[3] for p in CONV)
    assert any(p.params.out_hw == (1, 1) and any(map(any, p.params.padding)) for p in CONV)
    assert any(p.x_shape[2] == 1 for p in CONV) and any(p.x_shape[2] == 1 for p in POOL)
    assert {p.x_shape[0] for p in CONV} >= {1, 2}
    assert {p.bias for p in CONV} == {True, False}
    sizes = {s % 2 for p in CONV for s in p.x_shape[2:]}
    assert sizes == {0, 1}


def test_pooling_covers_padding_overlap_ceil_drop_and_both_count_rules():
    for fam in ("max_pool2d", "avg_pool2d"):
        ps = [p.params for p in POOL if p.family == fam]
        assert any(any(map(any, q.padding)) for q in ps)
        assert any(q.stride[0] < q.kernel[0] for q in ps)  # overlapping windows
        assert any(q.stride != q.kernel for q in ps)
        dropped = [q for q in ps if q.ceil_mode and
                   -(-(q.x_shape[2] + sum(q.padding[0]) - q.kernel[0]) // q.stride[0]) + 1 > q.out_hw[0]]
        assert dropped, f"{fam}: no case where ceil_mode drops a window starting in the padding"
    avg = [p.params for p in POOL if p.family == "avg_pool2d" and any(map(any, p.params.padding))]
    assert {q.count_include_pad for q in avg} == {True, False}


def test_every_problem_has_a_float_and_an_exact_twin():
    modes = {}
    for p in CATALOGUE:
        modes.setdefault((p.family, p.descriptor.removesuffix("-exact")), set()).add(p.mode)
    assert all(m == {"float", "exact"} for m in modes.values())


def test_every_feature_is_decided_by_some_case_and_by_the_quick_subset():
    assert {f for c in all_cases() for f in c.filed_under} == set(FEATURES)
    assert {f for c in quick_cases() for f in c.filed_under} == set(FEATURES)
    assert len(quick_cases()) < len(all_cases()) / 3


def test_a_case_is_filed_under_its_options_or_else_its_operation():
    plain = find_case("conv2d_backward-n2c3h7w6-k4r3s3-pad_valid-bias")
    assert plain.filed_under == {"conv2d_backward"}
    combo = find_case("conv2d-n2c4h9w7-k6r3s2-st2-pad_same-dil2-g2-bias")
    assert combo.filed_under == {"stride", "dilation", "groups"} and "conv2d" in combo.requires
