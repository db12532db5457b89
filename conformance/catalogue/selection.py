"""Which cases run: the whole catalogue (tiny and scale problems), a quick subset, one case by name."""

from __future__ import annotations

from collections.abc import Iterable

from .cases import CATALOGUE, Case, Problem, problem_from_name
from .corpus import CORPUS
from .scale import SCALE


def catalogue() -> tuple[Problem, ...]:
    """Every problem a full certification runs: :data:`CATALOGUE` (golden data), the scale
    set (``conformance.catalogue.scale``) and the regression corpus
    (``conformance.catalogue.corpus``), the last two with references computed at run time."""
    return CATALOGUE + SCALE + CORPUS


def all_cases(problems: Iterable[Problem] | None = None) -> list[Case]:
    return [case for problem in (catalogue() if problems is None else problems) for case in problem.cases()]


def quick_cases(problems: Iterable[Problem] | None = None) -> list[Case]:
    """A representative subset: the first case of each (operation, filed-under) group of
    ``problems`` (default: :data:`CATALOGUE`, then every case of the regression corpus)."""
    seen: set = set()
    out = []
    for case in all_cases(CATALOGUE if problems is None else problems):
        key = (case.op, case.filed_under)
        if key not in seen:
            seen.add(key)
            out.append(case)
    return out + (all_cases(CORPUS) if problems is None else [])


def find_case(name: str, problems: Iterable[Problem] | None = None) -> Case:
    """The catalogue (or scale) case called ``name`` (a trailing ``-<dtype>`` is ignored)."""
    cases = {c.name: c for c in all_cases(problems)}
    if name in cases:
        return cases[name]
    base = name.rsplit("-", 1)[0]
    if base in cases:
        return cases[base]
    # any other problem, named by its descriptor (a sweep's)
    try:
        return problem_from_name(name)
    except ValueError as exc:
        raise ValueError(f"case={name!r}: no such case in the catalogue ({len(cases)} cases) "
                         f"and not a problem descriptor: {exc}") from exc
