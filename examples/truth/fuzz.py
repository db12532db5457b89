"""Fuzz a library against the independent reference; write ``<lib>.json`` and ``<lib>.md``.

    python examples/truth/fuzz.py onnx_reference [--n 300] [--seconds 240] [--seed 0]

For each operation the library has and each option (``plain``: no padding, default stride;
``padding``: symmetric padding; then ``stride``, ``dilation``, ``groups``,
``asymmetric_padding``, ``ceil_mode``, ``count_include_pad``, ``pool_dilation`` each turned on
alone over ``padding``; ``all``: everything drawn at random), up to ``--n`` random geometries
per dtype, seeded, within a time bound shared by all (operation, option) pairs. Inputs are
small integers (so max pooling has ties and sums are exact) and the answer is right when
``max|lib - ref| <= tol * max(1, max|ref|)``, tol 1e-9 (float64) or 1e-4 (float32).
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
    ap.add_argument("--merge", action="store_true", help="keep the other dtypes of an existing <lib>.json")
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
    ]
    table = {
        f"{op} · {opt}": {
            d: {
                "right": 0,
                "wrong": 0,
                "cannot_express": 0,
                "errors": 0,
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
                try:
                    got = lib.run(g, a)
                    err, why = error(got, want)
                except Exception as exc:  # the library refused or crashed: wrong as well
                    err, why = math.inf, f"{type(exc).__name__}: {str(exc)[:200]}"
                    rec["errors"] += 1
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
    out = {
        "library": args.lib,
        "version": lib.version,
        "seed": args.seed,
        "n": args.n,
        "seconds": args.seconds,
        "dtypes": dtypes,
        "tolerance": TOL,
        "table": table,
    }
    if args.merge and os.path.exists(os.path.join(args.out, f"{args.lib}.json")):
        with open(os.path.join(args.out, f"{args.lib}.json")) as f:
            out = merge(json.load(f), out)
    write(out, args.out)


def merge(old: dict, new: dict) -> dict:
    """``new`` with the dtypes of ``old`` that ``new`` did not run (each dtype keeps its own
    run's seed, n and time bound, recorded under ``runs``)."""
    keep = [d for d in old["dtypes"] if d not in new["dtypes"]]
    runs = old.get("runs", {d: {k: old[k] for k in ("seed", "n", "seconds")} for d in old["dtypes"]})
    runs = {d: r for d, r in runs.items() if d in keep}
    runs.update({d: {k: new[k] for k in ("seed", "n", "seconds")} for d in new["dtypes"]})
    table = {key: {**{d: old["table"][key][d] for d in keep}, **per} for key, per in new["table"].items()}
    return {**new, "dtypes": keep + new["dtypes"], "table": table, "runs": runs}


def write(out: dict, folder: str) -> None:
    """``<lib>.json`` and the Markdown table ``<lib>.md`` in ``folder``."""
    lib, dtypes, table = out["library"], out["dtypes"], out["table"]
    with open(os.path.join(folder, f"{lib}.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    runs = out.get("runs", {d: {k: out[k] for k in ("seed", "n", "seconds")} for d in dtypes})
    bounds = "; ".join(
        f"{d}: seed {r['seed']}, up to {r['n']} geometries per (operation, option), "
        f"{r['seconds']:.0f} s bound"
        for d, r in runs.items()
    )
    lines = [
        f"# Truth table: {lib} {out['version']}",
        "",
        f"{bounds}; counts are right/wrong/cannot express.",
        "",
        "| operation · option | " + " | ".join(dtypes) + " | smallest failure |",
        "|---|" + "---|" * (len(dtypes) + 1),
    ]
    for key, per in table.items():
        cells = [
            f"**{per[d]['verdict']}** ({per[d]['right']}/{per[d]['wrong']}/{per[d]['cannot_express']})"
            for d in dtypes
        ]
        fail = next((per[d]["smallest_failure"] for d in dtypes if per[d]["smallest_failure"]), None)
        fs = "" if fail is None else f"`{json.dumps(fail['geometry'])}` err {fail['error']:.3g} {fail['why']}"
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {fs} |")
    with open(os.path.join(folder, f"{lib}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
