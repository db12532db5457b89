"""merge judges the parts again: statuses from their evidence, one run, each part once, every case.

Each test edits the certificate files of a real two-part run the way an author wanting a
pass would, and expects ``convcert merge`` to refuse with exit 2 and one line naming the
part and what is wrong.
"""

import copy
import json

import pytest

from conformance.judging.result import CaseResult
from conformance.verdicts.certificate import Certificate
from conformance.verdicts.certify import certify
from conformance.verdicts.merge import MergeError, merge
from convcert import cli as tool

WRONG = "conformance.mutants:BiasIgnored"


def _run(k, **options):
    return certify(WRONG, quick=True, dtypes=["float64"], isolate=False, shard=(k, 2), sweep_examples=2,
                   **options).to_dict()


@pytest.fixture(scope="module")
def parts():
    return [_run(1), _run(2)]


@pytest.fixture
def fresh(parts):
    return copy.deepcopy(parts)


def _merge_files(tmp_path, capsys, documents):
    paths = []
    for i, d in enumerate(documents):
        path = tmp_path / f"part{i + 1}.json"
        path.write_text(json.dumps(d))
        paths.append(str(path))
    code = tool.main(["merge", *paths, "--out", str(tmp_path / "merged")])
    err = capsys.readouterr().err
    return code, err


def test_the_untouched_parts_merge_to_the_failure_they_hold(tmp_path, capsys, fresh):
    code, err = _merge_files(tmp_path, capsys, fresh)
    assert code == 1 and not err


def test_statuses_edited_to_pass_are_judged_again_from_their_ratios(tmp_path, capsys, fresh):
    edited = 0
    for d in fresh:
        for r in d["results"]:
            if r["status"] == "fail":
                r["status"], edited = "pass", edited + 1
    assert edited
    code, err = _merge_files(tmp_path, capsys, fresh)
    assert code == 2 and err.count("\n") == 1
    assert "part1.json" in err and "status pass stored, its checks say fail" in err


def test_a_failed_check_marked_passed_or_given_a_small_ratio_is_caught(fresh):
    failing = next(r for r in fresh[0]["results"] if r["status"] == "fail")
    check = next(c for c in failing["checks"] if c["passed"] is False)
    failing["status"], check["passed"] = "pass", True
    with pytest.raises(MergeError, match="stored as passed"):
        merge(fresh)
    check["ratio"] = 0.5
    with pytest.raises(MergeError, match=r"\|found - expected\| / bound"):
        merge(fresh)


def test_part_one_given_twice_as_part_two_is_refused(tmp_path, capsys, fresh):
    twice = copy.deepcopy(fresh[0])
    twice["shard"]["index"] = 2
    code, err = _merge_files(tmp_path, capsys, [fresh[0], twice])
    assert code == 2 and "part2.json: case cpu/float64/" in err and "again (also in" in err
    code, err = _merge_files(tmp_path, capsys, [fresh[0], fresh[0]])
    assert code == 2 and "part 1/2 again" in err


def test_a_part_run_with_other_options_is_refused_naming_the_option(tmp_path, capsys, fresh):
    weaker = _run(2, min_calls=0)
    code, err = _merge_files(tmp_path, capsys, [fresh[0], weaker])
    assert code == 2 and "part2.json: differs from" in err and "--min-calls: 0 vs 120" in err
    fresh[1]["shard"]["seed"] = 7
    with pytest.raises(MergeError, match="in seed: 7 vs 0"):
        merge(fresh)


def test_a_planned_case_left_out_is_refused(fresh):
    dropped = fresh[1]["results"].pop(0)
    fresh[1]["shard"]["planned"] -= 1
    with pytest.raises(MergeError, match=f"result 1 is .*plan has cpu/float64/{dropped['case']}"):
        merge(fresh)


def test_a_not_claimed_status_for_a_claimed_case_is_refused(fresh):
    failing = next(r for r in fresh[0]["results"] if r["status"] == "fail")
    failing["status"], failing["checks"] = "not claimed", []
    with pytest.raises(MergeError, match="status not claimed stored, but .* claims all it needs"):
        merge(fresh)


@pytest.mark.parametrize("edit, says", [
    (lambda d: [d], "must be a JSON object, not list"),
    (lambda d: {**d, "shard": 5}, "shard=5: must be dict"),
    (lambda d: {**d, "results": "abc"}, "results='abc': must be list"),
    (lambda d: {**d, "shard": {**d["shard"], "count": 1e20}}, "shard.count=1e+20: must be int"),
    (lambda d: {**d, "results": [{"case": 1}]}, "results[0].status: missing"),
])
def test_a_malformed_part_is_one_line_and_exit_2(tmp_path, capsys, fresh, edit, says):
    code, err = _merge_files(tmp_path, capsys, [edit(fresh[0]), fresh[1]])
    assert code == 2 and err.count("\n") == 1 and err.startswith("not merged: ")
    assert "part1.json" in err
    assert says in err


def test_records_read_back_as_they_were_written(parts):
    for d in parts:
        cert = Certificate.from_dict(d)
        again = cert.to_dict()
        assert again == d
        for r in d["results"]:
            assert CaseResult.from_dict(r).to_dict() == r


def test_a_certificate_is_frozen():
    cert = Certificate.from_dict(_run(1))
    with pytest.raises(AttributeError):
        cert.state = "complete"  # type: ignore[misc]
