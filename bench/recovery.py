"""Benchmark 3 — recovery time: SIGKILL a node process, time until its actors process messages again.

A sandbox runs (the real CLI, candles at 60×, the default) with ``ROOT_INTENSITY`` raised so the
root keeps restarting nodes instead of giving up (the limit itself is not what is measured).
The bench kills the node kinds in turn — ops, execution, market — 7 times each (21 kills;
``--quick``: once each), reading each node's current pid from ``runtime_nodes`` and checking it is
a child of the root before the SIGKILL.

After a kill at ``t_kill`` (the bench's clock, right before ``os.kill``) it polls every 10 ms
``supervisor_events`` of the root for the ``exited`` event (death detected) and the ``started``
event of the new incarnation. The root records ``started`` when the new node reports ready, and
a node reports ready only once every one of its actors has run its setup *and taken a message
from its mailbox* (the start probe each actor start waits for, told after the actor's own first
messages: the market node's feed has already pumped its first trades by then). So

    recovery = ``started`` − ``t_kill``: the restarted node's actors all process messages again.

As a cross-check it also reads ``runtime_actors`` for the earliest ``last_message_at`` after the
kill (stamped by the actor when it takes a product message; the node reports at once on start,
then once a second, so a value later than ``started`` only says no product message had arrived
by the first report).
The floor is the time to spawn a Python process the way the
root spawns a node (multiprocessing ``spawn``) that imports the node's modules and does nothing:
the part of a restart no product change short of a pre-started spare process can remove.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

import psycopg

from bench import procfs
from bench.context import Context
from bench.result import Result
from bench.stats import Figure, Target, percentile
from bench.system import BenchError, SystemProcess, system_env
from persistence.migrate import migrate

NODES = ("ops", "execution", "market")
KILLS_PER_NODE_FULL = 7
KILLS_PER_NODE_QUICK = 1
FLOOR_SPAWNS_FULL = 5
FLOOR_SPAWNS_QUICK = 2
RECOVERY_TIMEOUT_S = 20.0
POLL_S = 0.01


def _floor_child(conn: Connection) -> None:
    """A process that imports what a node process imports, says so, and ends."""
    import supervisor.cli  # noqa: F401 - the node's __mp_main__ is supervisor.__main__, which imports it
    import system.node  # noqa: F401
    import system.wiring  # noqa: F401 - every actor, psycopg, pykka, the market and trading modules

    conn.send("imported")
    conn.close()


def spawn_floor(times: int) -> list[float]:
    """Seconds from ``Process.start()`` to the child having imported the node's modules."""
    mp = multiprocessing.get_context("spawn")
    out = []
    for _ in range(times):
        ours, theirs = mp.Pipe(duplex=False)
        started = time.perf_counter()
        proc = mp.Process(target=_floor_child, args=(theirs,), name="bench-floor")
        proc.start()
        theirs.close()
        try:
            if not ours.poll(30):
                raise BenchError("the floor process did not import within 30 s")
            ours.recv()
            out.append(time.perf_counter() - started)
        finally:
            proc.join(10)
            if proc.exitcode is None:
                proc.kill()
                proc.join(5)
            ours.close()
    return out


def _eventually(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_S)


def _node(conn: psycopg.Connection, node: str) -> tuple[int, int] | None:
    """(pid, incarnation) of a running node as the root last recorded it."""
    row = conn.execute("SELECT pid, incarnation FROM runtime_nodes WHERE node = %s AND state = 'running'"
                       " AND pid IS NOT NULL", (node,)).fetchone()
    return (int(row[0]), int(row[1])) if row else None


def _all_processing(conn: psycopg.Connection) -> bool:
    rows = conn.execute("SELECT node, max(processed) FROM runtime_actors GROUP BY node").fetchall()
    return {n for n, processed in rows if processed and processed > 0} >= set(NODES)


def _ts(value: datetime) -> float:
    return value.timestamp()


def kill_and_time(conn: psycopg.Connection, system: SystemProcess, node: str) -> dict[str, Any]:
    pid, incarnation = _eventually(lambda: _node(conn, node), 30, f"node {node} running")
    if procfs.parent_of(pid) != system.pid:
        raise BenchError(f"pid {pid} of node {node} is not a child of the root {system.pid}")
    t_kill = time.time()
    os.kill(pid, signal.SIGKILL)

    def first_message() -> float | None:
        row = conn.execute("SELECT min(last_message_at) FROM runtime_actors WHERE node = %s"
                           " AND last_message_at > to_timestamp(%s)", (node, t_kill)).fetchone()
        return _ts(row[0]) if row and row[0] is not None else None

    def root_events() -> tuple[float, float] | None:
        rows = conn.execute("SELECT kind, at FROM supervisor_events WHERE node = 'root' AND child_id = %s"
                            " AND at >= to_timestamp(%s) ORDER BY id", (node, t_kill)).fetchall()
        detected = next((_ts(at) for kind, at in rows if kind == "exited"), None)
        ready = next((_ts(at) for kind, at in rows if kind == "started"), None)
        return None if detected is None or ready is None else (detected, ready)

    message = _eventually(first_message, RECOVERY_TIMEOUT_S, f"node {node} to process messages after the kill")
    detected, ready = _eventually(root_events, RECOVERY_TIMEOUT_S, f"the root to restart node {node}")
    # the next kill of this node needs its new pid: wait until the root has recorded it
    _eventually(lambda: (n := _node(conn, node)) is not None and n[1] > incarnation and n[0] != pid, 30,
                f"the root to record node {node}'s new process")
    return {"node": node, "recovery_s": ready - t_kill,
            "first_message_s": message - t_kill, "detected_s": detected - t_kill, "ready_s": ready - t_kill}


