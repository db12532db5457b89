"""Compare convcert's verdicts (certificate JSON) with the fuzzer's truth table; print Markdown.

    python examples/compare.py examples/truth/onnx_reference.json examples/certificates/<cert>.json

Per dtype and per row ``operation · option`` (certificate ``per_operation``) and per
operation (certificate ``features``, operation rows; truth: the ``plain`` and ``padding``
options). A disagreement is a row convcert fails where the truth is right, or passes where
the truth is wrong; rows the truth calls wrong that convcert did not test or only
"implicated" are listed as notes.
"""

from __future__ import annotations

import json
import sys

OPS = ("conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward")


def truth_of(table, key, dtype):
    rec = table.get(key, {}).get(dtype)
    return None if rec is None else rec


def main(truth_path, cert_path):
    truth = json.load(open(truth_path))
    cert = json.load(open(cert_path))
    table = truth["table"]
    impl = cert["implementation"]
    out = [
        f"### {impl.get('name')} ({truth['library']} {truth['version']})",
        "",
        f"Certificate `{cert_path.split('/')[-1]}`: passed={cert['passed']}, state={cert['state']}, "
        f"quick={cert['quick']}, dtypes={cert['dtypes']}, counts={cert['counts']}, {cert['seconds']:.0f} s.",
        "",
        f"Claims: {', '.join(sorted(impl.get('features', [])))}.",
        "",
    ]
    if impl.get("limits"):
        out.append(
            "Limits: "
            + "; ".join(str(l.get("reason", l)) if isinstance(l, dict) else str(l) for l in impl["limits"])
            + "."
        )
        out.append("")
    rows = [(r["feature"], r) for r in cert["per_operation"]]
    rows += [(r["feature"], r) for r in cert["features"] if r["feature"] in OPS]
    out += ["| row | dtype | convcert | truth (right/wrong/cannot) | agree? |", "|---|---|---|---|---|"]
    disagreements, notes = [], []
    for key, r in rows:
        d = r["dtype"]
        if " · " in key:
            recs = [truth_of(table, key, d)]
        else:
            recs = [truth_of(table, f"{key} · plain", d), truth_of(table, f"{key} · padding", d)]
        recs = [x for x in recs if x]
        if not recs:
            tv, counts = "not fuzzed", ""
        else:
            wrong = sum(x["wrong"] for x in recs)
            right = sum(x["right"] for x in recs)
            cannot = sum(x["cannot_express"] for x in recs)
            tv = "wrong" if wrong else "right" if right else "cannot express"
            counts = f"{right}/{wrong}/{cannot}"
        cv = r["status"]
        agree = "yes"
        if cv == "fail" and tv == "right":
            agree = "**NO: convcert fails a row the truth finds right**"
        elif cv == "pass" and tv == "wrong":
            agree = "**NO: convcert passes a row the truth finds wrong**"
        elif cv in ("implicated", "not claimed") and tv == "wrong":
            agree = f"note: truth wrong, convcert {cv}"
        elif cv == "not claimed" and tv == "right":
            agree = "note: right but not claimed"
        out.append(f"| {key} | {d} | {cv} | {tv} ({counts}) | {agree} |")
        if agree.startswith("**NO"):
            disagreements.append((key, d, cv, tv, recs))
        elif agree.startswith("note: truth wrong"):
            notes.append((key, d, cv, tv, recs))
    out += ["", f"Disagreements: {len(disagreements)}.", ""]
    for key, d, cv, tv, recs in disagreements:
        fail = next((x["smallest_failure"] for x in recs if x.get("smallest_failure")), None)
        out.append(f"- `{key}` ({d}): convcert **{cv}**, truth **{tv}**.")
        for f in cert["failures"]:
            if f["op"] == key.split(" · ")[0] and f["dtype"] == d:
                out.append(
                    f"  - failing case `{f['case']}` filed under `{f['feature']}`: {f['message'][:300]}"
                )
        for e in cert.get("experiments", []):
            if e["op"] == key.split(" · ")[0] and e["dtype"] == d:
                pairs = ", ".join(
                    f"{opt} off → `{v['case']}` {v['status']}" for opt, v in e["variants"].items()
                )
                out.append(f"  - experiment on `{e['case']}`: blamed `{e['blamed']}`; {pairs}")
        if fail:
            out.append(
                f"  - truth's smallest failure: `{json.dumps(fail['geometry'])}` (error {fail['error']:.3g})"
            )
    if notes:
        out += [
            "",
            "Truth finds wrong, convcert did not blame the row (not a disagreement by the rule above):",
            "",
        ]
        for key, d, cv, _tv, recs in notes:
            fail = next((x["smallest_failure"] for x in recs if x.get("smallest_failure")), None)
            out.append(
                f"- `{key}` ({d}): convcert {cv}; truth's smallest failure "
                f"`{json.dumps(fail['geometry']) if fail else '-'}`"
            )
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:3])
