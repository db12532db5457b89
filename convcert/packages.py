"""This installation's own four packages, whatever the working folder holds.

convcert's packages have common names (``conformance``, ``implementations``, ``benchmarks``,
``reports``), and a library's repository may hold a package of the same name. Python looks in
the working folder first for ``python -m ...`` and ``python -c ...``, so without care such a
folder is imported in convcert's place. :func:`use_own` makes every later import of the four
names load this installation's package (a finder placed first on ``sys.meta_path``), and raises
:class:`Shadowed` with one line naming the folder where another package of that name has
already been imported, so nothing can be guaranteed and the command must stop.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

#: The folder holding this installation's packages (site-packages, or a checkout).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: convcert's packages, in import order (each imports only those before it).
PACKAGES = ("implementations", "conformance", "benchmarks", "reports")


class Shadowed(RuntimeError):
    """Another package of one of convcert's names is already imported: stop (exit code 2)."""


def own_spec(name: str) -> ModuleSpec | None:
    """Where this installation's package ``name`` is, found in :data:`ROOT` alone."""
    return importlib.machinery.PathFinder.find_spec(name, [ROOT])


def _folder(origin: str | None) -> str:
    folder = os.path.dirname(origin or "?")
    relative = os.path.relpath(folder)
    return folder if relative.startswith("..") else "." + os.sep + relative


def _is_own(origin: str | None, name: str) -> bool:
    own = own_spec(name)
    return bool(origin and own and own.origin and os.path.samefile(origin, own.origin))


def shadows(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """``{package: folder}`` for each of ``names`` that a plain import would not take from this
    installation (an imported module of another origin, or another folder first on the path)."""
    found = {}
    for name in names:
        module = sys.modules.get(name)
        try:
            origin = getattr(module, "__file__", None) if module else (importlib.util.find_spec(name) or
                                                                       ModuleSpec(name, None)).origin
        except (ImportError, ValueError):
            origin = None
        if origin and not _is_own(origin, name):
            found[name] = _folder(origin)
    return found


class _OwnPackages(importlib.abc.MetaPathFinder):
    """Finds convcert's four packages in :data:`ROOT`, before any other folder is searched."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        return own_spec(fullname) if fullname in PACKAGES else None


def use_own() -> None:
    """From now on, import this installation's four packages whatever ``sys.path`` holds; raise
    :class:`Shadowed` if another package of one of their names is imported already."""
    imported = {name: folder for name, folder in shadows().items() if name in sys.modules}
    if imported:
        name, folder = next(iter(imported.items()))
        raise Shadowed(f"convcert: {folder} shadows convcert's own {name!r} package and was imported "
                       f"before convcert could load its own; run from a folder without it")
    if not any(isinstance(finder, _OwnPackages) for finder in sys.meta_path):
        sys.meta_path.insert(0, _OwnPackages())
