"""Peak memory is reported only where the measuring tool can see the allocations."""

import numpy as np

from benchmarks import measure


def test_numpy_allocations_are_measured_by_tracemalloc():
    peak, how = measure.peak_memory(lambda: np.ones((256, 256)), "cpu", "im2col", False)
    assert peak is not None and peak >= 256 * 256 * 8 and how.startswith("tracemalloc")


class ForeignTensor:
    """Stands in for a framework tensor whose memory NumPy's tracemalloc hook never sees."""


def test_framework_tensors_on_cpu_are_reported_as_not_measured():
    peak, how = measure.peak_memory(lambda: ForeignTensor(), "cpu", "tensorflow", False)
    assert peak is None and "tensorflow allocates outside NumPy" in how
