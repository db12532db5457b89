"""The command-line grammar every convcert command shares.

An option that takes several values accepts them both ways, ``--impl a b`` and
``--impl a --impl b`` (and any mix): every value given is kept, in order, and the first
use replaces the option's default. ``--shard K/N`` names one of N deterministic parts of
a run, so that N machines or CI jobs share it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class Several(argparse.Action):
    """``action=Several``: one or more values per use, repeatable, all uses kept."""

    def __init__(self, option_strings: Sequence[str], dest: str, nargs: Any = "+", **kwargs: Any):
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest, None)
        kept = [] if current is None or current is self.default else list(current)
        setattr(namespace, self.dest, kept + list(values))


def shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)`` with ``1 <= K <= N`` (an ``argparse`` type)."""
    k, sep, n = text.partition("/")
    try:
        index, count = int(k), int(n)
    except ValueError:
        index = count = 0
    if not sep or not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard={text!r}: must be K/N with 1 <= K <= N, e.g. 2/4")
    return index, count


def shard_of(items: Sequence[T], part: tuple[int, int] | None) -> list[T]:
    """Part ``K`` of ``N`` of ``items``: every N-th item from the K-th (1-based). The parts are
    disjoint, cover ``items`` and differ in size by at most one; ``None`` keeps them all."""
    if part is None:
        return list(items)
    index, count = part
    return list(items[index - 1::count])


def add_shard_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--shard", type=shard, default=None, metavar="K/N",
                        help=f"run only part K of N of the {what} (every N-th from the K-th), so that N "
                             "jobs or machines share one run")
