"""The contract's dtypes: their names and their NumPy array types.

NumPy has no bfloat16; ``ml_dtypes`` supplies it, imported only when asked for, so that
importing this module needs NumPy alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Every dtype of the contract, widest first (the order reports use).
DTYPES = ("float64", "float32", "float16", "bfloat16")


def dtype_name(array: Any) -> str:
    """Contract name of an array's dtype ('float32', 'bfloat16', ...)."""
    return str(np.dtype(array.dtype).name) if hasattr(array, "dtype") else type(array).__name__


def numpy_dtype(name: str) -> np.dtype:
    """NumPy dtype of a contract dtype name (bfloat16 comes from ml_dtypes)."""
    if name not in DTYPES:
        raise ValueError(f"dtype={name!r}: must be one of {DTYPES}")
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


__all__ = ["DTYPES", "dtype_name", "numpy_dtype"]
