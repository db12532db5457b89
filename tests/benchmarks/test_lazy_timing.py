"""A lazy plug-in (its operation returns a promise, computed in ``ready`` or ``to_numpy``) is
timed for its work: the timed region ends with the implementation's ``ready(result)``."""

from dataclasses import replace

import pytest

from benchmarks import storage
from benchmarks.harness import Run
from benchmarks.storage import ResultFile
from benchmarks.timed_cases import TimedCase
from benchmarks.workloads import LAYERS, Workload, get_profile
from implementations import registry

WORK_S = 0.03
CONV = Workload(LAYERS["lenet5.c3"], 1)


class Deferred:
    """A result not computed yet: ``value()`` does the work (once)."""

    def __init__(self, thunk):
        self.thunk, self.done = thunk, None

    def value(self):
        if self.done is None:
            import time

            time.sleep(WORK_S)  # the deferred work: far longer than creating the promise
            self.done = self.thunk()
        return self.done


class Lazy(type(registry.get("im2col"))):
    name = "lazy"

    def conv2d(self, x, w, b, params):
        parent = super().conv2d
        return Deferred(lambda: parent(x, w, b, params))

    def to_numpy(self, tensor):
        return super().to_numpy(tensor.value() if isinstance(tensor, Deferred) else tensor)

    def ready(self, result):
        result.value()


def test_a_lazy_implementations_time_includes_its_deferred_work(tmp_path):
    profile = replace(get_profile("smoke"), workloads=(CONV,))
    run = Run(profile, {"lazy": Lazy()}, ("cpu",), ("float32",),
              ResultFile(tmp_path / "r.json", {"machine": "m"}))
    try:
        run.run_case(TimedCase("lazy", "cpu", "float32", CONV, "forward"))
    except pytest.skip.Exception:
        pass
    (result,) = storage.read(run.result_file.path).results
    assert result.status == "ok", result.check
    assert result.host_time.summary.min_s >= WORK_S  # without ready() it is microseconds
