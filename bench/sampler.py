"""Watching a running system's process tree: resident memory while it runs, CPU over a window."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from bench import procfs

Names = Callable[[], dict[int, str]]


@dataclass(slots=True)
class TreeMemory:
    """Samples the total RSS (and PSS) of a root process and all its descendants.

    ``names`` (optional) maps node pids to node names; it is asked only when a new peak is seen.
    """

    root: int
    names: Names | None = None
    peak_rss_kb: int = 0
    peak_pss_kb: int = 0
    peak_breakdown_mb: dict[str, float] = field(default_factory=dict)  # process -> RSS MB at the peak
    samples: list[int] = field(default_factory=list)  # total RSS kB per sample
    _next: float = 0.0

    def maybe_sample(self, every_s: float = 0.5) -> None:
        if _due(self, every_s):
            self.sample()

    def sample(self) -> None:
        procs = procfs.tree(self.root)
        if not procs:
            return
        total = sum(p.rss_kb for p in procs)
        self.samples.append(total)
        if total > self.peak_rss_kb:
            self.peak_rss_kb = total
            names = self.names() if self.names is not None else {}
            breakdown: dict[str, float] = {}
            for p in procs:
                label = names.get(p.pid, f"node pid {p.pid}") if p.role == "node" else p.role
                breakdown[label] = round(breakdown.get(label, 0) + p.rss_kb / 1024, 1)
            self.peak_breakdown_mb = breakdown
            self.peak_pss_kb = sum(procfs.pss_kb(p.pid) or 0 for p in procs)


@dataclass(slots=True)
class CpuTrace:
    """Cumulative CPU time of two process trees (the system's root, and PostgreSQL's postmaster), read
    every so often, so that the cores each kept busy over a stretch known only afterwards (from the
    system's log) can be worked out: :meth:`cores_between`."""

    root: int
    postmaster: int | None
    reads: list[tuple[float, dict[int, float], dict[int, float]]] = field(default_factory=list)
    _next: float = 0.0

    def maybe_sample(self, every_s: float = 0.5) -> None:
        if _due(self, every_s):
            self.sample()

    def sample(self) -> None:
        system = procfs.cpu_by_pid(procfs.tree(self.root))
        pg = procfs.cpu_by_pid(procfs.tree(self.postmaster)) if self.postmaster is not None else {}
        if system:
            self.reads.append((time.time(), system, pg))

    def cores_between(self, start: float, end: float) -> tuple[float, float] | None:
        """(system cores, PostgreSQL cores) busy on average between the first and the last read inside
        [``start``, ``end``] (epoch seconds); None with fewer than two reads there. Processes that
        started in between count from zero; those gone by the last read are left out."""
        inside = [r for r in self.reads if start <= r[0] <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        (t0, sys0, pg0), (t1, sys1, pg1) = inside[0], inside[-1]
        return procfs.cpu_delta(sys0, sys1) / (t1 - t0), procfs.cpu_delta(pg0, pg1) / (t1 - t0)


def _due(sampler: TreeMemory | CpuTrace, every_s: float) -> bool:
    """Whether ``every_s`` has passed since ``sampler`` last sampled; if so, the next is ``every_s`` away."""
    now = time.monotonic()
    if now < sampler._next:
        return False
    sampler._next = now + every_s
    return True


def node_names(db_url: str) -> Names:
    """pid → node name as the root records them in ``runtime_nodes`` ({} until it has)."""

    def names() -> dict[int, str]:
        try:
            with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as conn:
                rows = conn.execute("SELECT pid, node FROM runtime_nodes WHERE pid IS NOT NULL").fetchall()
        except psycopg.Error:
            return {}
        return {int(pid): node for pid, node in rows}

    return names


def wait_sampling(proc_running: Callable[[], bool], memory: TreeMemory, timeout: float, every_s: float = 0.5,
                  cpu: CpuTrace | None = None) -> bool:
    """Sample ``memory`` (and ``cpu``) until ``proc_running()`` is false; False if ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    while proc_running():
        if time.monotonic() > deadline:
            return False
        memory.maybe_sample(every_s)
        if cpu is not None:
            cpu.maybe_sample(every_s)
        time.sleep(0.05)
    return True
