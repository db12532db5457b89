"""Nothing a plug-in starts outlives its worker: find every process it started, and end them all.

A worker ends its own session with a group kill, but a daemon that forks twice and calls
``setsid`` leaves both the group and the session, and is re-parented to init. So (Linux):

- the worker makes itself a *child subreaper* (``PR_SET_CHILD_SUBREAPER``, as tini and systemd
  do) before it loads the plug-in: every orphan among the plug-in's processes comes back to
  the worker, so while the worker lives, everything the plug-in started is in its tree;
- the certifier is a subreaper too: when the worker dies first, its orphans come back to the
  certifier, which knows them by the token every worker process inherits in its environment
  (``CONVCERT_WORKER``);
- :func:`kill_tree` freezes that whole set (``SIGSTOP``, again until no new process appears:
  a stopped process cannot fork), kills it (``SIGKILL``) and reaps the orphans it adopted.

What this cannot catch: a process that escapes *both* (it kills the worker, then replaces its
own environment by ``exec``). Only OS namespaces close that; :data:`ISOLATION` says which
isolation a run had, and the certificate records it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable

#: ``prctl`` option numbers (linux/prctl.h).
PR_SET_CHILD_SUBREAPER = 36
#: Environment variable every worker process inherits: which worker started it.
TOKEN = "CONVCERT_WORKER"
#: Rounds of freezing before the kill (each finds the processes forked since the last).
ROUNDS = 50


def make_subreaper() -> bool:
    """Make this process a child subreaper (Linux); False where the OS offers none."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


#: The isolation a worker has here, as the certificate records it.
ISOLATION = "worker process, subreaper+process group" if sys.platform.startswith("linux") \
    else "worker process, process group"


def processes() -> dict[int, int]:
    """``{pid: parent pid}`` of every process visible in ``/proc`` (empty where there is none)."""
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # it ended meanwhile
            continue
        fields = stat[stat.rfind(b")") + 2:].split()  # the command name may hold spaces and ')'
        if len(fields) > 1:
            table[int(name)] = int(fields[1])
    return table


def descendants(root: int, table: dict[int, int]) -> set[int]:
    """Every process below ``root`` in ``table`` (not ``root`` itself)."""
    children: dict[int, list[int]] = {}
    for pid, parent in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _carries(pid: int, token: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{TOKEN}={token}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def plugin_processes(root: int | None, token: str, table: dict[int, int] | None = None) -> set[int]:
    """The processes of one worker: ``root``'s tree, and the orphans this process adopted that
    carry ``token`` (with their own trees)."""
    table = processes() if table is None else table
    me = os.getpid()
    tops = {pid for pid, parent in table.items() if parent == me and pid != root and _carries(pid, token)}
    if root is not None and root in table:
        tops.add(root)
    found = set(tops)
    for top in tops:
        found |= descendants(top, table)
    return found


def tree(root: int) -> set[int]:
    """``root`` and every process below it (empty when ``root`` is gone): from
    ``/proc/PID/task/TID/children`` where the kernel offers it (the tree's files only), else
    from a scan of every process."""
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        found.add(pid)
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    todo.extend(int(c) for c in f.read().split() if int(c) not in found)
            except FileNotFoundError:  # no such file on this kernel: scan
                table = processes()
                return {root} | descendants(root, table) if root in table else set()
            except (OSError, ValueError):
                continue
    return found


def resident_bytes(pids: set[int]) -> int:
    """Resident memory of ``pids`` together (``VmRSS``; memory only reserved does not count)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total


def kill_tree(root: int | None, token: str, reap_root: Callable[[], object] = lambda: None) -> set[int]:
    """Freeze, then kill, every process of the worker ``root`` (see the module docstring), and
    reap them: ``root`` by ``reap_root`` (its ``Popen.wait``), the others here once they have
    come back to this process. Returns the pids killed; none of them runs on return."""
    stopped: set[int] = set()
    for _ in range(ROUNDS):
        new = plugin_processes(root, token) - stopped
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        stopped |= new
    if root is not None:
        stopped.add(root)
    for pid in stopped:
        _signal(pid, signal.SIGKILL)
    reap_root()
    _reap(stopped - {root})
    return stopped


def _reap(pids: set[int], patience: float = 2.0) -> None:
    """Reap ``pids`` as each becomes this process's child (an orphan comes back once its killed
    parent has exited); one whose parent is another process's child is left to that parent."""
    me, pending, deadline = os.getpid(), set(pids), time.monotonic() + patience
    while pending and time.monotonic() < deadline:
        table = processes()
        for pid in list(pending):
            if pid not in table:
                pending.discard(pid)
            elif table[pid] == me:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                pending.discard(pid)
        if pending:
            time.sleep(0.01)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
