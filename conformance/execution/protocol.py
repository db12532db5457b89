"""What passes between the certifier and its worker process: outcomes and the progress word."""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

#: How one call ended (see :class:`Outcome`).
OutcomeKind = Literal["ok", "limited", "unsupported", "raised", "died"]


@dataclass
class Outcome:
    """What one call of an implementation gave, wherever it ran (this process or a worker).

    ``kind``: ``ok`` (``found`` holds the outputs, ``after`` the inputs as they were after
    the call), ``limited`` (a declared limit covers the case; ``message`` is its reason),
    ``unsupported`` (``Unsupported`` raised; ``message`` is its reason), ``raised`` (any
    other exception) or ``died`` (the worker crashed or ran out of time).
    """

    kind: OutcomeKind
    found: list[np.ndarray] = field(default_factory=list)
    after: dict[str, np.ndarray] = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0


def map_progress(path: str) -> mmap.mmap:
    """The 8-byte shared page where the worker marks the case it is running."""
    with open(path, "r+b") as f:
        return mmap.mmap(f.fileno(), 8)
