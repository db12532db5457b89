"""Finding implementations: built-ins, ``module:Class`` specs and installed entry points.

Nothing here imports a heavy framework: availability is decided from the import system's
module index (``importlib.util.find_spec``) before any adapter module is loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
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
    if name in _entry_points():
        try:
            get(name)
        except Exception as exc:  # a broken plug-in is reported, not raised
            return f"entry point failed to load: {type(exc).__name__}: {exc}"
        return None
    return f"no implementation is registered as {name!r}"


def registered() -> list[str]:
    """Every registered name: built-ins first, then entry points."""
    return list(BUILTINS) + sorted(n for n in _entry_points() if n not in BUILTINS)


def available() -> list[str]:
    """Names of the registered implementations whose dependencies are importable here."""
    return [n for n in registered() if unavailable_reason(n) is None]


def _load_class(spec: str) -> type:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"spec={spec!r}: must be a registered name or 'package.module:ClassName'")
    module = importlib.import_module(module_name)
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
    """An instance from ``"package.module:ClassName"`` or a registered name."""
    if ":" in spec:
        return _instantiate(spec)
    return get(spec)
