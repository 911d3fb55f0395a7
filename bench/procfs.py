"""Reading processes from ``/proc`` (Linux): descendants, resident memory and CPU time.

Everything here tolerates a process vanishing between two reads (a node being restarted): such
a process simply contributes nothing to that read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcSample:
    """One process at one moment."""

    pid: int
    name: str  # the process title: "python" for all of ours, so the role is taken from the cmdline
    role: str
    rss_kb: int
    cpu_s: float  # user + system time consumed so far


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name is in parentheses and may hold spaces: split after the last ')'
    close = text.rfind(")")
    return [text[: text.find("(")].strip(), text[text.find("(") + 1: close], *text[close + 2:].split()]


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[3])


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, by scanning ``/proc/*/stat`` once."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        ppid = parent_of(int(entry.name))
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def role_of(pid: int, root: int) -> str:
    """``root`` for the system's own process; for a node process its multiprocessing name if known."""
    if pid == root:
        return "root"
    line = cmdline(pid)
    if "resource_tracker" in line:
        return "resource_tracker"
    if "multiprocessing" in line:
        return "node"
    return line.split(" ", 1)[0].rsplit("/", 1)[-1] or "?"


def sample(pid: int, root: int) -> ProcSample | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    utime, stime, rss_pages = int(fields[13]), int(fields[14]), int(fields[23])
    return ProcSample(pid=pid, name=fields[1], role=role_of(pid, root), rss_kb=rss_pages * PAGE_KB,
                      cpu_s=(utime + stime) / CLOCK_TICKS)


def tree(root: int) -> list[ProcSample]:
    """A sample of ``root`` and all its descendants (empty once ``root`` is gone)."""
    out = []
    for pid in descendants(root):
        s = sample(pid, root)
        if s is not None:
            out.append(s)
    return out


def pss_kb(pid: int) -> int | None:
    """Proportional set size (shared pages split among their users), from ``smaps_rollup``."""
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def cpu_by_pid(samples: list[ProcSample]) -> dict[int, float]:
    return {s.pid: s.cpu_s for s in samples}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two reads, by the processes alive at the second (new ones from 0)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
