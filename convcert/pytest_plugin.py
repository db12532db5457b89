"""The ``pytest11`` entry point: ``pytest --convcert SPEC`` (:mod:`conformance.pytest_plugin`).

pytest loads this module in every run of an environment where convcert is installed, so it
must neither break nor change a run without ``--convcert``, even in a repository holding a
package named like one of convcert's (``conformance/``, ``benchmarks/``...): such a package is
the repository's own and stays importable under its name. So the plugin's options come from
convcert's own ``conformance/pytest_plugin.py`` loaded by path; only with ``--convcert`` does
the run switch to convcert's own four packages (:func:`convcert.packages.use_own`), and the
report header says which folder they replace. Where a package of the same name was imported
first (a conftest importing the repository's ``conformance``), the run stops with one line and
exit code 2.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

import pytest

from .packages import ROOT, Shadowed, shadows, use_own


def _plugin() -> ModuleType:
    """convcert's ``conformance/pytest_plugin.py``, loaded by path under a name of this package,
    so that a run without ``--convcert`` imports none of the four packages: a repository's own
    ``conformance`` stays the one its conftest and tests import."""
    name = f"{__name__}.conformance_plugin"
    if name not in sys.modules:
        path = os.path.join(ROOT, "conformance", "pytest_plugin.py")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None, path
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


_PLUGIN = _plugin()


def pytest_addoption(parser: pytest.Parser) -> None:
    _PLUGIN.pytest_addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("convcert", default=None):
        replaced = shadows()
        try:
            use_own()
        except Shadowed as exc:
            pytest.exit(str(exc), returncode=2)
        config.stash[_REPLACED] = replaced
    _PLUGIN.pytest_configure(config)


_REPLACED = pytest.StashKey[dict[str, str]]()


def pytest_report_header(config: pytest.Config) -> Any:
    replaced = config.stash.get(_REPLACED, {})
    return [f"convcert: its own {name!r} package is used in this run, not {folder}"
            for name, folder in replaced.items()]
