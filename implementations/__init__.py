"""convcert implementations: the plug-in contract and the registry of implementations.

Importing this package loads NumPy only; framework adapters import their framework when
they are first used (``get("torch")``), never here.
"""

from .contract import FEATURES, OPERATIONS, OPTIONS, Implementation, Limit, Unsupported
from .geometry import ConvParams, PoolParams
from .registry import ENTRY_POINT_GROUP, available, get, load, registered, unavailable_reason

__all__ = [
    "ConvParams",
    "ENTRY_POINT_GROUP",
    "FEATURES",
    "Implementation",
    "Limit",
    "OPERATIONS",
    "OPTIONS",
    "PoolParams",
    "Unsupported",
    "available",
    "get",
    "load",
    "registered",
    "unavailable_reason",
]
