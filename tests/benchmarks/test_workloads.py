import pytest

from benchmarks.workloads import LAYERS, PROFILES, RESNET50, Workload, get_profile


def test_simpleconvnet_layer_is_the_textbook_one():
    conv = Workload(LAYERS["simpleconvnet.conv1"], 1).params
    pool = Workload(LAYERS["simpleconvnet.pool1"], 1).params
    assert conv.y_shape == (1, 30, 24, 24) and pool.y_shape == (1, 30, 12, 12)


def test_alexnet_and_resnet_output_sizes_follow_the_papers():
    assert Workload(LAYERS["alexnet.conv1"], 1).params.out_hw == (55, 55)
    assert Workload(LAYERS["resnet50.conv1"], 1).params.out_hw == (112, 112)
    assert Workload(LAYERS["resnet50.maxpool"], 1).params.out_hw == (56, 56)


def test_resnet50_layers_are_unique():
    keys = [(l.chw, l.kernel, l.filters, l.stride) for l in RESNET50 if l.op == "conv2d"]
    assert len(keys) == len(set(keys)) == 23


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_workload_has_valid_geometry(name):
    for wl in get_profile(name).workloads:
        assert wl.flops("backward") >= wl.flops("forward") > 0


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="profile='huge'"):
        get_profile("huge")