def run(ctx: Context) -> Result:
    kills_per_node = KILLS_PER_NODE_QUICK if ctx.quick else KILLS_PER_NODE_FULL
    ctx.say(f"recovery floor: spawning {FLOOR_SPAWNS_QUICK if ctx.quick else FLOOR_SPAWNS_FULL} bare node processes")
    floor = spawn_floor(FLOOR_SPAWNS_QUICK if ctx.quick else FLOOR_SPAWNS_FULL)
    db_url = ctx.server.create("recovery")
    kills: list[dict[str, Any]] = []
    try:
        migrate(db_url)  # before the root does: the bench polls runtime tables from the start
        env = system_env(db_url, ctx.workdir, ROOT_INTENSITY="1000", ROOT_PERIOD_S="1")
        system = ctx.launcher.start(["--speed", "60"], env, "recovery")
        with psycopg.connect(db_url, autocommit=True) as conn:
            _eventually(lambda: not system.running() or _all_processing(conn), 90, "the sandbox to run")
            if not system.running():
                raise BenchError(f"the sandbox exited:\n{system.tail()}")
            ctx.say(f"recovery: {kills_per_node * len(NODES)} SIGKILLs, {' → '.join(NODES)} in turn")
            for _ in range(kills_per_node):
                for node in NODES:
                    if not system.running():
                        raise BenchError(f"the sandbox exited during the kills:\n{system.tail()}")
                    kills.append(kill_and_time(conn, system, node))
        code = system.stop()
        if code != 0:
            raise BenchError(f"the sandbox exited {code} when stopped after the kills:\n{system.tail()}")
    finally:
        ctx.server.drop(db_url)
    recovery = [k["recovery_s"] for k in kills]
    worst = max(recovery)
    ctx.say(f"  recovery p50 {percentile(recovery, 0.5):.2f} s, worst {worst:.2f} s, floor {min(floor):.2f} s")
    figures = [
        Figure(name="p50", unit="s", samples=(percentile(recovery, 0.5),), decimals=3,
               target=Target(op="<=", value=1.0),
               what=f"median over all {len(kills)} kills: SIGKILL → the node's actors process messages again"),
        Figure(name="worst", unit="s", samples=(worst,), decimals=3, target=Target(op="<=", value=2.0),
               what="slowest of all kills"),
        Figure(name="per_kill", unit="s", samples=tuple(recovery), decimals=3, what="every kill (median/min/max)"),
    ]
    for node in NODES:
        mine = [k for k in kills if k["node"] == node]
        figures.append(Figure(name=f"{node}_recovery", unit="s", samples=tuple(k["recovery_s"] for k in mine),
                              decimals=3, what=f"kills of the {node} node"))
    figures += [
        Figure(name="death_detected", unit="s", samples=tuple(k["detected_s"] for k in kills), decimals=3,
               what="SIGKILL → root's 'exited' event"),
        Figure(name="first_product_message", unit="s", samples=tuple(k["first_message_s"] for k in kills),
               decimals=3, what="SIGKILL → earliest runtime_actors.last_message_at of the new node (cross-check)"),
        Figure(name="floor_spawn_import", unit="s", samples=tuple(floor), decimals=3,
               what="spawn a Python process (multiprocessing spawn) importing the node's modules, doing nothing"),
    ]
    return Result(
        key="recovery",
        title="Recovery after SIGKILL of a node process",
        method=("sandbox (candles at 60x, ROOT_INTENSITY=1000); SIGKILL the ops, execution and market nodes in turn;"
                " recovery = root's 'started' event of the new node (every actor set up and past its first"
                " mailbox message) − kill time;"
                " floor = multiprocessing-spawn of a process importing the node's modules"),
        figures=figures,
        notes=["p50 and worst are over all kills within one sandbox (not over runs)",
               "ROOT_INTENSITY is raised to 1000 for this sandbox: with the default (3 restarts in 30 s) the root"
               " would rightly give up long before 21 kills"],
        details={"p50_above_floor_s": round(percentile(recovery, 0.5) - percentile(floor, 0.5), 4),
                 "kills": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in kill.items()}
                           for kill in kills]},
    )
