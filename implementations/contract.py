"""The plug-in contract (v4): the base class every implementation subclasses, and ``Limit``.

See ``docs/CONTRACT.md`` (and ``docs/plugging-in.md``) for the rules; v4 adds one method,
``ready(result)``, which blocks until a result is computed (by default ``synchronize`` of its
device), so that a timed call includes the work.
Layout at the contract is logical NCHW; operations are cross-correlation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from .geometry import DTYPES, ConvParams, PoolParams
from .validation import tensor_info, validated

#: Operations an implementation can claim.
OPERATIONS = (
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
)
#: Geometry options an implementation can claim on top of the operations.
OPTIONS = (
    "stride", "dilation", "groups", "asymmetric_padding", "ceil_mode", "count_include_pad",
    "pool_dilation",  # contract v2: PoolParams.dilation != (1, 1)
)
FEATURES = OPERATIONS + OPTIONS
DEVICES = ("cpu", "cuda")


class Unsupported(Exception):
    """Raised by an implementation for one case it cannot run; the reason is reported."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _names(field: str, value: str | Iterable[str], allowed: Sequence[str]) -> frozenset[str]:
    names = frozenset([value] if isinstance(value, str) else value)
    unknown = sorted(names - set(allowed))
    if unknown:
        raise ValueError(f"{field}={sorted(names)!r}: {unknown} not among {list(allowed)}")
    return names


@dataclass(frozen=True, init=False)
class Limit:
    """A case an implementation declares up front that it does not run, and why.

    A case is covered when it matches every field given: its operation is in ``ops``, it
    uses one of ``features`` (operations or options), its dtype is in ``dtypes``, its
    device in ``devices`` (an empty set matches anything), and ``when(params)`` is true.
    Covered cases are not run; the certificate lists them as "limited" with ``reason``.
    """

    reason: str
    ops: frozenset[str]
    features: frozenset[str]
    dtypes: frozenset[str]
    devices: frozenset[str]
    when: Callable[[Any], bool] | None

    def __init__(self, reason: str, ops: str | Iterable[str] = (), features: str | Iterable[str] = (),
                 dtypes: str | Iterable[str] = (), devices: str | Iterable[str] = (),
                 when: Callable[[Any], bool] | None = None):
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"reason={reason!r}: a limit must say why, as a non-empty string")
        if when is not None and not callable(when):
            raise ValueError(f"when={when!r}: must be a predicate on the case's params, or None")
        set_ = object.__setattr__
        set_(self, "reason", reason)
        set_(self, "ops", _names("ops", ops, OPERATIONS))
        set_(self, "features", _names("features", features, FEATURES))
        set_(self, "dtypes", _names("dtypes", dtypes, DTYPES))
        set_(self, "devices", _names("devices", devices, DEVICES))
        set_(self, "when", when)

    def covers(self, op: str, uses: Iterable[str], dtype: str, device: str,
               params: ConvParams | PoolParams) -> bool:
        """True when a case of ``op`` using features ``uses`` on (device, dtype) is covered."""
        return ((not self.ops or op in self.ops)
                and (not self.features or not self.features.isdisjoint(uses))
                and (not self.dtypes or dtype in self.dtypes)
                and (not self.devices or device in self.devices)
                and (self.when is None or bool(self.when(params))))


def limit_for(limits: Iterable[Limit], op: str, uses: Iterable[str], dtype: str, device: str,
              params: ConvParams | PoolParams) -> Limit | None:
    """The first of ``limits`` that covers the case, or None."""
    uses = frozenset(uses)
    return next((lim for lim in limits if lim.covers(op, uses, dtype, device, params)), None)


