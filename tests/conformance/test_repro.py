"""``--export-repro``: a failing case as a script that needs only NumPy and the plug-in."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.catalogue.cases import CATALOGUE
from conformance.catalogue.corpus import CORPUS
from conformance.mutants import KernelFlipped
from conformance.verdicts.certify import certify
from conformance.verdicts.repro import export, write_script

ROOT = Path(__file__).resolve().parents[2]


def _run(script: Path) -> tuple[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(script)], capture_output=True,
                          text=True, env=env, cwd=script.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    worst = re.search(r"worst error: (\S+)", done.stdout)
    assert worst, done.stdout
    return done.stdout, float(worst[1])


def test_an_exported_failure_reproduces_without_convcert(tmp_path):
    cert = certify(KernelFlipped(), dtypes=["float64"], quick=True, isolate=False)
    scripts = export(cert, tmp_path)
    assert scripts and all(s.with_suffix(".npz").exists() for s in scripts)
    text = scripts[0].read_text()
    assert "conformance" not in re.sub(r"conformance\.mutants", "", text.split('"""', 2)[2])
    out, worst = _run(scripts[0])
    assert worst > 1e-3 and "found" in out and "expected" in out


@pytest.mark.parametrize("op", ["conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
                                "avg_pool2d_backward", "conv2d"])
def test_a_correct_implementation_reproduces_with_a_tiny_error(tmp_path, op):
    # a passing case, exported for the test's sake: the script's own reference agrees with im2col
    problems = [p for p in CATALOGUE + CORPUS if op.startswith(p.family)]
    hardest = max(problems, key=lambda p: len(p.options))  # the most options at once
    case = next(c for c in hardest.cases() if c.op == op)
    _, worst = _run(write_script("im2col", case, "cpu", "float32", tmp_path))
    assert worst < 1e-4, case.name


def test_the_embedded_reference_agrees_with_naive_on_every_tiny_and_corpus_problem():
    import numpy as np

    from conformance.judging import references
    from conformance.verdicts.repro import REFERENCE

    space = {"np": np}
    exec(REFERENCE, space)  # the text the scripts embed
    for problem in CATALOGUE + CORPUS:
        inputs = problem.inputs()
        expected = references.compute(problem, inputs)
        for case in problem.cases():
            got = space["reference"](case.op, inputs, problem.params)
            for name, value in zip(case.outputs, got, strict=True):
                assert np.allclose(value, expected[name], rtol=0, atol=1e-9), (case.name, name)


def test_certify_export_repro_writes_the_scripts_of_the_failing_cases(tmp_path, capsys):
    from conformance.cli import main

    code = main(["certify", "conformance.mutants:KernelFlipped", "--quick", "--dtype", "float64",
                 "--no-progress", "--out", str(tmp_path / "cert"), "--export-repro", str(tmp_path / "repro")])
    assert code == 1 and "repro scripts:" in capsys.readouterr().out
    assert sorted(p.suffix for p in (tmp_path / "repro").iterdir())[:2] == [".npz", ".npz"]


HOSTILE = '''import numpy as np

from implementations.im2col import Im2col


class Wrong(Im2col):
    """Correlates with the kernel turned by 180 degrees: every conv2d with a kernel over 1x1 fails."""

    name = "hostile"

    def conv2d(self, x, w, b, params):
        return super().conv2d(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, params)
'''


def test_repro_scripts_of_a_plugin_with_a_hostile_file_name_run_only_what_they_mean_to(tmp_path, capsys):
    from conformance.cli import main

    folder = tmp_path / "odd:folder"
    folder.mkdir()
    plugin = folder / """conv\"\"\"; import os; os.system('touch PWNED'); \"\"\"x.py"""
    plugin.write_text(HOSTILE)
    code = main(["certify", f"{plugin}:Wrong", "--quick", "--dtype", "float64", "--no-progress",
                 "--out", str(tmp_path / "cert"), "--export-repro", str(tmp_path / "repro")])
    assert code == 1, capsys.readouterr()
    scripts = sorted((tmp_path / "repro").glob("*.py"))
    assert scripts and all(re.fullmatch(r"[A-Za-z0-9_.-]+\.py", s.name) for s in scripts)
    for script in scripts[:2]:
        compile(script.read_text(), str(script), "exec")  # the script parses: nothing broke out of a literal
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        worst = re.search(r"worst error: (\S+)", done.stdout)
        assert worst and float(worst[1]) > 1e-3, done.stdout  # it loaded the plug-in and saw the failure
    assert not list(tmp_path.rglob("PWNED")) and not (ROOT / "PWNED").exists()
