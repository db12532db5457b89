"""Device-time strategies on the CPU, with a fake clock, fake events and a fake queue."""

import numpy as np
import pytest

from benchmarks import timers
from implementations import registry


class FakeDevice:
    """A GPU queue: a call enqueues a kernel of ``kernel_s``; events stamp device time;
    synchronize drains the queue. The host pays ``launch_s`` per call and ``block_s`` per block."""

    def __init__(self, kernel_s=1e-3, launch_s=1e-5, block_s=6e-5):
        self.kernel_s, self.launch_s, self.block_s = kernel_s, launch_s, block_s
        self.host = 0.0
        self.device = 0.0  # when the queue's last kernel ends
        self.log = []

    def clock(self):
        return self.host

    def call(self):
        self.host += self.launch_s
        self.device = max(self.device, self.host) + self.kernel_s
        self.log.append("call")

    def flush(self):
        self.device = max(self.device, self.host) + 5e-4
        self.log.append("flush")

    def synchronize(self):
        self.host = max(self.host, self.device) + self.block_s

    def event(self):
        dev = self

        class Event:
            def record(self):
                self.at = max(dev.device, dev.host)
                dev.log.append("event")

            def elapsed_time(self, end):
                return (end.at - self.at) * 1e3

        return Event()


def test_events_measure_the_kernel_not_the_host_or_the_block():
    dev = FakeDevice()
    times = timers.EventTimer(dev.event, dev.synchronize).times(dev.call, 10)
    # Only the first pair sees an idle queue (the launch gap); then the queue stays full.
    assert times == pytest.approx([dev.kernel_s + dev.launch_s] + [dev.kernel_s] * 9)


def test_cold_cache_flushes_before_each_call_outside_its_events():
    dev = FakeDevice()
    timer = timers.EventTimer(dev.event, dev.synchronize, flush=dev.flush)
    times = timer.times(dev.call, 3)
    assert times == pytest.approx([dev.kernel_s] * 3)  # the flush never counts (and keeps the queue full)
    assert dev.log == ["flush", "event", "call", "event"] * 3
    assert "L2 flushed" in timer.method


def test_amortized_timing_spreads_one_block_over_many_calls():
    dev = FakeDevice()
    per_call = timers.AmortizedTimer(dev.synchronize, calls=100, clock=dev.clock).times(dev.call, 3)
    blocking = timers.HostTimer(dev.synchronize, clock=dev.clock).times(dev.call, 3)
    assert per_call == pytest.approx([dev.kernel_s + (dev.launch_s + dev.block_s) / 100] * 3, rel=1e-6)
    assert blocking == pytest.approx([dev.launch_s + dev.kernel_s + dev.block_s] * 3)


@pytest.mark.parametrize("make", [lambda d: timers.HostTimer(d.synchronize),
                                  lambda d: timers.AmortizedTimer(d.synchronize)])
def test_rounds_must_be_positive(make):
    with pytest.raises(ValueError, match="rounds=0"):
        make(FakeDevice()).times(lambda: None, 0)


def test_the_strategy_is_chosen_by_device_and_framework():
    im2col = registry.get("im2col")
    placed = {"x": np.zeros(3)}
    assert isinstance(timers.device_timer(im2col, "cpu", placed), timers.HostTimer)
    # no CUDA events for NumPy arrays: amortised
    assert isinstance(timers.device_timer(im2col, "cuda", placed), timers.AmortizedTimer)


def test_an_implementation_may_bring_its_own_device_timer():
    own = timers.AmortizedTimer(lambda: None, calls=7)

    class WithTimer(type(registry.get("im2col"))):
        def device_timer(self, device, cold_cache):
            return own

    assert timers.device_timer(WithTimer(), "cuda", {}) is own


def test_torch_tensors_on_a_gpu_get_cuda_events(monkeypatch):
    torch = pytest.importorskip("torch")
    made = {}
    monkeypatch.setattr(timers, "torch_event_timer", lambda cold_cache: made.setdefault("t", cold_cache))
    timers.device_timer(registry.get("im2col"), "cuda", {"x": torch.zeros(2)}, cold_cache=True)
    assert made == {"t": True}
