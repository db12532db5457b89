"""The plug-in contract (v1): the base class every implementation subclasses.

See ``docs/CONTRACT.md`` (and the README's "Plug in your implementation") for the rules.
Layout at the contract is logical NCHW; operations are cross-correlation.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from .geometry import ConvParams, PoolParams

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


class Unsupported(Exception):
    """Raised by an implementation for one case it cannot run; the reason is reported."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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

    # -- data movement ---------------------------------------------------------------
    def to_device(self, array: np.ndarray, device: str) -> Any:
        """NumPy array -> native tensor on ``device``."""
        self._check_device(device)
        return np.ascontiguousarray(array)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        """Native tensor -> NumPy array, blocking until it is ready."""
        return np.asarray(tensor)

    def synchronize(self, device: str) -> None:
        """Wait for all queued work on ``device``."""

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
            "environment": self.environment(),
        }

    def environment(self) -> dict[str, Any]:
        """Versions and flags that affect results (overridden by framework adapters)."""
        return {"numpy": np.__version__}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
