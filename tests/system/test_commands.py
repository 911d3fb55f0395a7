"""The root's command handler against a real database: flags, audit rows, alerts, results."""

from __future__ import annotations

import psycopg
import pytest

from persistence import control
from system.commands import CommandHandler, Outcome
from tests.helpers import MS, eventually


class _Nodes:
    """Records restart and crash requests instead of carrying them out."""

    def __init__(self) -> None:
        self.restarted: list[str] = []
        self.crashed: list[tuple[str, str, str]] = []

    def restart(self, node: str) -> None:
        self.restarted.append(node)

    def crash(self, node: str, actor: str, note: str) -> Outcome:
        self.crashed.append((node, actor, note))
        return Outcome(ok=True, text=f"{node}/{actor} restarted")


@pytest.fixture
def handler() -> CommandHandler:
    nodes = _Nodes()
    return CommandHandler(restart_node=nodes.restart, crash_actor=nodes.crash,
                          actor_nodes=lambda _conn: {"execution": "execution", "account": "execution"})


def run(db: psycopg.Connection, handler: CommandHandler, command: str, issuer: str = "cli:op@host",
        **args: str) -> control.Command:
    command_id = control.issue(db, issuer=issuer, command=command, args=args, timeout_s=15.0)
    assert handler.handle_pending(db) == 1
    row = control.get(db, command_id)
    assert row is not None
    return row


def flag(db: psycopg.Connection, name: str) -> object:
    row = db.execute("SELECT value FROM system_flags WHERE name = %s", (name,)).fetchone()
    return None if row is None else row[0]


@pytest.mark.parametrize("mode", ["shadow", "test", "live"])
def test_mode_records_the_request_and_an_execution_event(db: psycopg.Connection, handler: CommandHandler,
                                                         mode: str) -> None:
    row = run(db, handler, "mode", issuer="telegram:op(42)", mode=mode)
    assert row.status == "done"
    assert row.result is not None and row.result.startswith(f"requested {mode}; execution applies it")
    assert row.result.endswith("see ctl status for the effective mode")
    assert flag(db, "mode") == mode
    assert db.execute("SELECT updated_by FROM system_flags WHERE name = 'mode'").fetchone() == ("telegram:op(42)",)
    assert db.execute("SELECT kind, detail FROM execution_events").fetchall() == [
        ("mode_requested", {"mode": mode, "by": "telegram:op(42)"})]
    alert = db.execute("SELECT kind, level, text FROM alerts").fetchone()
    assert alert is not None and alert[:2] == ("control", "info")
    assert alert[2].startswith(f"mode {mode} by telegram:op(42): done — requested {mode}")


def test_live_is_requested_subject_to_every_live_guard(db: psycopg.Connection, handler: CommandHandler) -> None:
    row = run(db, handler, "mode", mode="live")
    assert row.result == ("requested live; execution applies it only if every live guard agrees — "
                          "see ctl status for the effective mode")


def test_a_bad_mode_is_refused_and_changes_nothing(db: psycopg.Connection, handler: CommandHandler) -> None:
    row = run(db, handler, "mode", mode="yolo")
    assert row.status == "failed" and row.result == "mode takes shadow, test or live"
    assert flag(db, "mode") is None
    assert db.execute("SELECT count(*) FROM execution_events").fetchone() == (0,)


def test_reconcile_sets_the_request_flag(db: psycopg.Connection, handler: CommandHandler) -> None:
    row = run(db, handler, "reconcile", issuer="cli:op@host")
    assert row.status == "done"
    assert row.result == "reconciliation requested; its report follows as an alert and in ctl status"
    assert flag(db, "reconcile_request") == {"id": row.id, "by": "cli:op@host"}


def test_killswitch_on_blocks_entries_only(db: psycopg.Connection, handler: CommandHandler) -> None:
    on = run(db, handler, "killswitch", state="on")
    assert on.result == "kill switch ON: new entries are blocked (exits still go through); flatten to close positions"
    assert flag(db, "killswitch") is True
    off = run(db, handler, "killswitch", state="off")
    assert off.result == "kill switch off" and flag(db, "killswitch") is False


# --- deadlines (security review, issue 15, finding 7) ---------------------------------------------


def test_a_command_past_its_deadline_is_expired_by_the_root_never_carried_out(db: psycopg.Connection,
                                                                              handler: CommandHandler) -> None:
    control.set_flag(db, "killswitch", True, "risk")  # the automatic daily-loss kill switch
    stale = control.issue(db, issuer="cli:op@host", command="killswitch", args={"state": "off"}, timeout_s=0.05)
    # the root was frozen or busy until the database's own clock passed the deadline
    eventually(lambda: db.execute("SELECT clock_timestamp() > expires_at FROM control_commands WHERE id = %s",
                                  (stale,)).fetchone()[0], timeout=5000 * MS, what="the deadline passed")
    fresh = control.issue(db, issuer="cli:op@host", command="pause", timeout_s=15.0)

    assert handler.handle_pending(db) == 1  # the fresh one only

    row = control.get(db, stale)
    assert row is not None and row.status == "expired" and row.result == control.OVERDUE
    assert db.execute("SELECT handled_by FROM control_commands WHERE id = %s", (stale,)).fetchone() == ("root",)
    assert flag(db, "killswitch") is True, "the stale killswitch off was not carried out"
    assert (row := control.get(db, fresh)) is not None and row.status == "done" and flag(db, "paused") is True
    assert db.execute("SELECT level, text FROM alerts WHERE text LIKE 'killswitch off%'").fetchall() == [
        ("warning", f"killswitch off by cli:op@host: expired — {control.OVERDUE}")]
    assert handler.handle_pending(db) == 0 and control.get(db, stale).status == "expired"  # type: ignore[union-attr]


