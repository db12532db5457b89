"""The CPU condition of a verdict: which CPU path of its framework an implementation ran.

A framework may compute on the CPU through different kernels depending on the machine:
TensorFlow 2.21 turns oneDNN on by default on CPUs with AVX-512 (VNNI, BF16) and off
elsewhere, and its oneDNN ``Conv2D`` is wrong where the W stride exceeds the input (the
regression corpus keeps that case), so the same TensorFlow passes on one machine and fails
on another. The verdict says which path it judged, read from what the adapter's
``environment()`` reports; an implementation that reports none gets an empty condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def cpu_path(env: Mapping[str, Any]) -> str:
    """The framework's CPU path in ``env`` (an adapter's ``environment()``), "" when it reports none."""
    isa = f" ({env['cpu_isa']} CPU)" if env.get("cpu_isa") else ""
    if "tensorflow" in env and "onednn" in env:
        state = "oneDNN on" if env["onednn"] else "oneDNN off (Eigen kernels)"
        return f"TensorFlow {env['tensorflow']}: {state}{isa}"
    if "jax" in env:
        flags = env.get("XLA_FLAGS")
        return f"JAX {env['jax']}: XLA CPU" + (f" (XLA_FLAGS={flags})" if flags else "")
    if "torch" in env and "mkldnn" in env:
        kernels = "oneDNN (mkldnn) available" if env["mkldnn"] else "no oneDNN (mkldnn)"
        return f"torch {env['torch']}: {kernels}"
    return ""
