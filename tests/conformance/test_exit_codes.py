"""Exit codes: 0 certified, 1 rejected, 2 could not run; one line saying why, no traceback."""

from __future__ import annotations

import pytest

from conformance.cli import main

HERE = "tests.conformance.misbehaving"
CASE = "max_pool2d-n2c2h6w6-k2-pad_valid"


def _certify(spec, *extra, tmp_path):
    return main(["certify", spec, "--case", CASE, "--no-progress", "--out", str(tmp_path), *extra])


@pytest.mark.parametrize("spec,extra,says", [
    ("nosuch", (), "not registered"),
    ("nosuch_module_xyz:Impl", (), "ModuleNotFoundError"),
    (f"{HERE}:NoSuchClass", (), "has no attribute"),
    (f"{HERE}:BrokenConstructor", (), "RuntimeError: no licence server"),
    (f"{HERE}:Float32Only", ("--dtype", "float64"), "dtype='float64': float32-only does not claim it"),
    ("im2col", ("--device", "cuda"), "device='cuda': im2col does not claim it"),
    ("im2col", ("--case", "conv2d-no-such-case"), "no such case"),
])
def test_what_cannot_run_exits_2_with_one_line_and_no_traceback(spec, extra, says, tmp_path, capsys):
    assert _certify(spec, *extra, tmp_path=tmp_path) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("extra", [("--dtype", "complex64"), ("--dtype", "int8"), ("--device", "tpu")])
def test_an_unknown_dtype_or_device_is_refused_by_the_parser_before_anything_starts(extra, tmp_path, capsys,
                                                                                    monkeypatch):
    from conformance.execution import worker

    monkeypatch.setattr(worker.Worker, "__init__", lambda *a, **k: pytest.fail("a worker started"))
    with pytest.raises(SystemExit) as exited:
        _certify("im2col", *extra, tmp_path=tmp_path)
    assert exited.value.code == 2
    assert f"invalid choice: '{extra[1]}'" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert _certify(f"{HERE}:BrokenConstructor", "--debug", tmp_path=tmp_path) == 2
    assert "Traceback" in capsys.readouterr().err


def test_certified_is_0_and_rejected_is_1(tmp_path, capsys):
    assert _certify(f"{HERE}:Float32Only", tmp_path=tmp_path) == 0
    conv = "conv2d-n2c3h7w6-k4r3s3-pad_valid-bias"
    argv = ["certify", f"{HERE}:HidesErrors", "--case", conv, "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 1
    assert "undeclared refusal" in capsys.readouterr().out


def test_a_failed_load_of_a_registered_name_removes_its_older_certificate(tmp_path, monkeypatch, capsys):
    """A broken torch install (first on the worker's path) makes the re-run fail to load."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "torch.json").write_text('{"passed": true}')
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('broken torch install')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _certify("torch", tmp_path=out) == 2
    assert "broken torch install" in capsys.readouterr().err
    assert not (out / "torch.json").exists()
