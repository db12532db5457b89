import pytest

from benchmarks.workloads import (
    LAYERS,
    PROFILES,
    RESNET50,
    SHAPES_DIR,
    Workload,
    get_profile,
    shapes_workloads,
)


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


def test_shipped_benchdnn_shapes_files_become_workloads_named_by_label_at_their_batch():
    from implementations import benchdnn

    counts = {path.name: len(benchdnn.read(path)) for path in sorted(SHAPES_DIR.iterdir())}
    assert counts == {"conv_mobilenet": 11, "conv_mobilenet_dw": 9, "conv_resnet_50": 20, "pool_resnet_50": 2}
    workloads, refused = shapes_workloads("conv_resnet_50")  # a shipped file, by name
    assert refused == {} and len(workloads) == 20
    stem = {w.name: w for w in workloads}["conv_resnet_50.resnet_50:conv1@b50"]
    assert stem.op == "conv2d" and stem.params.y_shape == (50, 64, 112, 112)
    pools, _ = shapes_workloads(SHAPES_DIR / "pool_resnet_50")
    assert [w.op for w in pools] == ["max_pool2d", "max_pool2d"]


def test_shapes_workloads_list_refusals_and_keep_dilation(tmp_path):
    path = tmp_path / "mine"
    path.write_text('mb1ic8_ih9oh7_kh3ph1_dh1n"dilated"\nmb1ic1_ih32oh6kh6sh6ph2_iw2ow1kw1sw1pw0n"crops"\n')
    workloads, refused = shapes_workloads(path)
    assert [w.name for w in workloads] == ["mine.dilated@b1"]
    assert workloads[0].params.dilation == (2, 2)
    assert list(refused) == ["crops"] and "drops input rows" in refused["crops"]