def test_the_deadline_is_the_database_clock_not_the_issuers(db: psycopg.Connection, handler: CommandHandler) -> None:
    """An issuer whose clock is behind (or a root whose clock is) cannot make a stale command run:
    the deadline is written and compared by the database alone."""
    row = db.execute("INSERT INTO control_commands (issued_at, issuer, command, args, expires_at)"
                     " VALUES (now() - interval '20 seconds', 'cli:op@host', 'flatten', '{}',"
                     " now() - interval '5 seconds') RETURNING id").fetchone()
    assert row is not None
    assert handler.handle_pending(db) == 0
    assert (command := control.get(db, row[0])) is not None and command.status == "expired"
    assert flag(db, "flatten") is None


def test_every_issued_command_carries_its_deadline(db: psycopg.Connection) -> None:
    command_id = control.issue(db, issuer="cli:op@host", command="pause", timeout_s=7.5)
    assert db.execute("SELECT expires_at - issued_at FROM control_commands WHERE id = %s",
                      (command_id,)).fetchone()[0].total_seconds() == 7.5
    for bad in (0.0, -5.0, float("nan"), float("inf"), control.MAX_TIMEOUT_S + 1):
        with pytest.raises(ValueError, match="timeout"):
            control.issue(db, issuer="cli:op@host", command="pause", timeout_s=bad)
    with pytest.raises(psycopg.errors.CheckViolation):  # a pending command without a deadline cannot exist
        db.execute("INSERT INTO control_commands (issuer, command) VALUES ('old-ctl', 'pause')")


# ---- the needs-review queue and pending exits -----------------------------------------------------


def _attempt(db: psycopg.Connection, *, side: str = "ask", status: str = "unknown", review: bool = True) -> tuple[int, int]:
    trade = db.execute("INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts,"
                       " source) VALUES ('KRW-BTC', %s, 100, 1, 100, 0, 't', now(), 't') RETURNING id",
                       ("sell" if side == "ask" else "buy",)).fetchone()[0]
    attempt = db.execute(
        "INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request,"
        " review_since) VALUES (%s, 1, %s, 'live', %s, 'KRW-BTC', %s, '{}', %s) RETURNING id",
        (trade, f"sbx-{trade}-1-abcdefgh", status, side, "2026-01-01T00:00:00Z" if review else None)).fetchone()[0]
    return trade, attempt


def test_review_placed_lets_execution_follow_the_order(db: psycopg.Connection, handler: CommandHandler) -> None:
    _trade, attempt = _attempt(db)
    row = run(db, handler, "review", attempt=attempt, verdict="placed")
    assert row.status == "done" and "execution follows it" in (row.result or "")
    status, reviewed = db.execute("SELECT status, reviewed FROM order_attempts WHERE id = %s", (attempt,)).fetchone()
    assert status == "submitted" and reviewed["by"] == "cli:op@host" and reviewed["verdict"] == "placed"


def test_review_absent_puts_an_exit_back_in_the_pending_queue(db: psycopg.Connection, handler: CommandHandler) -> None:
    trade, attempt = _attempt(db, side="ask")
    row = run(db, handler, "review", attempt=attempt, verdict="absent")
    assert row.status == "done" and "pending again" in (row.result or "")
    assert db.execute("SELECT status FROM order_attempts WHERE id = %s", (attempt,)).fetchone() == ("error",)
    assert db.execute("SELECT paper_trade_id, mode, resolution FROM pending_exits").fetchall() == [(trade, "live", None)]
    assert db.execute("SELECT kind FROM execution_events").fetchall() == [("review",)]


def test_review_refuses_what_is_not_in_the_queue(db: psycopg.Connection, handler: CommandHandler) -> None:
    _t, resolving = _attempt(db, review=False)  # execution is still resolving it by itself
    _t, done = _attempt(db, status="done")
    for attempt in (resolving, done, 999_999):
        row = run(db, handler, "review", attempt=attempt, verdict="absent")
        assert row.status == "failed", row.result
    assert db.execute("SELECT count(*) FROM order_attempts WHERE status = 'unknown'").fetchone() == (1,)


def test_abandoning_a_pending_exit_is_audited(db: psycopg.Connection, handler: CommandHandler) -> None:
    trade, _attempt_id = _attempt(db, status="error", review=False)
    db.execute("INSERT INTO pending_exits (paper_trade_id, market, mode, reason, next_at)"
               " VALUES (%s, 'KRW-BTC', 'live', 'blocked (BREAKER_OPEN)', now())", (trade,))
    row = run(db, handler, "abandon-exit", issuer="cli:alice@host", paper_trade=trade)
    assert row.status == "done" and "no longer retries it" in (row.result or "")
    assert db.execute("SELECT resolution FROM pending_exits").fetchone() == ("abandoned by cli:alice@host",)
    again = run(db, handler, "abandon-exit", paper_trade=trade)
    assert again.status == "failed" and "no exit of paper trade" in (again.result or "")
