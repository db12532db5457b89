"""Result files: written atomically, with JSON's missing infinities spelled out.

An interrupted writer leaves the previous file (or none), never half of a new one.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to a temporary file in ``path``'s folder, then rename it over ``path``.

    The folder is created if needed; the file is readable by everyone the umask allows
    (``mkstemp`` alone would leave it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def writable_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a folder this process can write in, created if needed; a ValueError naming
    ``option`` otherwise (a file, a folder that cannot be created, one without write access)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option}={str(path)!r}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{option}={str(path)!r}: cannot create the folder ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{option}={str(path)!r}: not writable")
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_float(value: float) -> float | str:
    """``value`` itself when finite; else ``'inf'``, ``'-inf'`` or ``'nan'`` (JSON has none)."""
    return value if math.isfinite(value) else str(float(value))


__all__ = ["json_float", "write_atomic"]
