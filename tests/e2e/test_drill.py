"""``python -m supervisor drill`` end to end: the real system, real faults, both report files.

The drill starts its own embedded PostgreSQL (no ``DATABASE_URL`` is passed), so its ``db`` fault
can stop and restart the server without touching the test session's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import base_env

# seed 8, four faults of these kinds, at speed 120 (a run of about 35 s): kill market 14%, telegram 32%, db 61%, crash market/feed 74%
# (the kill and the outage are far enough apart for the root's restart window: see plan.py)
MIXED = ["--faults", "4", "--kinds", "kill,crash,db,telegram", "--seed", "8", "--speed", "120"]


def _drill(tmp_path: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = base_env(None, tmp_path)
    return subprocess.run([sys.executable, "-m", "supervisor", "drill", "--report", str(tmp_path / "report"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.timeout(180)
def test_a_one_minute_drill_with_mixed_faults_holds_every_invariant(tmp_path: Path) -> None:
    done = _drill(tmp_path, *MIXED, timeout=170)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]

    text = (tmp_path / "report" / "report.txt").read_text()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert text.startswith("resilience drill: seed 8, 4 faults")
    assert "drill PASSED" in text and "drill PASSED" in done.stdout
    assert report["ok"] is True and report["seed"] == 8
    assert {c["name"]: c["ok"] for c in report["invariants"]} == {
        "orders": True, "bars": True, "paper": True, "alerts": True, "supervision": True, "recovery": True}
    injected = [f for f in report["faults"] if f["status"] == "injected"]
    assert {f["kind"] for f in injected} == {"kill", "crash", "db", "telegram"}, report["faults"]
    assert all(f["recovery_s"] is not None and f["injected_at"] for f in injected)
    kill = next(f for f in injected if f["kind"] == "kill")
    assert kill["restart_s"] is not None and kill["detail"].startswith("SIGKILL to node market")
    assert [r["label"] for r in report["runs"]] == ["reference", "drill"]
    assert all(r["exit_code"] == 0 for r in report["runs"])
    assert (tmp_path / "report" / "drill.log").stat().st_size > 0


@pytest.mark.timeout(120)
def test_a_drill_against_a_different_reference_fails(tmp_path: Path) -> None:
    done = _drill(tmp_path, "--faults", "0", "--speed", "1000", "--reference-params",
                  '{"window": 9, "entry_bps": 0, "exit_bps": 0}', timeout=110)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    checks = {c["name"]: c["ok"] for c in report["invariants"]}
    assert report["ok"] is False
    assert checks["paper"] is False and checks["bars"] is True
    assert "drill FAILED (paper)" in (tmp_path / "report" / "report.txt").read_text()


@pytest.mark.timeout(240)
def test_a_live_drill_with_an_outage_a_foreign_order_and_a_mode_restart_keeps_the_money_invariants(
        tmp_path: Path) -> None:
    """Issue 15's drill kinds: an exchange outage during exits, a foreign order under our identifier,
    a restart in another mode after `ctl mode live`; and the ledger, exits and adoption invariants."""
    done = _drill(tmp_path, "--orders", "live", "--faults", "3", "--kinds", "outage,foreign,mode", "--seed", "3",
                  "--speed", "60", timeout=230)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    checks = {c["name"]: c for c in report["invariants"]}
    assert {name: c["ok"] for name, c in checks.items()} == {
        "orders": True, "bars": True, "paper": True, "alerts": True, "supervision": True, "recovery": True,
        "ledger": True, "exits": True, "adoption": True}
    assert checks["adoption"]["evidence"]["foreign_orders"] == 1 and checks["adoption"]["evidence"]["refused"] == 1
    assert checks["ledger"]["evidence"]["sells"] > 0 and checks["exits"]["evidence"]["executed"] > 0
    injected = {f["kind"]: f for f in report["faults"] if f["status"] == "injected"}
    assert set(injected) == {"outage", "foreign", "mode"}, report["faults"]
    assert "0 of them in a mode above" in injected["mode"]["detail"]
    assert "not adopted, kill switch set" in injected["foreign"]["detail"]
