"""``python -m implementations``: list implementations, what they claim, and why one is missing.

What an implementation claims is read in a fresh process of its own (one per implementation,
side by side, each in a session of its own that is killed when it has answered): listing never
runs a plug-in's code in this process. What comes back is JSON, cleaned
(:func:`implementations.text.clean_data`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys

from . import registered, unavailable_reason
from .text import clean_data, clean_text

#: Seconds one implementation may take to import and describe itself (frameworks import slowly).
LOAD_TIMEOUT = 300.0
#: The folder holding this installation's packages, imported from there first.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DESCRIBE = (f"import sys; sys.path.insert(0, {_ROOT!r}); import json, implementations; sys.path.pop(0); "
             "print(); print(json.dumps(implementations.get(sys.argv[1]).describe(), default=str))")


def _describe(name: str, process: subprocess.Popen) -> dict | str:
    """The ``describe()`` the process printed last, or why there is none."""
    try:
        out, err = process.communicate(timeout=LOAD_TIMEOUT)
    except subprocess.TimeoutExpired:
        out, err = b"", f"no answer in {LOAD_TIMEOUT:g} s".encode()
    finally:
        try:  # whatever it started in its session goes with it
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        described = json.loads(lines[-1]) if process.returncode == 0 and lines else None
    except ValueError:
        described = None
    if isinstance(described, dict) and isinstance(described.get("name"), str):
        return clean_data(described)
    last = (err.decode(errors="replace").strip().splitlines() or [f"exit code {process.returncode}"])[-1]
    return clean_text(f"failed to load: {last}", 500)


def listing() -> list[dict]:
    """One row per registered implementation, available or not."""
    names = registered()
    reasons: dict[str, str | None] = {name: unavailable_reason(name) for name in names}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.abspath(p) for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")]))
    started = {name: subprocess.Popen([sys.executable, "-c", _DESCRIBE, name], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                      start_new_session=True)
               for name in names if reasons[name] is None}
    rows = []
    for name in names:
        described = _describe(name, started[name]) if name in started else reasons[name]
        if isinstance(described, dict):
            rows.append({**described, "available": True})
        else:
            rows.append({"name": name, "available": False, "reason": described})
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
