"""Progress through every stage of a certification, as plain lines where stderr is not a terminal."""

from __future__ import annotations

import re
import time

from conformance.verdicts import progress as progress_module
from conformance.verdicts.certify import certify
from conformance.verdicts.progress import StageProgress


def test_plain_lines_give_counts_failures_and_the_time_left(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress_module, "_now", lambda: now[0])
    bar = StageProgress("certify x", True, rich=False)
    bar._stop.set()  # no heartbeat: the clock is ours
    bar.begin("sweep", 4)
    now[0] = 10.0
    bar.advance(failed=True, status="case-a")
    assert bar.line() == "[certify x] sweep 1/4 cases, 1 failed, 10s, ETA 30s, case-a"
    now[0] = 80.0
    bar.advance()
    assert bar.line() == "[certify x] sweep 2/4 cases, 1 failed, 1m20s, ETA 1m20s, case-a"
    assert bar.line(final=True) == "[certify x] sweep 2/4 cases, 1 failed, 1m20s (done)"


def test_a_stage_that_goes_quiet_is_printed_again_by_the_heartbeat(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "HEARTBEAT", 0.2)
    bar = StageProgress("certify x", True, rich=False)
    bar.begin("diagnoses", None, "calls")
    time.sleep(1.6)  # one slow call: nothing advances
    bar.close()
    err = capsys.readouterr().err
    assert err.count("[certify x] diagnoses 0 calls") >= 2 and err.rstrip().endswith("(done)")


def test_a_certification_reports_each_of_its_stages(capsys):
    certify("conformance.mutants:StrideOffByOne", dtypes=["float64"], quick=True, min_calls=0,
            sweep_examples=1, progress=True)
    err = capsys.readouterr().err
    title = re.escape("[certify mutant-stride-off-by-one]")
    stages = re.findall(rf"^{title} ([a-z: ]+?) \d", err, flags=re.M)
    assert {"catalogue", "sweep", "determinism: failures again", "determinism: repeated calls",
            "determinism: identical calls", "experiments", "diagnoses"} <= set(stages), err
    assert re.search(rf"^{title} catalogue (\d+)/\1 cases, \d+ failed, .*\(done\)$", err, flags=re.M), err
