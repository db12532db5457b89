"""convcert's sessions. ``nox`` alone runs conformance, the CPU benchmarks and the report.

Every session installs what it needs into its own virtualenv. Installs go through
``constraints/ci.txt`` (torch pinned to the CPU wheel this project's CI has on disk);
set ``CONVCERT_CONSTRAINTS=`` (empty) to resolve freely, or to another file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYTHON = None  # the interpreter nox runs under; the project supports 3.10+
nox.options.sessions = ["conformance", "benchmarks", "report"]
nox.options.reuse_existing_virtualenvs = True


def _constraints() -> list[str]:
    path = os.environ.get("CONVCERT_CONSTRAINTS", str(ROOT / "constraints" / "ci.txt"))
    return ["-c", path] if path else []


def install(session: nox.Session, *extras: str) -> None:
    """Install this project with ``extras`` (all frameworks included: each adapter that
    installs is certified, one that does not is reported unavailable)."""
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install(*_constraints(), spec)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The project's tests: foundation, conformance (mutants included), adapters, benchmarks smoke."""
    install(session, "test", "frameworks", "triton")
    session.run("python", "-m", "pytest", *(session.posargs or ["-q"]))


#: The packages the lint gate covers (ruff also checks the tests and this file).
PACKAGES = ("implementations", "conformance", "benchmarks", "reports", "convcert")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (rules in pyproject.toml) and mypy on the four packages; both must find nothing."""
    # NumPy and ml_dtypes carry the types mypy follows; the frameworks are too heavy for a
    # lint run and are treated as untyped (ignore_missing_imports).
    session.install(*_constraints(), "ruff==0.17.6", "mypy==2.4.1", "numpy", "ml_dtypes", "pytest")
    session.run("ruff", "check", *PACKAGES, "tests", "noxfile.py")
    session.run("mypy", *PACKAGES)


@nox.session(name="list", python=PYTHON)
def list_(session: nox.Session) -> None:
    """List implementations: devices, dtypes, claimed features, why one is unavailable."""
    install(session, "frameworks")
    session.run("python", "-m", "implementations", *session.posargs)


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """Run every available implementation through the catalogue; write the matrix to reports/out/.

    Implementations are certified side by side (``-- --jobs N``; default one per core), and one
    none of whose inputs changed since the last run is reused from ``.convcert-cache/``
    (``-- --fresh`` certifies every one again). A rejected implementation (exit code 1) is a
    verdict the matrix records, not a failure of the suite: the benchmarks and the report still
    run. Exit code 2 (could not run: bad golden data, or the certifier failed on some
    implementation, whose matrix entry then says so while every other one is judged) fails the
    session and stops ``nox``."""
    install(session, "conformance", "frameworks", "triton")
    session.run("python", "-m", "conformance", "matrix", *session.posargs, success_codes=[0, 1])


@nox.session(python=PYTHON)
def certify(session: nox.Session) -> None:
    """Certify one implementation: ``nox -s certify -- SPEC [--device cpu|cuda] [--dtype ...]``."""
    if not session.posargs:
        session.error("usage: nox -s certify -- SPEC [--device cpu|cuda] [--dtype float32 ...]")
    install(session, "conformance", "frameworks", "triton")
    session.run("python", "-m", "conformance", "certify", *session.posargs)


@nox.session(python=PYTHON)
def references(session: nox.Session) -> None:
    """Regenerate the golden references and prove the stored files did not change."""
    install(session, "conformance", "torch")
    session.run("python", "-m", "conformance", "references", *(session.posargs or ["--check"]))


@nox.session(python=PYTHON)
def benchmarks(session: nox.Session) -> None:
    """Time every available implementation: ``nox -s benchmarks -- --profile cpu|smoke|gpu``."""
    install(session, "bench", "frameworks")
    session.run("python", "-m", "benchmarks", "run", *(session.posargs or ["--profile", "cpu"]))


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Render the comparison report (Markdown, HTML, CSV, plots) from the result files."""
    install(session, "bench")
    session.run("python", "-m", "reports", *session.posargs)


def _junit(path: Path) -> dict[str, str]:
    """Test name -> ``pass``, ``skipped`` or ``failure`` from a JUnit XML report."""
    cases = ET.parse(path).getroot().iter("testcase")
    return {f"{c.get('classname')}::{c.get('name')}": next((e.tag for e in c), "pass") for c in cases}


@nox.session(python=PYTHON)
def wheel(session: nox.Session) -> None:
    """The wheel is all a library author needs: build it, install it with the ``conformance``
    extra into a fresh environment outside the checkout, and from a temporary folder certify the
    plug-in file ``docs/examples/myconv.py`` (right and wrong) with ``convcert certify`` and with
    ``pytest --convcert``, checking exit codes and the JUnit report; the folder also holds
    packages named like convcert's four, which fail when imported."""
    work = Path(tempfile.mkdtemp(prefix="convcert-wheel-"))
    try:
        session.run("python", "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(work / "dist"))
        wheel_file = next((work / "dist").glob("convcert-*.whl"))
        env = work / "venv"
        session.run("python", "-m", "venv", str(env))
        python, bin_ = str(env / "bin" / "python"), env / "bin"
        session.run(python, "-m", "pip", "install", "-q", *_constraints(), f"{wheel_file}[conformance]",
                    "pytest", external=True)
        user = work / "user"
        user.mkdir()
        shutil.copy(ROOT / "docs" / "examples" / "myconv.py", user / "myconv.py")
        for name in PACKAGES[:4]:  # a user's own packages of convcert's names must not be imported
            (user / name).mkdir()
            (user / name / "__init__.py").write_text(f"raise ImportError('the user folder: {name}')\n")
        clean = {"PYTHONPATH": "", "PATH": f"{bin_}{os.pathsep}{os.environ.get('PATH', '')}"}

        def run(program: str, *args: str, codes: list[int]) -> None:
            session.run(str(bin_ / program), *args, env=clean, external=True, success_codes=codes)

        with session.chdir(user):
            run("convcert", "certify", "./myconv.py:MyConv", "--quick", codes=[0])
            run("convcert", "certify", "./myconv.py:WrongConv", "--quick", "--no-progress", codes=[1])
            run("pytest", "--convcert", "./myconv.py:MyConv", "--convcert-quick", "-q",
                "--junitxml=right.xml", codes=[0])
            run("pytest", "--convcert", "./myconv.py:WrongConv", "--convcert-quick", "-q",
                "--junitxml=wrong.xml", codes=[1])
        right, wrong = _junit(user / "right.xml"), _junit(user / "wrong.xml")
        if right.get("convcert[myconv]::certificate") != "pass" or "skipped" not in right.values():
            session.error(f"the right plug-in's JUnit report is not what it should be: {right}")
        if wrong.get("convcert[wrongconv]::certificate") != "failure" or "failure" in right.values():
            session.error(f"the wrong plug-in's JUnit report is not what it should be: {wrong}")
        session.log(f"JUnit: right plug-in {sorted(right.values()).count('pass')} passed; wrong plug-in "
                    f"{list(wrong.values()).count('failure')} failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)
