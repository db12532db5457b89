"""``python -m implementations``: list implementations, what they claim, and why one is missing.

What an implementation claims is read in a worker process of its own (the certifier's,
``conformance.execution.worker``): listing never runs a plug-in's code in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import registered, unavailable_reason


def listing() -> list[dict]:
    """One row per registered implementation, available or not (each loaded in a worker; the
    workers load side by side)."""
    from conformance.execution.worker import LoadError, Worker

    names = registered()
    reasons = {name: unavailable_reason(name) for name in names}
    workers = {name: Worker(name, log=os.devnull) for name in names if reasons[name] is None}
    rows = []
    try:
        for name in names:
            if name in workers:
                try:
                    rows.append({**workers[name].claims["describe"], "available": True})
                    continue
                except LoadError as exc:  # an adapter that fails to start is reported, not raised
                    reasons[name] = f"failed to load: {exc}"
            rows.append({"name": name, "available": False, "reason": reasons[name]})
    finally:
        for worker in workers.values():
            worker.shutdown()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m implementations", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the listing as JSON")
    args = parser.parse_args(argv)
    rows = listing()
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    for row in rows:
        if not row["available"]:
            print(f"{row['name']:<12} unavailable: {row['reason']}")
            continue
        devices = ",".join(row["devices"]) or "none on this machine"
        print(f"{row['name']:<12} devices={devices}  dtypes={','.join(row['dtypes'])}")
        print(f"{'':<12} features={','.join(row['features'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
