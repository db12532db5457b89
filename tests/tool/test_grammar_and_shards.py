"""One command-line grammar for every command, and sharded certification joined by merge."""

import argparse

import pytest

import benchmarks.__main__ as bench_main
import reports.__main__ as reports_main
from benchmarks import cudnn_comparison
from conformance import cli
from conformance.verdicts.certify import certify
from conformance.verdicts.merge import MergeError, merge
from convcert import cli as tool
from implementations.arguments import shard, shard_of


def test_several_values_are_kept_whichever_way_they_are_written_in_conformance():
    args = cli.parser().parse_args(["matrix", "--impl", "a", "b", "--impl", "c"])
    assert args.impl == ["a", "b", "c"]
    args = cli.parser().parse_args(["certify", "x", "--dtype", "float32", "--dtype", "float64", "float16"])
    assert args.dtype == ["float32", "float64", "float16"]


def _parsed(monkeypatch, module, target, argv, main=None):
    seen = {}

    def capture(args, *rest):
        seen["args"] = args
        raise SystemExit(0)

    monkeypatch.setattr(module, target, capture)
    with pytest.raises(SystemExit):
        (main or module.main)(argv)
    return seen["args"]


def test_benchmarks_keep_every_repeated_impl_instead_of_the_last(monkeypatch):
    args = _parsed(monkeypatch, bench_main, "run", ["run", "--impl", "torch", "--impl", "im2col", "naive"])
    assert args.impl == ["torch", "im2col", "naive"]


def test_reports_keep_every_results_path_and_drop_the_default(monkeypatch):
    args = _parsed(monkeypatch, reports_main.data, "load", ["--results", "a.json", "--results", "b"],
                   reports_main.main)
    assert args == ["a.json", "b"]


def test_a_default_list_is_replaced_by_the_first_use_then_extended():
    p = argparse.ArgumentParser()
    cudnn_comparison.add_arguments(p)
    assert p.parse_args([]).dtypes == ["float16", "float32"]
    assert p.parse_args(["--dtypes", "float32", "--dtypes", "bfloat16"]).dtypes == ["float32", "bfloat16"]


def test_shards_are_disjoint_cover_everything_and_balance():
    items = list(range(23))
    parts = [shard_of(items, (k, 4)) for k in range(1, 5)]
    assert sorted(sum(parts, [])) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert shard("2/4") == (2, 4)
    for bad in ("0/3", "4/3", "3", "a/b"):
        with pytest.raises(argparse.ArgumentTypeError, match="K/N"):
            shard(bad)


def _comparable(data):
    data = {k: v for k, v in data.items() if k not in ("started", "seconds")}
    data["results"] = [{k: v for k, v in r.items() if k != "seconds"} for r in data["results"]]
    data["implementation"] = {k: v for k, v in data["implementation"].items() if k != "log"}
    return data


@pytest.mark.parametrize("spec", ["im2col", "conformance.mutants:BiasIgnored"])
def test_merged_shards_equal_the_unsharded_certificate_apart_from_times(spec):
    whole = certify(spec, quick=True, dtypes=["float64", "float32"], isolate=False)
    parts = [certify(spec, quick=True, dtypes=["float64", "float32"], isolate=False, shard=(k, 3))
             for k in (3, 1, 2)]
    assert all(p.shard["count"] == 3 for p in parts)
    merged = merge([p.to_dict() for p in parts])
    assert _comparable(merged.to_dict()) == _comparable(whole.to_dict())
    assert merged.passed == whole.passed


def test_merge_refuses_a_missing_part():
    parts = [certify("im2col", quick=True, dtypes=["float64"], isolate=False, shard=(k, 3)) for k in (1, 2)]
    with pytest.raises(MergeError, match="parts 1..3"):
        merge([p.to_dict() for p in parts])


def test_convcert_help_names_the_command_and_gives_examples(capsys):
    assert tool.main(["certify", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: convcert certify") and "--shard K/N" in out
    assert "examples:\n  convcert certify ./myconv.py:MyConv --quick" in out
    assert tool.main([]) == 2 and "commands:" in capsys.readouterr().out
    assert tool.main(["nosuch"]) == 2 and "unknown command" in capsys.readouterr().err


def test_convcert_certify_in_shards_then_merge_writes_the_unsharded_certificate(tmp_path, capsys):
    import json

    common = ["certify", "conformance.mutants:BiasIgnored", "--quick", "--dtype", "float64", "--no-progress",
              "--sweep", "0"]
    assert tool.main([*common, "--out", str(tmp_path / "whole")]) == 1
    for k in (1, 2):
        assert tool.main([*common, "--shard", f"{k}/2", "--out", str(tmp_path / "parts")]) in (0, 1)
    assert "[part 2 of 2: `convcert merge` the parts" in capsys.readouterr().out
    parts = sorted((tmp_path / "parts").glob("shard-*-of-2/*.json"))
    assert len(parts) == 2
    assert tool.main(["merge", *map(str, parts), "--out", str(tmp_path / "merged")]) == 1
    merged = next((tmp_path / "merged").glob("*.json"))
    whole = tmp_path / "whole" / merged.name
    assert _comparable(json.loads(merged.read_text())) == _comparable(json.loads(whole.read_text()))
    assert tool.main(["merge", str(parts[0])]) == 2
    assert "need parts 1..2 of 2" in capsys.readouterr().err
