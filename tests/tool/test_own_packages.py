"""convcert inside a repository whose own packages share its names: the command, the worker and
the pytest plugin import convcert's own packages, or stop with one line (exit code 2); a pytest
run without ``--convcert`` leaves the repository's packages its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("implementations", "conformance", "benchmarks", "reports")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """convcert installed as a wheel installs it (packages, console scripts, entry points) into
    a folder of its own, built from a copy of the checkout (the checkout stays clean)."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in (*PACKAGES, "convcert"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-compile", "--target", str(base / "site"), str(source)],
                   check=True, capture_output=True, timeout=300)
    return base / "site"


@pytest.fixture
def clash(tmp_path) -> Path:
    """A user's folder holding the plug-in file and four packages of convcert's names that fail
    loudly when imported."""
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('the project’s own {name}')\n")
    shutil.copy(REPO / "docs" / "examples" / "myconv.py", tmp_path / "myconv.py")
    return tmp_path


def run(installed: Path, folder: Path, *command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed), "NO_COLOR": "1"}
    return subprocess.run(list(command), cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_the_console_command_and_its_worker_use_convcerts_packages(installed, clash):
    done = run(installed, clash, str(installed / "bin" / "convcert"), "certify", "./myconv.py:MyConv",
               "--quick", "--no-progress", "--out", str(clash / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("myconv: PASSED (")


def test_python_m_convcert_benchmarks_and_reports_with_its_own_packages(installed, clash):
    bench = run(installed, clash, sys.executable, "-m", "convcert", "bench", "--help")
    assert bench.returncode == 0 and "convcert bench" in bench.stdout, bench.stderr
    report = run(installed, clash, sys.executable, "-m", "convcert", "report", "--help")
    assert report.returncode == 0 and "convcert report" in report.stdout, report.stderr


@pytest.mark.parametrize("pytest_command", [["-m", "pytest"], ["pytest"]], ids=["python -m pytest", "pytest"])
def test_pytest_convcert_uses_convcerts_packages_and_says_which_folders_it_set_aside(
        installed, clash, pytest_command):
    if pytest_command == ["pytest"]:
        program = Path(sys.executable).with_name("pytest")
        if not program.exists():
            pytest.skip(f"no pytest command beside {sys.executable}")
        command = [str(program)]
    else:
        command = [sys.executable, *pytest_command]
    done = run(installed, clash, *command, "--convcert", "./myconv.py:MyConv", "--convcert-quick",
               "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert " passed, " in done.stdout.splitlines()[-1]
    if command[0] == sys.executable:  # python -m puts the working folder first on the path
        assert "convcert: its own 'conformance' package is used in this run, not ./conformance" in done.stdout


def test_a_pytest_run_without_convcert_keeps_the_projects_own_package(installed, tmp_path):
    (tmp_path / "conformance").mkdir()
    (tmp_path / "conformance" / "__init__.py").write_text("OWNER = 'project'\n")
    (tmp_path / "test_own.py").write_text(
        "import conformance\n\ndef test_the_project_package():\n    assert conformance.OWNER == 'project'\n")
    done = run(installed, tmp_path, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout + done.stderr


def test_pytest_convcert_stops_with_one_line_when_the_projects_package_is_imported_first(installed, tmp_path):
    (tmp_path / "conformance").mkdir()
    (tmp_path / "conformance" / "__init__.py").write_text("OWNER = 'project'\n")
    (tmp_path / "conftest.py").write_text("import conformance\n")
    shutil.copy(REPO / "docs" / "examples" / "myconv.py", tmp_path / "myconv.py")
    done = run(installed, tmp_path, sys.executable, "-m", "pytest", "--convcert", "./myconv.py:MyConv",
               "--convcert-quick", "-q", "-p", "no:cacheprovider")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "shadows" in line]
    assert len(lines) == 1 and "./conformance shadows convcert's own 'conformance' package" in lines[0]


def test_the_command_stops_with_one_line_when_a_package_of_its_name_is_imported_already(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "__init__.py").write_text("")
    code = "import sys, benchmarks; from convcert.cli import main; sys.exit(main(['list']))"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "convcert: ./benchmarks shadows convcert's own 'benchmarks' package and was imported before convcert "
        "could load its own; run from a folder without it"]


def test_convcert_version_prints_the_packages_version():
    from convcert import __version__
    from convcert.cli import main

    done = subprocess.run([sys.executable, "-m", "convcert", "--version"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.stdout == f"convcert {__version__}\n" and main(["--version"]) == 0
