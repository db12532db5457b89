"""Certification that no plug-in, input or file can break or forge (contract v3).

Each test runs a real misbehaving plug-in (``misbehaving.py``) or a real bad input through
the command line or the certifier and checks what comes out: the verdict, the exit code,
one line of explanation, the certificate, and what is left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.execution.protocol import MalformedAnswer, Outcome, decode_outcome, encode_outcome
from conformance.rendering.markdown import certificate_markdown
from conformance.verdicts.certificate import certificate_stem
from conformance.verdicts.certify import certify

HERE = "tests.conformance.misbehaving"
REPO = Path(__file__).resolve().parents[2]
CONV = "conv2d-n2c4h9w7-k6r3s2-st2-pad_same-dil2-g2-bias"
PLAIN = "conv2d-n2c3h7w6-k4r3s3-pad_valid-bias"
POOL = "max_pool2d-n2c2h6w6-k2-pad_valid"


def _certify(spec, *extra, out):
    return main(["certify", spec, "--no-progress", "--out", str(out), *extra])


def _cert(out, spec):
    return json.loads((out / f"{certificate_stem(spec)}.json").read_text())


# -- only parsed numbers reach the judge ------------------------------------------------
def test_an_object_array_whose_element_runs_code_fails_the_case_and_runs_nothing(tmp_path, monkeypatch,
                                                                                   capsys):
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("CONVCERT_TEST_MARKER", str(marker))
    spec = f"{HERE}:ReturnsObjects"
    assert _certify(spec, "--case", PLAIN, "--case", POOL, out=tmp_path) == 1
    assert not marker.exists()
    messages = {r["op"]: r["reason"] for r in _cert(tmp_path, spec)["results"]}
    assert messages == {"conv2d": "returned an object array (dtype object)",
                        "max_pool2d": "returned a string array (dtype <U3)"}


def test_a_forged_message_in_the_answer_channel_fails_that_case_and_the_run_goes_on(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("CONVCERT_TEST_MARKER", str(marker))
    spec = f"{HERE}:WritesIntoTheAnswerChannel"
    assert _certify(spec, "--case", PLAIN, "--case", POOL, out=tmp_path) == 1
    assert not marker.exists()
    results = {r["op"]: r for r in _cert(tmp_path, spec)["results"]}
    assert results["conv2d"]["status"] == "fail" and "malformed answer" in results["conv2d"]["reason"]
    assert results["max_pool2d"]["status"] == "pass"  # a fresh worker took the next case


@pytest.mark.parametrize("mangle", [
    lambda b: b[:-3],  # too short for its arrays
    lambda b: b + b"x",  # bytes after the last array
    lambda b: b.replace(b'"float32"', b'"object\\u0000"'),
    lambda b: b.replace(b'"ok"', b'"pwned"'),
    lambda b: b"\x80\x04\x95" + b[3:],  # a pickle opcode where the tag goes
])
def test_decoding_an_outcome_checks_every_field(mangle):
    good = encode_outcome(Outcome("ok", [__import__("numpy").ones((2, 3), "float32")]))
    assert decode_outcome(good).found[0].shape == (2, 3)
    with pytest.raises(MalformedAnswer):
        decode_outcome(mangle(good))


# -- resources ---------------------------------------------------------------------------
@pytest.mark.parametrize("request_", [
    ("--case", "conv2d-n1c1h99999w99999-k1r1s1-pad_valid-nobias"),
    ("--shapes", "mb1ic1ih1oc999999999kh1"),
])
def test_a_problem_too_large_for_memory_is_refused_before_anything_is_allocated(request_, tmp_path, capsys):
    if request_[0] == "--shapes":
        path = tmp_path / "huge.txt"
        path.write_text(request_[1] + "\n")
        request_ = ("--shapes", str(path))
    start = time.monotonic()
    assert _certify("im2col", *request_, "--max-memory", "2", out=tmp_path) == 2
    err = capsys.readouterr().err
    refusal = [line for line in err.splitlines() if line.startswith("not certified")]
    assert len(refusal) == 1 and "above --max-memory 2.0 GiB" in refusal[0] and "Traceback" not in err, err
    assert time.monotonic() - start < 30


def test_the_plug_ins_output_goes_to_a_log_and_nothing_it_forks_outlives_the_run(tmp_path):
    """``certify ... | cat`` must end when the certifier ends, though the plug-in left a child
    holding its stdout."""
    marker = tmp_path / "child-pid"
    env = dict(os.environ, CONVCERT_TEST_MARKER=str(marker),
               PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    spec = f"{HERE}:ForksAndPrints"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "conformance", "certify", spec, "--case", PLAIN,
                           "--no-progress", "--out", str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=50)
    assert time.monotonic() - start < 40
    assert proc.returncode == 0, proc.stderr
    assert "hello from the plug-in" not in proc.stdout + proc.stderr
    log = tmp_path / f"{certificate_stem(spec)}.log"
    assert "hello from the plug-in" in log.read_text()
    assert _cert(tmp_path, spec)["implementation"]["log"] == str(log)
    child = int(marker.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_worker_group_ends_when_the_certifier_is_killed(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    argv = [sys.executable, "-m", "conformance", "certify", f"{HERE}:Hangs", "--case",
            "avg_pool2d-n1c2h7w7-k2-pad_valid-ceil", "--no-progress", "--out", str(tmp_path)]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 60
        while not workers and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [int(p) for p in _children(proc.pid)]
        assert workers, "no worker started"
    finally:
        proc.kill()  # as a CI job's time limit would
        proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []


def test_a_circuit_breaker_stops_an_operation_that_hangs_every_time():
    start = time.monotonic()
    cert = certify(f"{HERE}:HangsInMaxPooling", quick=True, case_timeout=1)
    pooling = [r for r in cert.results if r.op.startswith("max_pool2d") and r.status == "fail"]
    skipped = [r for r in pooling if r.reason.startswith("not run: ")]
    assert len(pooling) - len(skipped) <= 2 * 3  # three timeouts in a row per operation, then no more
    assert skipped and "hung or crashed 3 times in a row" in skipped[0].reason
    assert any(r.status == "pass" for r in cert.results if r.op == "conv2d")
    assert time.monotonic() - start < 60


# -- names, claims and paths ---------------------------------------------------------------
@pytest.mark.parametrize("cls,says", [
    ("BadName", "name='my/conv\\n# heading': must be a string of 1 to 64 letters"),
    ("FeaturesAsAString", "features='conv2d': must be a collection"),
    ("ClaimsATpu", "'tpu' unknown; allowed: cpu, cuda"),
])
def test_malformed_names_and_claims_stop_the_run_before_any_case(cls, says, tmp_path, capsys):
    assert _certify(f"{HERE}:{cls}", "--case", PLAIN, out=tmp_path) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err


def test_two_specs_never_share_a_certificate_and_none_takes_a_built_ins():
    stems = {certificate_stem(s) for s in ("im2col", "my/conv", "my_conv", "mymod:Im2col", "my.mod:Im2col")}
    assert len(stems) == 5 and "im2col" in stems
    assert all(s == "im2col" or not s.startswith("im2col") for s in stems)


def test_a_failed_rerun_of_a_module_spec_removes_its_older_certificate(tmp_path, capsys):
    spec = f"{HERE}:BrokenConstructor"
    (tmp_path / f"{certificate_stem(spec)}.json").write_text('{"passed": true}')
    assert _certify(spec, "--case", PLAIN, out=tmp_path) == 2
    assert not (tmp_path / f"{certificate_stem(spec)}.json").exists()


@pytest.mark.parametrize("command", ["certify", "matrix"])
def test_out_naming_a_file_is_one_line_and_exit_2(command, tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("")
    argv = [command, "im2col"] if command == "certify" else [command, "--impl", "im2col"]
    assert main([*argv, "--out", str(target), "--no-progress", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_an_empty_shapes_file_is_one_line_and_exit_2(text, tmp_path, capsys):
    path = tmp_path / "shapes.txt"
    path.write_text(text)
    assert _certify("im2col", "--shapes", str(path), out=tmp_path) == 2
    err = capsys.readouterr().err
    assert "no problem descriptor" in err and len(err.strip().splitlines()) == 1, err


def test_explore_treats_a_plug_in_that_exits_as_a_failure(capsys):
    assert main(["explore", f"{HERE}:CallsSysExit", "--examples", "60", "--seed", "0"]) == 1
    assert "raised SystemExit" in capsys.readouterr().out


def test_explore_refuses_a_dtype_the_plug_in_does_not_claim(capsys):
    assert main(["explore", f"{HERE}:Float32Only", "--dtype", "float64"]) == 2
    assert "does not claim it" in capsys.readouterr().err


# -- what reaches documents and words ------------------------------------------------------
def test_markdown_escapes_what_a_plug_in_says():
    cert = certify(f"{HERE}:RaisesMarkdown", cases=None, quick=True)
    md = certificate_markdown(cert.to_dict())
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert not any(line.startswith("# Injected") for line in md.splitlines())
    assert "![x]" not in md


def test_the_rounding_diagnosis_is_never_given_for_what_rounding_cannot_explain():
    from conformance.mutants import InputModifiedInPlace, MaxPoolPadsWithZero, ReturnsFloat64

    for mutant in (InputModifiedInPlace(), ReturnsFloat64(), MaxPoolPadsWithZero()):
        cert = certify(mutant, dtypes=["float32"], quick=True, isolate=False)
        assert not cert.passed
        assert not any("rounding" in s.diagnosis for s in cert.features), mutant


def test_a_matrix_judges_every_other_implementation_when_the_certifier_fails_on_one(monkeypatch, tmp_path):
    from conformance.verdicts import cache, matrix

    real = cache.certify  # what the matrix certifies with (when the cache holds nothing)

    def breaks_on_naive(name, *args, **kwargs):
        if name == "naive":
            raise MemoryError("the judge ran out of memory")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(cache, "certify", breaks_on_naive)
    data = matrix.build(["naive", "im2col"], quick=True)
    entries = {e["name"]: e for e in data["implementations"]}
    assert entries["naive"]["could_not_run"] and "MemoryError" in entries["naive"]["reason"]
    assert entries["im2col"]["passed"]
