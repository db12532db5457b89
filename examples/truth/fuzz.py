"""Fuzz a library against the independent reference; write ``<lib>.json`` and ``<lib>.md``.

    python examples/truth/fuzz.py onnx_reference [--n 300] [--seconds 240] [--seed 0] [--calls 3]
        [--only "conv2d_backward · dilation"] [--merge]

For each operation the library has and each option (``plain``: no padding, default stride;
``padding``: symmetric padding; then ``stride``, ``dilation``, ``groups``,
``asymmetric_padding``, ``ceil_mode``, ``count_include_pad``, ``pool_dilation`` each turned on
alone over ``padding``; ``all``: everything drawn at random), up to ``--n`` random geometries
per dtype, seeded, within a time bound shared by all (operation, option) pairs. Inputs are
small integers (so max pooling has ties and sums are exact) and the answer is right when
``max|lib - ref| <= tol * max(1, max|ref|)``, tol 1e-9 (float64) or 1e-4 (float32).
Each geometry is called ``--calls`` times (default 3) on the same inputs, as the certifier
calls each case again: a library that is right on the first call and wrong from the second
(a cached kernel, a reused buffer) is wrong. A row is called right only on at least
``MIN_GEOMETRIES`` geometries; the table says how many each row had, and names the rows
below that (a time bound stops a slow library first).
Per (operation, option): right / wrong / cannot express, with counts and the smallest
failing geometry. A round draws up to 50 geometries for one the library can express (so a
library with only "valid" and "same" padding is tested on those); "cannot express" counts
rounds where none of the valid draws could be expressed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402
from libs import LIBS  # noqa: E402

OPTIONS = {
    "conv2d": ("plain", "padding", "stride", "dilation", "groups", "asymmetric_padding", "all"),
    "max_pool2d": ("plain", "padding", "stride", "asymmetric_padding", "ceil_mode", "pool_dilation", "all"),
    "avg_pool2d": (
        "plain",
        "padding",
        "stride",
        "asymmetric_padding",
        "ceil_mode",
        "count_include_pad",
        "pool_dilation",
        "all",
    ),
}
TOL = {"float64": 1e-9, "float32": 1e-4}
#: Geometries a row needs before "right" stands without a caveat.
MIN_GEOMETRIES = 100


def draw(rng, op, option):
    """A random geometry for ``op`` with ``option`` on, or None when the draw is invalid."""
    base = op.replace("_backward", "")
    on = lambda o: option == o or (option == "all" and rng.random() < 0.5)
    g = {
        "op": op,
        "n": int(rng.integers(1, 3)),
        "h": int(rng.integers(1, 10)),
        "w": int(rng.integers(1, 10)),
        "dilation": (1, 1),
        "groups": 1,
        "ceil": False,
        "cip": False,
    }
    if base == "conv2d":
        g["groups"] = int(rng.integers(2, 4)) if on("groups") else 1
        g["c"] = g["groups"] * int(rng.integers(1, 3))
        g["k"] = g["groups"] * int(rng.integers(1, 3))
        g["kernel"] = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        g["stride"] = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if on("stride") else (1, 1)
        if g["stride"] == (1, 1) and option == "stride":
            g["stride"] = (2, 1)
        g["dilation"] = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if on("dilation") else (1, 1)
        g["bias"] = bool(rng.integers(2))
    else:
        g["c"] = int(rng.integers(1, 4))
        g["kernel"] = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        g["stride"] = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if on("stride") else g["kernel"]
        if option == "stride" and g["stride"] == g["kernel"]:
            return None
        if on("pool_dilation"):
            g["dilation"] = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
            if g["dilation"] == (1, 1):
                g["dilation"] = (2, 1)
        g["ceil"] = on("ceil_mode")
        g["cip"] = base == "avg_pool2d" and on("count_include_pad")
    eff = [(k - 1) * d + 1 for k, d in zip(g["kernel"], g["dilation"], strict=True)]
    ins = (g["h"], g["w"])
    padded = option != "plain" and (option != "all" or rng.random() < 0.7)
    if not padded:
        pad, mode = ((0, 0), (0, 0)), "valid"
    elif rng.random() < 0.4:  # "same" (TensorFlow / ONNX SAME_UPPER)
        pad, mode = (
            tuple(
                R.same_padding(n, k, s, d)
                for n, k, s, d in zip(ins, g["kernel"], g["stride"], g["dilation"], strict=True)
            ),
            "same",
        )
    else:
        limit = [
            max(k // 2, 1) if base != "conv2d" else e - 1 + 1 for k, e in zip(g["kernel"], eff, strict=True)
        ]
        if on("asymmetric_padding"):
            pad = tuple((int(rng.integers(0, m + 1)), int(rng.integers(0, m + 1))) for m in limit)
        else:
            pad = tuple((p, p) for p in (int(rng.integers(0, m + 1)) for m in limit))
        mode = "explicit"
    asym = any(a != b for a, b in pad)
    if option == "asymmetric_padding" and not asym:
        return None
    if option not in ("asymmetric_padding", "all") and asym:
        return None
    if option in ("padding", "count_include_pad") and not any(pad[0] + pad[1]):
        return None
    if (
        base != "conv2d"
        and any(max(p) > k // 2 for p, k in zip(pad, g["kernel"], strict=True))
        and mode == "explicit"
    ):
        return None  # PyTorch's / ONNX's usual rule: pads at most half the kernel
    g["padding"], g["pad_mode"] = pad, mode
    try:
        out = [
            R.out_size(n, k, s, p[0], p[1], d, g["ceil"])
            for n, k, s, p, d in zip(ins, g["kernel"], g["stride"], pad, g["dilation"], strict=True)
        ]
    except ValueError:
        return None
    if min(out) < 1:
        return None
    if g["ceil"] and option == "ceil_mode":
        floor = [
            R.out_size(n, k, s, p[0], p[1], d, False)
            for n, k, s, p, d in zip(ins, g["kernel"], g["stride"], pad, g["dilation"], strict=True)
        ]
        if floor == out:
            return None  # ceil mode changes nothing here
    if base != "conv2d":  # every window must read the input (the contract forbids empty windows)
        for n, k, s, p, d, o in zip(ins, g["kernel"], g["stride"], pad, g["dilation"], out, strict=True):
            for i in range(o):
                if not any(0 <= i * s - p[0] + j * d < n for j in range(k)):
                    return None
    g["out"] = tuple(out)
    return g


def arrays(rng, g, dtype):
    x = rng.integers(-3, 4, (g["n"], g["c"], g["h"], g["w"])).astype(dtype)
    a = {"x": x, "dy": rng.integers(-3, 4, (g["n"], g.get("k", g["c"])) + g["out"]).astype(dtype)}
    if g["op"].startswith("conv"):
        a["w"] = rng.integers(-3, 4, (g["k"], g["c"] // g["groups"]) + g["kernel"]).astype(dtype)
        a["b"] = rng.integers(-3, 4, g["k"]).astype(dtype) if g["bias"] and g["op"] == "conv2d" else None
    return a


def truth(g, a):
    pp = (g["kernel"], g["stride"], g["padding"], g["dilation"], g["ceil"])
    op = g["op"]
    if op == "conv2d":
        return R.conv2d(a["x"], a["w"], a["b"], g["stride"], g["padding"], g["dilation"], g["groups"])
    if op == "conv2d_backward":
        return R.conv2d_backward(
            a["x"], a["w"], a["dy"], g["stride"], g["padding"], g["dilation"], g["groups"]
        )
    if op == "max_pool2d":
        return R.max_pool2d(a["x"], *pp)
    if op == "max_pool2d_backward":
        return R.max_pool2d_backward(a["x"], a["dy"], *pp)
    if op == "avg_pool2d":
        return R.avg_pool2d(a["x"], *pp, g["cip"])
    return R.avg_pool2d_backward(a["x"], a["dy"], *pp, g["cip"])


def error(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    worst = 0.0
    for o, r in zip(got, want, strict=True):
        o = np.asarray(o, np.float64)
        if o.shape != r.shape:
            return math.inf, f"shape {o.shape} != {r.shape}"
        worst = max(
            worst,
            float(np.nan_to_num(np.max(np.abs(o - r)) if o.size else 0.0, nan=math.inf))
            / max(1.0, float(np.max(np.abs(r))) if r.size else 1.0),
        )
    return worst, ""


def describe(g):
    keys = (
        "n",
        "c",
        "h",
        "w",
        "k",
        "kernel",
        "stride",
        "padding",
        "dilation",
        "groups",
        "bias",
        "ceil",
        "cip",
        "pad_mode",
    )
    return {k: g[k] for k in keys if k in g}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", choices=sorted(LIBS))
    ap.add_argument("--n", type=int, default=300, help="geometries per (operation, option, dtype)")
    ap.add_argument("--seconds", type=float, default=240.0, help="time bound for the whole run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", action="append")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--merge", action="store_true",
                    help="keep the other dtypes and rows of an existing <lib>.json")
    ap.add_argument("--calls", type=int, default=3, help="calls of each geometry (the same inputs)")
    ap.add_argument("--only", action="append", help="run only these rows, e.g. 'conv2d_backward · dilation'")
    args = ap.parse_args(argv)
    lib = LIBS[args.lib]()
    dtypes = args.dtype or list(lib.dtypes)
    pairs = [
        (op, opt)
        for op in (
            "conv2d",
            "conv2d_backward",
            "max_pool2d",
            "max_pool2d_backward",
            "avg_pool2d",
            "avg_pool2d_backward",
        )
        for opt in OPTIONS[op.replace("_backward", "")]
        if not args.only or f"{op} · {opt}" in args.only
    ]
    if args.calls < 1:
        raise SystemExit(f"--calls={args.calls}: must be at least 1")
    table = {
        f"{op} · {opt}": {
            d: {
                "right": 0,
                "wrong": 0,
                "cannot_express": 0,
                "errors": 0,
                "wrong_calls": 0,
                "worst": 0.0,
                "smallest_failure": None,
            }
            for d in dtypes
        }
        for op, opt in pairs
    }
    deadline = time.monotonic() + args.seconds
    rngs = {
        (op, opt, d): np.random.default_rng([args.seed, i, j])
        for i, (op, opt) in enumerate(pairs)
        for j, d in enumerate(dtypes)
    }
    # round robin: one geometry per (pair, dtype) at a time, so a time bound cuts all evenly
    for _ in range(args.n):
        if time.monotonic() > deadline:
            break
        for op, opt in pairs:
            for d in dtypes:
                if time.monotonic() > deadline:
                    break
                rng = rngs[op, opt, d]
                rec = table[f"{op} · {opt}"][d]
                if op not in lib.ops:
                    rec["cannot_express"] += 1
                    continue
                # up to 50 draws for a valid geometry the library can express (a library with
                # only some padding modes is tested on those); none: "cannot express"
                g, valid = None, False
                for _try in range(50):
                    g = draw(rng, op, opt)
                    valid = valid or g is not None
                    if g is not None and lib.express(g):
                        break
                else:
                    if valid:
                        rec["cannot_express"] += 1
                    continue
                a = arrays(rng, g, d)
                want = truth(g, a)
                err, why = 0.0, ""
                for call in range(args.calls):  # the same inputs each time, fresh copies
                    try:
                        got = lib.run(g, {k: None if v is None else v.copy() for k, v in a.items()})
                        e, w = error(got, want)
                    except Exception as exc:  # the library refused or crashed: wrong as well
                        e, w = math.inf, f"{type(exc).__name__}: {str(exc)[:200]}"
                        rec["errors"] += 1
                    if e > TOL[d]:
                        rec["wrong_calls"] += 1
                    if e > err:
                        err, why = e, (f"call {call + 1} of {args.calls}: {w}" if args.calls > 1 else w)
                ok = err <= TOL[d]
                rec["right" if ok else "wrong"] += 1
                rec["worst"] = max(rec["worst"], err)
                if not ok:
                    size = g["n"] * g["c"] * g["h"] * g["w"]
                    best = rec["smallest_failure"]
                    if best is None or size < best["size"]:
                        rec["smallest_failure"] = {
                            "size": size,
                            "geometry": describe(g),
                            "error": err,
                            "why": why,
                            "x": a["x"].tolist() if size <= 32 else None,
                        }
    for per in table.values():
        for rec in per.values():
            rec["verdict"] = (
                "wrong"
                if rec["wrong"]
                else "right"
                if rec["right"]
                else "cannot express"
                if rec["cannot_express"]
                else "untested"
            )
            if rec["verdict"] == "right" and rec["cannot_express"]:
                rec["verdict"] = "right where expressible"
            rec["geometries"] = rec["right"] + rec["wrong"]
    out = {
        "library": args.lib,
        "version": lib.version,
        "seed": args.seed,
        "n": args.n,
        "seconds": args.seconds,
        "calls": args.calls,
        "dtypes": dtypes,
        "tolerance": TOL,
        "table": table,
    }
    if args.merge and os.path.exists(os.path.join(args.out, f"{args.lib}.json")):
        with open(os.path.join(args.out, f"{args.lib}.json")) as f:
            out = merge(json.load(f), out)
    write(out, args.out)


RUN_KEYS = ("seed", "n", "seconds", "calls")


def row_runs(out: dict) -> dict:
    """Which run produced each (row, dtype): ``{row: {dtype: {seed, n, seconds, calls}}}``,
    also for tables written before runs were recorded per row (per dtype, or not at all;
    those called each geometry once)."""
    runs = out.get("runs")
    if runs and all(key in out["table"] for key in runs):
        return runs
    by_dtype = runs or {d: {k: out.get(k) for k in RUN_KEYS} for d in out["dtypes"]}
    by_dtype = {d: {**r, "calls": r.get("calls") or 1} for d, r in by_dtype.items()}
    return {key: {d: by_dtype[d] for d in per} for key, per in out["table"].items()}


def merge(old: dict, new: dict) -> dict:
    """``new`` with what of ``old`` it did not run: the other dtypes, and the rows it left out
    (``--only``); ``runs`` records which run produced each (row, dtype)."""
    runs, new_runs = row_runs(old), row_runs(new)
    table = {key: dict(per) for key, per in old["table"].items()}
    for key, per in new["table"].items():
        table.setdefault(key, {}).update(per)
        runs.setdefault(key, {}).update(new_runs[key])
    dtypes = [d for d in old["dtypes"] if d not in new["dtypes"]] + new["dtypes"]
    return {**new, "dtypes": dtypes, "table": table, "runs": runs}


def write(out: dict, folder: str) -> None:
    """``<lib>.json`` and the Markdown table ``<lib>.md`` in ``folder``."""
    lib, dtypes, table = out["library"], out["dtypes"], out["table"]
    with open(os.path.join(folder, f"{lib}.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    runs = row_runs(out)
    distinct = sorted({json.dumps(r, sort_keys=True) for per in runs.values() for r in per.values()})
    bounds = "; ".join(
        "seed {seed}, up to {n} geometries per (operation, option), {seconds:.0f} s bound, "
        "each geometry called {calls} time(s)".format(**json.loads(r))
        for r in distinct
    )
    thin: dict[str, list[int]] = {}  # dtype -> geometries of each row called right on too few
    for per in table.values():
        for d in dtypes:
            count = per[d]["right"] + per[d]["wrong"] if d in per else MIN_GEOMETRIES
            if d in per and per[d]["verdict"].startswith("right") and count < MIN_GEOMETRIES:
                thin.setdefault(d, []).append(count)
    once = sorted({key for key, per in runs.items() if any(r.get("calls", 1) < 2 for r in per.values())})
    lines = [
        f"# Truth table: {lib} {out['version']}",
        "",
        f"Runs: {bounds}. Counts are right/wrong/cannot express (geometries).",
        "",
    ]
    if thin:
        lines += [
            f"**Rows called right on fewer than {MIN_GEOMETRIES} geometries** (too few to stand behind "
            "on their own): " + "; ".join(f"{d}: {len(c)} rows, {min(c)} to {max(c)} geometries each"
                                          for d, c in thin.items()) + ".",
            "",
        ]
    if once:
        lines += [f"**{len(once)} rows called each geometry once**, so a library wrong only from the "
                  "second identical call passes them.", ""]
    lines += [
        "| operation · option | " + " | ".join(dtypes) + " | smallest failure |",
        "|---|" + "---|" * (len(dtypes) + 1),
    ]
    for key, per in table.items():
        cells = [
            f"**{per[d]['verdict']}** ({per[d]['right']}/{per[d]['wrong']}/{per[d]['cannot_express']})"
            if d in per else "-"
            for d in dtypes
        ]
        fail = next((per[d]["smallest_failure"] for d in dtypes if d in per and per[d]["smallest_failure"]), None)
        fs = "" if fail is None else f"`{json.dumps(fail['geometry'])}` err {fail['error']:.3g} {fail['why']}"
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {fs} |")
    with open(os.path.join(folder, f"{lib}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
