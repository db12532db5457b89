"""Finding implementations: built-ins, ``module:Class`` and ``path/to/file.py:Class`` specs,
and installed entry points.

Nothing here imports a heavy framework, or a plug-in: availability is decided from the import
system's module index (``importlib.util.find_spec`` of a top-level module, which runs no code)
and from the entry points' metadata. Only :func:`get` and :func:`load` import, and the
certifier calls them only in a worker process.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

from .contract import Implementation

ENTRY_POINT_GROUP = "convcert.implementations"


@dataclass(frozen=True)
class BuiltIn:
    spec: str  # "module:Class"
    requires: tuple[str, ...] = ()  # top-level modules that must be importable


BUILTINS: dict[str, BuiltIn] = {
    "naive": BuiltIn("implementations.naive:Naive"),
    "im2col": BuiltIn("implementations.im2col:Im2col"),
    "torch": BuiltIn("implementations.frameworks.torch_adapter:Torch", ("torch",)),
    "tensorflow": BuiltIn("implementations.frameworks.tensorflow_adapter:TensorFlow", ("tensorflow",)),
    "jax": BuiltIn("implementations.frameworks.jax_adapter:Jax", ("jax",)),
    "triton": BuiltIn("implementations.triton_op.conv:Triton", ("torch", "triton")),
    "onnxruntime": BuiltIn("implementations.frameworks.onnxruntime_adapter:OnnxRuntime",
                           ("onnxruntime", "onnx")),
}


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def unavailable_reason(name: str) -> str | None:
    """Why a registered implementation cannot be used here, or None if it can."""
    if name in BUILTINS:
        missing = [m for m in BUILTINS[name].requires if not _module_exists(m)]
        if missing:
            return " and ".join(missing) + (" is" if len(missing) == 1 else " are") + " not installed"
        return None
    eps = _entry_points()
    if name in eps:  # judged from its metadata: importing it would run the plug-in here
        top = eps[name].partition(":")[0].split(".")[0]
        if not _module_exists(top):
            return f"entry point {eps[name]!r}: module {top!r} is not installed"
        return None
    return f"no implementation is registered as {name!r}"


def registered_spec(name: str) -> str | None:
    """The ``module:Class`` spec a registered name stands for, read from the built-in table or the
    entry point's metadata (nothing is imported); None for a name not registered."""
    if name in BUILTINS:
        return BUILTINS[name].spec
    return _entry_points().get(name)


def registered() -> list[str]:
    """Every registered name: built-ins first, then entry points."""
    return list(BUILTINS) + sorted(n for n in _entry_points() if n not in BUILTINS)


def available() -> list[str]:
    """Names of the registered implementations whose dependencies are importable here."""
    return [n for n in registered() if unavailable_reason(n) is None]


#: Prefix of the module names given to plug-in files loaded by path.
FILE_MODULE_PREFIX = "convcert_plugin_"


def file_spec_parts(spec: str) -> tuple[str, str] | None:
    """``(path, attribute)`` of a ``path/to/file.py:Class`` spec, or None for any other spec."""
    path, sep, attr = spec.rpartition(":")
    return (path, attr) if sep and path.endswith(".py") else None


def absolute_spec(spec: str) -> str:
    """``spec`` with a plug-in file's path made absolute (against the current folder), so that
    a process started elsewhere loads the same file; any other spec unchanged."""
    parts = file_spec_parts(spec)
    return f"{os.path.abspath(parts[0])}:{parts[1]}" if parts else spec


def _import_file(path: str) -> object:
    """The module of the plug-in file ``path``, imported once per absolute path under a name of
    its own; the file's folder goes first on ``sys.path`` so its sibling modules import."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"spec path {path!r}: no such file")
    stem = "".join(c if c.isalnum() else "_" for c in os.path.splitext(os.path.basename(path))[0])
    name = f"{FILE_MODULE_PREFIX}{stem}_{hashlib.sha256(path.encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    folder = os.path.dirname(path)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"spec path {path!r}: not importable as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def class_spec(cls: type) -> str:
    """A spec that loads ``cls`` in a fresh process: ``module:Class``, or ``file.py:Class`` for a
    class from a plug-in file loaded by path."""
    module = sys.modules.get(cls.__module__)
    if cls.__module__.startswith(FILE_MODULE_PREFIX) and getattr(module, "__file__", None):
        return f"{module.__file__}:{cls.__qualname__}"  # type: ignore[union-attr]
    return f"{cls.__module__}:{cls.__qualname__}"


def _load_class(spec: str) -> type:
    parts = file_spec_parts(spec)
    module_name, sep, attr = (parts[0], ":", parts[1]) if parts else spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"spec={spec!r}: must be a registered name or 'package.module:ClassName' "
                         "(or 'path/to/file.py:ClassName')")
    module = _import_file(module_name) if parts else importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"spec={spec!r}: module {module_name!r} has no attribute {attr!r}") from None
    return obj  # type: ignore[return-value]


def _instantiate(spec: str) -> Implementation:
    cls = _load_class(spec)
    impl = cls() if isinstance(cls, type) else cls
    if not isinstance(impl, Implementation):
        raise ValueError(f"spec={spec!r}: {cls!r} is not an implementations.Implementation")
    if not impl.name:
        raise ValueError(f"spec={spec!r}: the implementation must set a non-empty name")
    return impl


@cache
def get(name: str) -> Implementation:
    """The registered implementation ``name`` (built-in or entry point), one instance per name."""
    if name in BUILTINS:
        reason = unavailable_reason(name)
        if reason:
            raise ImportError(f"implementation {name!r} is unavailable: {reason}")
        return _instantiate(BUILTINS[name].spec)
    eps = _entry_points()
    if name in eps:
        return _instantiate(eps[name])
    raise ValueError(f"name={name!r}: not registered; registered are {registered()}")


def load(spec: str) -> Implementation:
    """An instance from ``"package.module:ClassName"``, ``"path/to/file.py:ClassName"`` (the
    file's folder first on ``sys.path``) or a registered name."""
    if ":" in spec:
        return _instantiate(spec)
    return get(spec)
