"""``python -m implementations``: list implementations, what they claim, and why one is missing."""

from __future__ import annotations

import argparse
import json
import sys

from . import get, registered, unavailable_reason


def listing() -> list[dict]:
    """One row per registered implementation, available or not."""
    rows = []
    for name in registered():
        reason = unavailable_reason(name)
        if reason is None:
            try:
                rows.append({**get(name).describe(), "available": True})
                continue
            except Exception as exc:  # an adapter that fails to start is reported, not raised
                reason = f"failed to load: {type(exc).__name__}: {exc}"
        rows.append({"name": name, "available": False, "reason": reason})
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
