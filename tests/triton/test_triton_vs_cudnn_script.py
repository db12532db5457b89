"""benchmarks/triton_vs_cudnn.py without a GPU: its pipeline on the interpreter, its refusal."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="the triton implementation needs torch")
pytest.importorskip("triton", reason="triton is not installed")

import torch  # noqa: E402

from benchmarks import triton_vs_cudnn as bench  # noqa: E402
from implementations import ConvParams  # noqa: E402


def test_layer_table_has_the_resnet50_target_layers_at_the_batch_asked() -> None:
    layers, _ = bench.conv_layers(["resnet50", "vgg16"], batch=64)
    keys = {lay.key: lay.params for lay in layers}
    assert set(bench.TARGET_LAYERS) <= set(keys)
    assert keys["resnet50.res3_conv3x3"].x_shape == (64, 128, 28, 28)
    assert keys["vgg16.conv5_1"].w_shape == (512, 512, 3, 3)


def test_run_checks_times_and_writes_both_reports(tmp_path) -> None:
    layer = bench.Layer("tiny.conv3x3_s2", ConvParams.create((2, 4, 5, 5), (6, 4, 3, 3), stride=2, padding=1))
    doc = bench.run(tmp_path, [layer], "test", ["float32"], bench.LAYOUTS, bench.PASSES,
                    rounds=2, warmup=1, device="cpu", batch=2)
    saved = json.loads((tmp_path / "triton_vs_cudnn.json").read_text())
    assert saved["results"] == json.loads(json.dumps(doc["results"]))
    assert len(saved["results"]) == 4
    for row in saved["results"]:
        assert row["max_rel_err_vs_torch"] < 1e-5, row
        assert row["triton"]["rounds"] == 2 and row["throughput_ratio"] > 0
    md = (tmp_path / "triton_vs_cudnn.md").read_text()
    assert "| tiny.conv3x3_s2 | 2x4x5x5 | 6x4x3x3 | 2 |" in md and "median of 2 calls" in md
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_exits_with_status_2_and_says_why_without_cuda(tmp_path, capsys) -> None:
    assert bench.main(["--out", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
