"""Graceful shutdown of the whole system on SIGTERM (systemd's stop): nodes in reverse start order,
each stopping by itself (``shutdown``, not ``killed``), well within the stop deadline.

Ctrl-C (SIGINT) is covered by ``tests/e2e/test_cli.py``; a node that ignores the stop is killed
at its shutdown timeout (``test_process_child``).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.harness import BUSY_STRATEGY, SLICE_FROM, SLICE_UNTIL, Runner, base_env, exit_code, output
from tests.helpers import eventually
from tests.otp.test_process_child import _alive

NODES = ("ops", "execution", "market")  # the root's start order


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


def test_sigterm_stops_every_node_in_reverse_start_order_within_the_deadline(runner: Runner, db_url: str) -> None:
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY, SHUTDOWN_TIMEOUT_S="5")
    proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        def pids() -> dict[str, int] | None:
            assert proc.poll() is None, output(proc)
            rows = conn.execute("SELECT node, pid FROM runtime_nodes WHERE state = 'running' AND pid IS NOT NULL"
                                " AND node <> 'root'").fetchall()
            return dict(rows) if len(rows) == len(NODES) else None

        nodes = eventually(pids, timeout=60, interval=0.05, what="every node running")

        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert exit_code(proc, 60) == 0, output(proc)
        took = time.monotonic() - began
        reasons = dict(conn.execute("SELECT child_id, reason FROM supervisor_events WHERE supervisor = 'root'"
                                    " AND kind = 'exited'").fetchall())

    log = output(proc)
    positions = [log.index(f"root: exited {node}#1") for node in reversed(NODES)]
    assert positions == sorted(positions), "nodes stop in reverse start order"
    assert all(reasons[node].startswith("shutdown") for node in NODES), reasons
    # each node has SHUTDOWN_TIMEOUT_S * 4 = 20 s before SIGKILL; all three together need less than one
    assert took < 4 * 5, log
    assert not any(_alive(pid) for pid in nodes.values())
