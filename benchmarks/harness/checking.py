"""Checking a timed case's answers: the first call, the last timed call, a call on changed inputs.

The judging (reference, bound, comparison) is conformance's (:func:`benchmarks.timed_cases.check_outputs`);
what is the benchmarks' own is here: which calls are checked, and on which inputs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from implementations import Implementation

from .. import measure
from .. import timed_cases as tc
from ..timed_cases import TimedCase


def check_first(impl: Implementation, case: TimedCase, out: Any) -> dict[str, Any]:
    """The first call's output ``out`` against its float64 reference; when the timed
    problem is too big for a float64 reference, a call of the same layer at a smaller batch."""
    checked = tc.check_workload(case.workload, case.pass_)
    if checked != case.workload:
        small = TimedCase(case.impl, case.device, case.dtype, checked, case.pass_, case.layout)
        out = tc.bound_call(impl, small, tc.place(impl, small))()
    found = tuple(impl.to_numpy(o) for o in tc.outputs_of(out))
    precision = impl.reduced_precision.get(case.dtype, case.dtype)
    answer = tc.check_outputs(case.id, checked, case.pass_, case.dtype, found, impl.reduced_precision)
    of = "the timed problem" if checked == case.workload else f"the same layer at batch {checked.batch}"
    return {**answer, "reference": tc.reference(checked, case.pass_).source, "precision": precision,
            "batch": checked.batch, "of": of}


def check_last(impl: Implementation, case: TimedCase, out: Any,
                first: dict[str, Any]) -> dict[str, Any]:
    """The last timed call's output against the reference, and a call on changed inputs,
    whose every output must differ from the last call's (no cached or stale result)."""
    names = tc.output_names(case.workload, case.pass_)
    last = tuple(np.asarray(impl.to_numpy(o)) for o in tc.outputs_of(out))
    calls = {"first_call": "within the bound" if first["ok"] else f"WRONG {first['detail']}"}
    answer = first
    if tc.check_workload(case.workload, case.pass_) == case.workload:
        v = tc.check_outputs(case.id, case.workload, case.pass_, case.dtype, last, impl.reduced_precision)
        calls["last_call"] = "within the bound" if v["ok"] else f"WRONG {v['detail']}"
        if not v["ok"] and first["ok"]:
            answer = {**first, **v, "detail": f"last timed call: {v['detail']}"}
    else:
        calls["last_call"] = "not checked: the reference is of a smaller batch"
    changed_case = replace(case, workload=case.workload, salt=1)
    changed = tc.bound_call(impl, changed_case, tc.place(impl, changed_case))()
    measure.ready_of(impl, case.device)(changed)
    again = tuple(np.asarray(impl.to_numpy(o)) for o in tc.outputs_of(changed))
    same = [n for n, a, b in zip(names, last, again, strict=False)
            if a.shape == b.shape and np.array_equal(a, b)]
    calls["changed_input"] = ("every output changed" if not same else
                              f"WRONG: {', '.join(same)} did not change when the inputs changed")
    if same and answer["ok"]:
        answer = {**answer, "ok": False, "worst_ratio": float("inf"),
                  "detail": f"a call on changed inputs returned the same {', '.join(same)} as the last "
                            "timed call (a cached or stale output)"}
    return {**answer, "calls": calls}
