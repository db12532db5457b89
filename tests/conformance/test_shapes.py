"""benchdnn shapes files as conformance problems: batch scaling, refusals, and the
``--shapes`` option of ``certify`` and ``explore``."""

from __future__ import annotations

import json

from conformance.catalogue import shapes
from conformance.cli import main

SHAPES = ('# tiny problems in benchdnn syntax\n'
          'mb4ic2ih6oc3oh3kh3sh2ph1n"tiny:conv"\n'
          'mb2ic2ih7oh5kh2dh1n"tiny:pool_dilated"\n'
          'mb1ic1_ih32oh6kh6sh6ph2_iw2ow1kw1sw1pw0n"tiny:crops"\n'
          'g1mb2ic2ih8iw8oc2oh4ow4kh1kw1sh2sw2ph0pw0n"tiny:clamped"\n')


def _file(tmp_path):
    path = tmp_path / "tiny_shapes"
    path.write_text(SHAPES)
    return path


def test_descriptors_become_problems_with_refusals_and_clamps_reported(tmp_path):
    imported = shapes.read(_file(tmp_path))
    assert imported.read == 4
    assert [p.family for p in imported.problems] == ["conv2d", "max_pool2d", "avg_pool2d", "conv2d"]
    assert imported.problems[1].params.dilation == (2, 2)
    assert imported.problems[0].params.x_shape == (4, 2, 6, 6) and imported.scaled == []
    assert len(imported.refused) == 1 and imported.refused[0].startswith("tiny:crops: ")
    assert imported.clamped == ["tiny:clamped"]


def test_batch_is_scaled_down_to_the_reference_budget_and_said(tmp_path):
    imported = shapes.read(_file(tmp_path), budget=60)  # tiny:conv costs 3*3*3 + 2*12*12 = 315 per image
    conv = imported.problems[0]
    assert conv.params.x_shape[0] == 1
    assert "tiny:conv: mb 4 -> 1" in imported.scaled
    assert "batch scaled down for the naive reference" in imported.summary()


def test_certify_with_shapes_runs_them_and_the_certificate_says_where_they_came_from(tmp_path):
    out = tmp_path / "out"
    code = main(["certify", "im2col", "--shapes", str(_file(tmp_path)), "--dtype", "float32", "--no-progress",
                 "--out", str(out)])
    assert code == 0
    cert = json.loads((out / "im2col.json").read_text())
    assert "benchdnn shapes" in cert["selection"] and "tiny:crops" in cert["selection"]
    assert len(cert["results"]) == 2 * 4  # forward and backward of 4 problems


def test_certify_with_a_malformed_shapes_file_is_not_certified(tmp_path, capsys):
    path = tmp_path / "bad"
    path.write_text("ic3ih5oc4kh3q1\n")
    assert main(["certify", "im2col", "--shapes", str(path), "--no-progress", "--out", str(tmp_path)]) == 2
    assert "unrecognised entry at 'q1'" in capsys.readouterr().err


def test_explore_with_shapes_checks_each_problem(tmp_path, capsys):
    assert main(["explore", "im2col", "--shapes", str(_file(tmp_path)), "--dtype", "float32"]) == 0
    assert "im2col: 0 of 4 problems" in capsys.readouterr().out
