"""One certification spread over several worker processes gives the certificate one worker gives."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conformance.execution import pool as pool_module
from conformance.execution.pool import Slots, WorkerPool
from conformance.execution.worker import Worker
from conformance.verdicts.certificate import Certificate
from conformance.verdicts.certify import certify

HERE = Path(__file__).with_name("misbehaving.py")


@pytest.fixture(autouse=True)
def grow_at_once(monkeypatch):
    """Helpers start with the first stream (these certifications take a second or two)."""
    monkeypatch.setattr(pool_module, "GROW_AFTER", 0.0)


def _verdict(cert: Certificate) -> dict:
    """The certificate without what the clock, the machine's load or the worker's log file change."""
    data = cert.to_dict()
    for key in ("started", "seconds", "implementation"):
        data.pop(key)
    data["sweep"].pop("seconds", None)
    for r in data["results"]:
        r.pop("seconds")
    return data


def test_two_workers_give_the_certificate_of_one_with_every_case_run_once():
    """im2col's quick certification with a short sweep: the same statuses, coverage digests, calls
    per operation and results in the same order, from 1 and from 2 worker processes."""
    serial = certify("im2col", dtypes=["float32"], quick=True, sweep_examples=4)
    with WorkerPool(Worker("im2col"), 2) as pool:
        parallel = certify("im2col", dtypes=["float32"], quick=True, sweep_examples=4, worker=pool)
        assert pool.most == 2 and pool.size == 1  # the certification's end closed the helper
    assert serial.coverage["sweep_problems"] > 0 and serial.coverage["catalogue_cases"] > 10
    assert _verdict(parallel) == _verdict(serial)


def test_crashes_in_two_workers_fail_the_same_cases_as_in_one():
    """A plug-in that segfaults in every grouped convolution: each crash fails its own case (in
    whichever worker it ran, which starts afresh) and every other feature passes."""
    spec = f"{HERE}:Segfaults"
    serial = certify(spec, quick=True)
    parallel = certify(spec, quick=True, workers=2)
    for cert in (serial, parallel):
        crashed = {r.case for r in cert.results if r.op == "conv2d" and r.status == "fail"}
        grouped = {r.case for r in cert.results if r.op == "conv2d" and "-g2-" in r.case}
        assert crashed == grouped and grouped, [(r.case, r.reason) for r in cert.results if r.case in crashed]
        assert {s.feature for s in cert.features if s.status == "fail"} == {"groups"}
    assert [(r.case, r.status) for r in parallel.results if r.op != "conv2d_backward"] == [
        (r.case, r.status) for r in serial.results if r.op != "conv2d_backward"]


def test_the_pool_keeps_the_order_of_the_stream_and_runs_each_case_once():
    """Outcomes come back in the order of the cases, though two workers answer them."""
    from conformance.catalogue.selection import quick_cases
    from conformance.judging.judge import begin

    cases = quick_cases()[:40]
    with WorkerPool(Worker("im2col"), 2) as pool:
        pendings = [begin(pool, c, "cpu", "float32", spec="im2col") for c in cases]
        got = list(pool.stream(pendings, lambda p: p.request))
        assert pool.size == 2
    assert [p for p, _ in got] == pendings
    assert all(o is None or o.kind == "ok" for _, o in got)


def test_slots_give_a_helper_only_when_nothing_waits_and_a_slot_is_free():
    slots = Slots(2, waiting=2)
    slots.begin()
    assert not slots.take()  # one more certification waits for the free slot
    slots.begin()
    assert not slots.take()  # both slots busy
    slots.end()
    assert slots.take() and not slots.take()
    slots.give_back(1)
    assert slots.busy == 1
    with pytest.raises(ValueError, match="total=0"):
        Slots(0)


def test_a_pool_refuses_no_workers():
    with Worker("im2col") as worker, pytest.raises(ValueError, match="workers=0"):
        WorkerPool(worker, 0)


def test_a_pool_on_shared_slots_takes_a_free_slot_and_gives_it_back():
    """As in a matrix whose other certifications ended: the one running takes the free slot for a
    second worker, certifies as one worker would, and gives the slot back at its end."""
    slots = Slots(2)
    slots.begin()
    serial = certify("im2col", dtypes=["float64"], quick=True)
    with WorkerPool(Worker("im2col"), slots) as pool:
        shared = certify("im2col", dtypes=["float64"], quick=True, worker=pool)
    assert pool.most == 2 and slots.busy == 1
    assert _verdict(shared) == _verdict(serial)


def test_a_stream_left_early_stops_its_workers_and_the_pool_runs_the_next_one():
    """A caller that stops reading (an interrupted stage) leaves no worker running its cases, and the
    next stream starts them afresh; a caller slower than the workers holds them at the window."""
    from conformance.catalogue.selection import quick_cases
    from conformance.judging.judge import begin

    cases = quick_cases() * 2
    assert len(cases) > pool_module.WINDOW + 8
    with WorkerPool(Worker("im2col"), 2) as pool:
        pendings = [begin(pool, c, "cpu", "float64", spec="im2col") for c in cases]
        stream = pool.stream(pendings, lambda p: p.request)
        assert [next(stream)[0] for _ in range(5)] == pendings[:5]
        stream.close()
        assert not pool.primary.retired and not any(h.retired for h in pool.helpers)
        got = []
        for p, outcome in pool.stream(pendings, lambda p: p.request):
            got.append((p, outcome))
            if len(got) == 1:
                time.sleep(1.0)  # the workers run up to the window meanwhile, then wait
        assert [p for p, _ in got] == pendings
        assert all(o is None or o.kind == "ok" for _, o in got)


def test_a_certification_of_quick_cases_never_starts_a_second_worker(monkeypatch):
    """Cases that take milliseconds finish before a second worker would pay for its start."""
    monkeypatch.setattr(pool_module, "GROW_AFTER", 60.0)
    with WorkerPool(Worker("im2col"), 2) as pool:
        cert = certify("im2col", dtypes=["float32"], quick=True, worker=pool)
        assert pool.most == 1
    assert cert.passed
