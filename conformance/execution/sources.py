"""Which source files an implementation runs from, by digest: what a reused certificate needs
unchanged; and where convcert's cache lives.

Computed in the worker once the implementation has loaded: every loaded module of convcert's
own packages (``implementations``, ``conformance``), of the plug-in's own top-level package,
and any other module that is neither in the standard library nor installed in a
site-packages folder (a plug-in file, its sibling modules). Third-party packages are not
read: their versions are what the implementation reports in ``environment()``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from pathlib import Path

#: Packages whose modules always count, even when installed into site-packages.
OWN = ("implementations", "conformance")
#: The environment variable naming convcert's cache folder (certificates; JAX's compilation
#: cache under ``jax/``, read by the adapter in the worker).
CACHE_ENV = "CONVCERT_CACHE_DIR"
#: The cache folder's name in the current folder when neither ``--cache-dir`` nor the variable says.
DEFAULT_FOLDER = ".convcert-cache"


def cache_folder(given: str | Path | None = None) -> Path:
    """The cache folder: ``given``, else ``$CONVCERT_CACHE_DIR``, else ``./.convcert-cache``."""
    return Path(given or os.environ.get(CACHE_ENV) or DEFAULT_FOLDER).absolute()


def _installed_roots() -> tuple[str, ...]:
    """Folders of the standard library and of installed packages (their files are not read)."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    roots = {str(Path(p).resolve()) for p in (sysconfig.get_paths().get(n) for n in names) if p}
    installed = ("site-packages", "dist-packages")
    roots |= {str(Path(p).resolve()) for p in sys.path if p and Path(p).name in installed}
    return tuple(sorted(roots))


def source_digests(plugin_module: str) -> dict[str, str]:
    """``{module name: sha256 of its file}`` of the modules loaded now that count (see above)."""
    roots = _installed_roots()
    own = (*OWN, plugin_module.split(".")[0])
    out: dict[str, str] = {}
    for name, module in sorted(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        if name.split(".")[0] not in own and str(path).startswith(roots):
            continue
        try:
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
    return out
