"""``python -m benchmarks triton-vs-cudnn`` without a GPU: the case table, the ratios and
target verdicts from fake timings, the whole pipeline on the interpreter, the refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the triton implementation needs torch")
pytest.importorskip("triton", reason="triton is not installed")

from benchmarks import cudnn_comparison as cmp  # noqa: E402
from benchmarks.stats import measurement_of  # noqa: E402
from benchmarks.workloads import LAYERS, Layer, Workload  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_cases_come_from_the_workload_table_at_the_batch_asked() -> None:
    todo = cmp.cases(["resnet50"], 64, ["float16"], ["channels_last"], ["forward", "backward"])
    keys = {c.workload.layer.key for c in todo}
    assert {"resnet50.res3_conv3x3", "resnet50.res3_conv3x3_s2", "resnet50.res2_expand"} <= keys
    assert "resnet50.maxpool" not in keys and len(todo) == 2 * len(keys)
    res3 = next(c for c in todo if c.workload.layer.key == "resnet50.res3_conv3x3")
    assert res3.params.x_shape == (64, 128, 28, 28)


def test_cases_reject_an_unknown_dtype_naming_it() -> None:
    with pytest.raises(ValueError, match=r"dtypes=\['float64'\]: each must be one of"):
        cmp.cases(["resnet50"], 64, ["float64"], ["channels_last"], ["forward"])


def _row(key: str, dtype: str, pass_: str, cudnn_ms: float, triton_ms: float) -> cmp.Row:
    case = cmp.LayerCase(Workload(LAYERS[key], 64), dtype, "channels_last", pass_)
    return cmp.Row(case, measurement_of([cudnn_ms / 1e3] * 3), measurement_of([triton_ms / 1e3] * 3), 1e-3,
                   {"forward": "BLOCK_M=128 (cached)"})


ROWS = [
    _row("resnet50.res3_conv3x3", "float16", "forward", 0.9, 1.0),      # 0.9
    _row("resnet50.res3_conv3x3_s2", "float16", "forward", 0.6, 1.0),   # 0.6: misses 0.8
    _row("resnet50.res3_expand", "float16", "forward", 1.0, 1.0),       # 1.0
    _row("resnet50.res3_conv3x3", "float16", "backward", 1.0, 4.0),     # 0.25
    _row("resnet50.res3_conv3x3", "float32", "forward", 1.2, 2.0),      # 0.6
]


def test_summary_gives_geometric_means_and_a_verdict_per_target_and_dtype() -> None:
    s = cmp.summary(ROWS)
    assert s["geomean_ratio"]["float16/channels_last/forward"] == pytest.approx((0.9 * 0.6 * 1.0) ** (1 / 3))
    verdicts = {(t["target"], t["dtype"]): (t["value"], t["verdict"]) for t in s["targets"]}
    assert verdicts["every 3x3 forward", "float16"] == (pytest.approx(0.6), "missed")
    assert verdicts["forward, all layers", "float16"][1] == "met"  # 0.81 >= 0.7
    assert verdicts["backward (dx + dw), all layers", "float16"] == (pytest.approx(0.25), "missed")
    assert verdicts["float32 forward, all layers", "float32"] == (pytest.approx(0.6), "met")
    assert verdicts["every 3x3 forward", "bfloat16"] == (None, "not measured")


def test_markdown_shows_targets_ratios_timings_and_tiles() -> None:
    doc = {"method": {"batch": 64, "rounds": 3, "warmup": 1, "timer": "fake"},
           "environment": {"gpu": "NVIDIA H100", "torch": "2.11", "triton": "3.6", "cudnn_benchmark": True},
           "summary": cmp.summary(ROWS), "results": [r.as_dict() for r in ROWS]}
    md = cmp.render_markdown(doc)
    assert "| every 3x3 forward | float16 | lowest | 0.8 | 0.60 | missed |" in md
    assert "| every 3x3 forward | bfloat16 | lowest | 0.8 | - | not measured |" in md
    assert "| resnet50.res3_conv3x3_s2 | 64x128x56x56 | 128x128x3x3 | 2 | 0.600 ± 0.000 | 1.000 ± 0.000 |" \
        in md
    assert "| 0.60 | 1.0e-03 | forward: BLOCK_M=128 (cached) |" in md and "GPU NVIDIA H100" in md


def test_run_checks_times_and_writes_json_and_markdown_on_the_interpreter(tmp_path: Path) -> None:
    tiny = Layer("tiny", "conv3x3_s2", "conv2d", (4, 5, 5), (3, 3), filters=6, stride=2, padding=1)
    todo = [cmp.LayerCase(Workload(tiny, 2), "float32", lo, pa) for lo in cmp.LAYOUTS for pa in cmp.PASSES]
    doc = cmp.run(tmp_path, todo, "cpu", cmp.wall_timer, rounds=2, warmup=1,
                  method={"timer": "wall", "batch": 2}, stem="out")
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["results"] == json.loads(json.dumps(doc["results"])) and len(saved["results"]) == 4
    for row in saved["results"]:
        assert row["max_rel_err_vs_cudnn"] < 1e-5 and row["triton"]["rounds"] == 2 and row["ratio"] > 0, row
    assert "interpreter" in saved["results"][0]["triton_tiles"]["forward"]
    assert set(saved["results"][1]["triton_tiles"]) == {"backward_input", "backward_weight"}
    assert saved["environment"]["triton_interpreter"] is True and saved["environment"]["torch"]
    assert "| tiny.conv3x3_s2 | 2x4x5x5 | 6x4x3x3 | 2 |" in (tmp_path / "out.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.md"]


@pytest.mark.own_process
def test_the_command_exits_2_with_one_line_without_cuda(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the refusal shown without a GPU")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "triton-vs-cudnn", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "triton-vs-cudnn: no CUDA device visible to torch; this comparison needs an NVIDIA GPU"]
    assert not list(tmp_path.iterdir())
