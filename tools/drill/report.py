"""The drill report: a text summary (stdout and ``report.txt``) and ``report.json``.

Both hold the same facts: the inputs (seed, plan, window, speed, orders), the two runs (exit
code, duration, log file), every fault (kind, target, when — planned and actual progress, wall
time —, what was done, restart and recovery times, or why it was skipped) and every invariant
(pass/fail, summary, evidence in the JSON).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.drill.faults import FaultResult
from tools.drill.invariants import Check
from tools.drill.plan import Plan


@dataclass(slots=True, kw_only=True)
class RunFacts:
    """One run of the system."""

    label: str  # reference | drill
    exit_code: int | None
    duration_s: float
    log: str
    command: str
    mode: str  # execution mode
    speed: str


@dataclass(slots=True, kw_only=True)
class DrillReport:
    """Everything the drill found."""

    plan: Plan
    window: tuple[str, str]
    strategy: str
    params: str
    database: str
    runs: list[RunFacts] = field(default_factory=list)
    faults: list[FaultResult] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    failpoint_kills: list[dict[str, Any]] = field(default_factory=list)  # the execution node killed by FAILPOINTS
    notes: list[str] = field(default_factory=list)
    started_at: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "started_at": self.started_at, "duration_s": round(self.duration_s, 1),
            "seed": self.plan.seed, "orders": self.plan.orders, "window": {"from": self.window[0], "until": self.window[1]},
            "strategy": self.strategy, "params": self.params, "database": self.database, "plan": self.plan.as_dict(),
            "runs": [{"label": r.label, "exit_code": r.exit_code, "duration_s": round(r.duration_s, 1), "log": r.log,
                      "command": r.command, "mode": r.mode, "speed": r.speed} for r in self.runs],
            "faults": [f.as_dict() for f in self.faults],
            "failpoint_kills": self.failpoint_kills,
            "invariants": [c.as_dict() for c in self.checks],
            "notes": self.notes,
        }


def render_text(report: DrillReport) -> str:
    plan = report.plan
    lines = [f"resilience drill: seed {plan.seed}, {len(plan.faults)} faults ({', '.join(plan.kinds)}), orders "
             f"{plan.orders}, window {report.window[0]} .. {report.window[1]}",
             f"strategy {report.strategy} {report.params}; database: {report.database}"]
    if plan.failpoints:
        lines.append(f"FAILPOINTS={plan.failpoints}")
    lines.extend(f"  {n}" for n in plan.notes)
    for run in report.runs:
        lines.append(f"{run.label} run: {run.mode}, speed {run.speed}, exit {run.exit_code}, {run.duration_s:.1f} s"
                     f" (log {run.log})")
    lines.append("")
    lines.append("faults:")
    lines.extend(fault_lines(report.faults))
    if plan.failpoints:
        times = sorted(k["restart_s"] for k in report.failpoint_kills if k["restart_s"] is not None)
        figures = f"; restarted: median {statistics.median(times):.2f} s, worst {times[-1]:.2f} s" if times else ""
        lines.append(f"  failpoints: the execution node was killed {len(report.failpoint_kills)} times inside the "
                     f"order path{figures}")
    lines.append("")
    lines.append("invariants:")
    for check in report.checks:
        lines.append(f"  {'PASS' if check.ok else 'FAIL'}  {check.name:<12} {check.summary}")
    lines.extend(f"note: {n}" for n in report.notes)
    lines.append("")
    verdict = "PASSED" if report.ok else "FAILED"
    failed = [c.name for c in report.checks if not c.ok]
    lines.append(f"drill {verdict}" + (f" ({', '.join(failed)})" if failed else "")
                 + f" in {report.duration_s:.0f} s")
    return "\n".join(lines) + "\n"


def fault_lines(results: Sequence[FaultResult]) -> list[str]:
    out = []
    for r in results:
        head = f"  {r.fault.describe():<40}"
        if r.status != "injected":
            out.append(f"{head} {r.status.upper()}: {r.reason}")
            continue
        when = f"at {r.progress:.0%}" if r.progress is not None else ""
        if r.injected_at is not None:
            when += f" {r.injected_at:%H:%M:%S}"
        held = f", held {r.held_s:.1f} s for the restart intensity" if r.held_s >= 0.05 else ""
        restart = f"restarted {r.restart_s:.2f} s, " if r.restart_s is not None else ""
        recovery = f"processing again {r.recovery_s:.2f} s" if r.recovery_s is not None else "NOT RECOVERED"
        if r.outage_s is not None:
            recovery += f" (outage {r.outage_s:.1f} s included)"
        out.append(f"{head} {when}{held}: {restart}{recovery}")
        out.append(f"      {r.detail}")
    return out or ["  (none)"]


def write(report: DrillReport, directory: Path) -> tuple[Path, Path]:
    """Write ``report.txt`` and ``report.json`` into ``directory``; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    text_path, json_path = directory / "report.txt", directory / "report.json"
    text_path.write_text(render_text(report))
    json_path.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    return text_path, json_path