class Implementation:
    """Base class of every implementation, built-in or plug-in.

    A subclass sets ``name``, ``devices``, ``dtypes`` and ``features`` and overrides the
    operations it claims. Tensors passed to the operations come from ``to_device``; the
    suite converts at the boundary so that benchmarks time only the operation.

    The defaults suit a NumPy implementation on the CPU.
    """

    name: str = ""
    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float64", "float32")
    features: frozenset[str] = frozenset()
    #: Precision the arithmetic really runs in where it is lower than the dtype's, e.g.
    #: ``{"float32": "tf32"}`` for TF32 tensor cores. The conformance error bound judges
    #: that dtype's results at this precision, and reports say so.
    reduced_precision: Mapping[str, str] = MappingProxyType({})
    #: Cases declared up front as not run (see :class:`Limit`); ``Unsupported`` raised for
    #: a case no limit covers is a conformance failure ("undeclared refusal").
    limits: Sequence[Limit] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap each operation the subclass defines in the boundary check of its arrays."""
        super().__init_subclass__(**kwargs)
        for op in OPERATIONS:
            if op in cls.__dict__:
                setattr(cls, op, validated(op, cls.__dict__[op]))

    # -- data movement ---------------------------------------------------------------
    def to_device(self, array: np.ndarray, device: str) -> Any:
        """NumPy array -> native tensor on ``device``."""
        self._check_device(device)
        return np.ascontiguousarray(array)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        """Native tensor -> NumPy array, blocking until it is ready."""
        return np.asarray(tensor)

    def tensor_info(self, tensor: Any) -> tuple[tuple[int, ...] | None, str]:
        """The logical (NCHW) shape and the dtype name of a native tensor, which the
        boundary check compares with the params; override where tensors are held in
        another layout or have no ``.shape``/``.dtype``."""
        return tensor_info(tensor)

    def synchronize(self, device: str) -> None:
        """Wait for all queued work on ``device``."""

    def ready(self, result: Any) -> None:
        """Block until ``result`` is computed: benchmarks time a call up to here (v4).

        Default: synchronize every device this implementation runs on. A lazy or
        asynchronous library (JAX's dispatch, a deferred graph) makes its result real here."""
        for device in self.devices:
            self.synchronize(device)

    def _check_device(self, device: str) -> None:
        if device not in self.devices:
            raise ValueError(
                f"device={device!r}: implementation {self.name!r} runs on {self.devices}"
            )

    # -- operations ------------------------------------------------------------------
    def conv2d(self, x: Any, w: Any, b: Any, params: ConvParams) -> Any:
        """y = cross-correlation of x with w (+ b). Shapes per ``params``."""
        raise self._not_implemented("conv2d")

    def conv2d_backward(self, x: Any, w: Any, dy: Any, params: ConvParams) -> tuple[Any, Any, Any]:
        """(dx, dw, db) for upstream gradient dy; db is always ``dy.sum((0, 2, 3))``."""
        raise self._not_implemented("conv2d_backward")

    def max_pool2d(self, x: Any, params: PoolParams) -> Any:
        raise self._not_implemented("max_pool2d")

    def max_pool2d_backward(self, x: Any, dy: Any, params: PoolParams) -> Any:
        """dx; each window's gradient goes to its first maximum in row-major order."""
        raise self._not_implemented("max_pool2d_backward")

    def avg_pool2d(self, x: Any, params: PoolParams) -> Any:
        raise self._not_implemented("avg_pool2d")

    def avg_pool2d_backward(self, x: Any, dy: Any, params: PoolParams) -> Any:
        raise self._not_implemented("avg_pool2d_backward")

    def _not_implemented(self, op: str) -> NotImplementedError:
        return NotImplementedError(f"implementation {self.name!r} does not implement {op}")

    # -- description -----------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What the implementation claims, as data (for listings and certificates)."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "devices": list(self.devices),
            "dtypes": list(self.dtypes),
            "features": sorted(self.features),
            "reduced_precision": dict(self.reduced_precision),
            "limits": [{"reason": lim.reason, "ops": sorted(lim.ops), "features": sorted(lim.features),
                        "dtypes": sorted(lim.dtypes), "devices": sorted(lim.devices),
                        "when": _describe_predicate(lim.when)} for lim in self.limits],
            "environment": self.environment(),
        }

    def environment(self) -> dict[str, Any]:
        """Versions and flags that affect results (overridden by framework adapters)."""
        return {"numpy": np.__version__}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _describe_predicate(when: Callable[[Any], bool] | None) -> str | None:
    if when is None:
        return None
    return getattr(when, "__doc__", None) or getattr(when, "__qualname__", repr(when))


#: What a plug-in's ``name`` may be: it names files and appears in reports (contract v3).
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Precisions ``reduced_precision`` may declare.
PRECISIONS = ("float64", "float32", "tf32", "float16", "bfloat16")


def _members(field: str, value: Any, allowed: Sequence[str]) -> list[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{field}={value!r}: must be a collection (a tuple or set) of {', '.join(allowed)}, "
                         "not a string")
    values = list(value)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"{field}={values!r}: {', '.join(map(repr, unknown))} unknown; allowed: "
                         f"{', '.join(allowed)}")
    return values


def check_claims(name: Any, devices: Any, dtypes: Any, features: Any, reduced_precision: Any) -> None:
    """Raise ValueError naming the field and the allowed values when a claim is malformed (contract v3)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"name={name!r}: must be a string of 1 to 64 letters, digits, '-', '_' or '.'")
    _members("devices", devices, DEVICES)
    _members("dtypes", dtypes, DTYPES)
    _members("features", features, FEATURES)
    if not isinstance(reduced_precision, Mapping):
        raise ValueError(f"reduced_precision={reduced_precision!r}: must be a mapping of dtype to precision")
    _members("reduced_precision keys", list(reduced_precision), DTYPES)
    _members("reduced_precision values", list(reduced_precision.values()), PRECISIONS)


def check_implementation(impl: Implementation) -> None:
    """:func:`check_claims` on an instance's claims."""
    check_claims(impl.name, impl.devices, impl.dtypes, impl.features, impl.reduced_precision)
