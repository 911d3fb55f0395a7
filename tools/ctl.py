"""``python -m supervisor ctl …``: talk to a running system through its database.

The system is running exactly when its root holds the system advisory lock (see
``persistence.runtime``); with the embedded database, a server that is not running means no
system is running either — ``ctl`` never starts one.

A control command is issued with a deadline, ``--timeout`` seconds (> 0, at most an hour) from
its issue on the database clock; the root never carries it out after that (``persistence.control``).
Interrupted while it waits for the acknowledgement — Ctrl-C (SIGINT) or SIGTERM — ``ctl``
withdraws the command (marks it ``expired`` if it is still pending), prints one line saying so,
or saying what the root had already done, and exits 130 (SIGINT) or 143 (SIGTERM), without a
traceback. The signal is only noted while a database call is in flight, so the call is never
torn in half; a second signal aborts at once (the deadline still holds the command back).
"""

from __future__ import annotations

import argparse
import getpass
import math
import signal
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType, TracebackType
from typing import Any, TextIO

from config import Settings
from model.reasons import Flag
from persistence import attempts, control, embedded, exits, runtime
from model.intents import Open
from persistence.exits import PendingExit
from execution.waiting import describe_waiting
from persistence.db import connect
from persistence.errors import DatabaseError, translated

EXIT_OK = 0
EXIT_NOT_RUNNING = 1
EXIT_REFUSED = 1
POLL_S = 0.05
DEFAULT_TIMEOUT_S = 15.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

COMMANDS = ("status", "pause", "resume", "mode", "killswitch", "flatten", "restart", "reconcile", "review",
            "abandon-exit")


def add_commands(ctl_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ctl subcommands (``status`` plus the durable control messages)."""
    ctl_sub.add_parser("status", help="print the running tree, the execution mode, breakers and reconciliation")
    ctl_sub.add_parser("pause", help="block new entries (exits still go through)")
    ctl_sub.add_parser("resume", help="allow new entries again")
    mode = ctl_sub.add_parser("mode", help="request an execution mode (applied only as far as every guard agrees)")
    mode.add_argument("mode", choices=["shadow", "test", "live"])
    kill = ctl_sub.add_parser("killswitch", help="block (on) or allow (off) new entries; exits still go through")
    kill.add_argument("state", choices=["on", "off"])
    ctl_sub.add_parser("flatten", help="close every position")
    restart = ctl_sub.add_parser("restart", help="restart a node (ops, execution, market) or an actor (node/actor)")
    restart.add_argument("target")
    ctl_sub.add_parser("reconcile", help="reconcile with the exchange now")
    review = ctl_sub.add_parser("review", help="settle an order in the needs-review queue after checking the exchange")
    review.add_argument("attempt", type=_positive_id, help="the attempt id ctl status lists under 'needs review'")
    review.add_argument("verdict", choices=["placed", "absent"],
                        help="placed: the exchange holds it (it is followed); absent: it was never placed")
    abandon = ctl_sub.add_parser("abandon-exit", help="give up a pending exit (its coins stay on the account)")
    abandon.add_argument("paper_trade", type=_positive_id, help="the paper trade ctl status lists under 'exits pending'")
    for p in ctl_sub.choices.values():
        if p.prog.split()[-1] != "status":
            p.add_argument("--timeout", type=timeout_seconds, default=DEFAULT_TIMEOUT_S,
                           help=f"seconds to wait for the acknowledgement, and the command's deadline: it is "
                                f"never carried out later (default {DEFAULT_TIMEOUT_S:g}, at most "
                                f"{control.MAX_TIMEOUT_S:g})")


def _positive_id(text: str) -> int:
    """A row id: a whole number >= 1 in ASCII digits."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (a whole number >= 1)")
    return int(text)


def timeout_seconds(text: str) -> float:
    """``--timeout``: a finite number of seconds, > 0 and at most ``control.MAX_TIMEOUT_S``."""
    allowed = f"seconds > 0 and <= {control.MAX_TIMEOUT_S:g}, e.g. 15"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout must be a number of {allowed}; got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= control.MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"--timeout must be {allowed}; got {text!r}")
    return value


def run(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """Dispatch ``ctl <command>``."""
    if args.ctl_command == "status":
        return status(settings, out)
    cmd_args = {k: getattr(args, k) for k in ("mode", "state", "target", "attempt", "verdict", "paper_trade")
                if getattr(args, k, None) is not None}
    with StopSignals(install=True) as stop:
        return send(settings, args.ctl_command, cmd_args, out, timeout=args.timeout, stop=stop)


def send(settings: Settings, command: str, args: dict[str, Any], out: TextIO, *, timeout: float,
         issuer: str | None = None, stop: StopSignals | None = None) -> int:
    """Issue a durable control command and wait for its acknowledgement (see the module docstring).

    ``stop`` is the ctl process's signal watch; in-process callers (the drill) pass none and keep
    their own Ctrl-C (their command is still bounded by its deadline).
    """
    stop = stop or StopSignals(install=False)
    try:
        return _send(settings, command, args, out, timeout=timeout, issuer=issuer, stop=stop)
    except Interrupted as again:  # a second signal: leave whatever call was in flight
        print(f"ctl: {_signal_name(again.signum)} again: stopped without waiting; a command already sent is"
              f" never carried out after its deadline ({timeout:g} s from its issue)", file=out)
        return 128 + (stop.signum or again.signum)


def _send(settings: Settings, command: str, args: dict[str, Any], out: TextIO, *, timeout: float,
          issuer: str | None, stop: StopSignals) -> int:
    located = _locate(settings, out)
    if located is None:
        return EXIT_NOT_RUNNING
    url, where = located
    issuer = issuer or f"cli:{getpass.getuser()}@{socket.gethostname()}"
    try:
        with connect(url, autocommit=True, application_name="ctl") as conn, translated():
            if runtime.system_lock_holder(conn) is None:
                print(f"the system is not running (no root holds the system lock on {where}); nothing was sent",
                      file=out)
                return EXIT_NOT_RUNNING
            if stop.signum is not None:
                print(f"ctl: {_signal_name(stop.signum)}: interrupted before the command was sent; nothing was sent",
                      file=out)
                return 128 + stop.signum
            command_id = control.issue(conn, issuer=issuer, command=command, args=args, timeout_s=timeout)
            deadline = time.monotonic() + timeout
            while True:
                if stop.signum is not None:
                    return _withdraw(conn, command_id, command, stop.signum, out)
                row = control.get(conn, command_id)
                if row is not None and row.status != "pending":
                    break
                if time.monotonic() >= deadline:
                    if control.expire(conn, command_id, f"no acknowledgement within {timeout:g} s"):
                        print(f"command {command_id} ({command}) was not acknowledged within {timeout:g} s; "
                              "it is marked expired and will not be carried out", file=out)
                        return EXIT_REFUSED
                    row = control.get(conn, command_id)
                    break
                stop.wait(POLL_S)  # another process acts; bounded by the deadline, cut short by a signal
    except DatabaseError as exc:
        print(f"the system is not reachable ({where}): {exc}", file=out)
        if stop.signum is not None:  # interrupted, and the withdrawal could not be written
            print(f"ctl: {_signal_name(stop.signum)}: a command already sent is never carried out after its"
                  f" deadline ({timeout:g} s from its issue)", file=out)
            return 128 + stop.signum
        return EXIT_NOT_RUNNING
    assert row is not None
    print(f"{command} (#{row.id}) {row.status}: {row.result}", file=out)
    return EXIT_OK if row.status == "done" else EXIT_REFUSED


def _withdraw(conn: Any, command_id: int, command: str, signum: int, out: TextIO) -> int:
    """Interrupted while waiting: expire the command if it is still pending, and say what became of it."""
    name = _signal_name(signum)
    if control.expire(conn, command_id, f"withdrawn: ctl was interrupted ({name}) before an acknowledgement"):
        print(f"ctl: {name}: command #{command_id} ({command}) withdrawn before the system acted on it;"
              " it will not be carried out", file=out)
    else:
        row = control.get(conn, command_id)
        assert row is not None
        print(f"ctl: {name}: too late to withdraw command #{command_id} ({command}): the system had already"
              f" handled it — {row.status}: {row.result}", file=out)
    return 128 + signum


def _signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Interrupted(KeyboardInterrupt):
    """Raised by a second stop signal, to leave a database call that does not return.

    A ``KeyboardInterrupt``, so that psycopg cancels the query in flight as it does for Ctrl-C,
    and no ``except Exception`` on the way swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(_signal_name(signum))
        self.signum = signum


class StopSignals:
    """SIGINT and SIGTERM while ctl talks to the system: noted, not raised (main thread only).

    The first signal is remembered in ``signum`` and wakes ``wait``; the caller decides what to
    do at a safe point. A second one raises :class:`Interrupted`. The previous handlers come
    back on exit. With ``install=False``, or off the main thread (where Python delivers no
    signals), it installs nothing and ``signum`` stays None.
    """

    def __init__(self, *, install: bool) -> None:
        self.signum: int | None = None
        self._install = install
        self._woken = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if self._install and threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; return at once when a stop signal comes."""
        self._woken.wait(seconds)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:
            raise Interrupted(signum)
        self.signum = signum
        self._woken.set()


def _locate(settings: Settings, out: TextIO) -> tuple[str, str] | None:
    if settings.database.url is not None:
        return settings.database.url.reveal(), "DATABASE_URL"
    where = f"embedded PostgreSQL in {settings.database.embedded_pg_dir}"
    url = embedded.running_url(settings.database.embedded_pg_dir)
    if url is None:
        print(f"the system is not running ({where} is not running)", file=out)
        return None
    return url, where


def status(settings: Settings, out: TextIO) -> int:
    """Print the running tree: nodes (pid, state, restarts, uptime) and actors; 1 if not running."""
    located = _locate(settings, out)
    if located is None:
        return EXIT_NOT_RUNNING
    url, where = located
    try:
        with connect(url, autocommit=True, application_name="ctl") as conn, translated():
            if runtime.system_lock_holder(conn) is None:
                print(f"the system is not running (no root holds the system lock on {where})", file=out)
                return EXIT_NOT_RUNNING
            nodes = runtime.read_nodes(conn)
            actors = runtime.read_actors(conn)
            switches = control.flags(conn)
            account = read_account(conn)
            summary = render_summary(conn)
    except DatabaseError as exc:
        print(f"the system is not reachable ({where}): {exc}", file=out)
        return EXIT_NOT_RUNNING
    out.write(render_status(nodes, actors, now=datetime.now(UTC)))
    on = [name for name in ("paused", "killswitch") if switches.get(name) is True]
    out.write(f"\nswitches: {', '.join(on) if on else 'none set (not paused, kill switch off)'}\n")
    out.write(render_execution(switches, actors, account, configured_mode=settings.trade_mode.value))
    out.write(summary)
    return EXIT_OK


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountView:
    """What the account actor last wrote: the latest reconciliation and the positions held."""

    reconciliation: dict[str, Any] | None  # the latest reconciliation_reports row
    live_positions: int  # live_positions rows holding something
    pending_exits: tuple[PendingExit, ...] = ()  # exits that have not executed (never dropped)
    in_review: tuple[Open, ...] = ()  # unknown outcomes no lookup could settle


def read_account(conn: Any) -> AccountView:
    """The latest reconciliation report and how many live positions the exchange holds."""
    cur = conn.execute(
        "SELECT id, at, trigger, ok, differences, unknown_orders, missing_orders, halted, error"
        " FROM reconciliation_reports ORDER BY id DESC LIMIT 1")
    row = cur.fetchone()
    latest = None if row is None else dict(zip([c.name for c in cur.description], row, strict=True))
    held = conn.execute("SELECT count(*) FROM live_positions WHERE volume + locked > 0").fetchone()
    return AccountView(reconciliation=latest, live_positions=int(held[0]) if held else 0,
                       pending_exits=tuple(exits.pending(conn)), in_review=tuple(attempts.needs_review(conn)))


def render_execution(switches: dict[str, Any], actors: list[dict[str, Any]], account: AccountView, *,
                     configured_mode: str) -> str:
    """Requested and effective mode, exchange breakers, the latest reconciliation, live positions."""
    counters = next((a["counters"] or {} for a in actors if (a["node"], a["actor"]) == ("execution", "execution")),
                    {})
    requested = switches.get(Flag.MODE.value)
    requested_text = (f"{requested} (set by ctl/Telegram)" if requested in ("shadow", "test", "live")
                      else f"{configured_mode} (TRADE_MODE)")
    effective = counters.get("mode")
    reasons = counters.get("mode_reasons")
    if effective is None:
        effective_text = "unknown (the execution actor has not reported it)"
    elif reasons:
        effective_text = f"{effective}, downgraded: {_reasons_text(reasons)}"
    else:
        effective_text = f"{effective} (every guard agrees)"
    lines = [f"execution: requested {requested_text}; effective {effective_text}"]
    breakers = counters.get("breakers")
    if isinstance(breakers, dict) and breakers:
        lines.append("exchange breakers: " + ", ".join(f"{g} {s}" for g, s in sorted(breakers.items())))
    else:
        lines.append("exchange breakers: n/a")
    lines.append(_reconciliation_text(account.reconciliation))
    halt = switches.get(Flag.RECONCILE_HALT.value)
    if halt:
        detail = halt if isinstance(halt, dict) else {}
        report = f" by report #{detail['report']}" if detail.get("report") is not None else ""
        why = f": {detail['why']}" if detail.get("why") else ""
        lines.append(f"entries: HALTED{report}{why} (exits still go through; ctl reconcile after resolving it)")
    else:
        lines.append("entries: not halted by reconciliation")
    lines.append(f"live positions: {account.live_positions}")
    lines.extend(describe_waiting(account.pending_exits, account.in_review))
    return "\n".join(lines) + "\n"


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _reasons_text(reasons: Any) -> str:
    return ", ".join(map(str, reasons)) if isinstance(reasons, list | tuple) else str(reasons)


def _reconciliation_text(report: dict[str, Any] | None) -> str:
    if report is None:
        return "reconciliation: none yet"
    at = report["at"].astimezone(UTC)
    head = (f"reconciliation #{report['id']} ({report['trigger']}) at {at:%Y-%m-%dT%H:%M:%SZ}:"
            f" {'ok' if report['ok'] else 'DIFFERENCES'}")
    parts = []
    differences = report["differences"] or []
    if differences:
        shown = "; ".join(_difference_text(d) for d in differences[:3])
        more = f"; +{len(differences) - 3} more" if len(differences) > 3 else ""
        parts.append(f"{_count(len(differences), 'difference')}: {shown}{more}")
    for key, label in (("unknown_orders", "open exchange order"), ("missing_orders", "order of ours")):
        if report[key]:
            where = "we do not know" if key == "unknown_orders" else "the exchange does not know"
            parts.append(f"{_count(len(report[key]), label)} {where}")
    if report["error"]:
        parts.append(f"error: {report['error']}")
    return head + (f" — {', '.join(parts)}" if parts else "")


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    head, _, tail = noun.partition(" ")
    return f"{n} {head}s{' ' + tail if tail else ''}"


def _difference_text(item: Any) -> str:
    if isinstance(item, dict):
        text = " ".join(f"{k}={v}" for k, v in item.items())
    else:
        text = str(item)
    return text if len(text) <= 80 else text[:79] + "…"


def render_summary(conn: Any) -> str:
    """Feed freshness per market, the paper book."""
    lines = []
    feeds = conn.execute(
        "SELECT market, max(ts), now() - max(ts), count(*) FILTER (WHERE incomplete) FROM market_1s"
        " GROUP BY market ORDER BY market").fetchall()
    stored = {a: n for a, n in conn.execute(
        "SELECT actor, now() - updated_at FROM runtime_actors WHERE actor IN ('bar', 'feed')").fetchall()}
    for market, last, age, incomplete in feeds:
        lag = ("recording time: a replay" if age.total_seconds() > 86_400 else f"lag {_age_text(age)}")
        lines.append(f"feed {market}: last bar {last.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} ({lag})"
                     + (f", {incomplete} incomplete bars" if incomplete else ""))
    if not feeds:
        lines.append("feed: no bars yet")
    if stored:
        lines.append(f"bar actor reported {_age_text(stored.get('bar'))} ago")
    book = conn.execute(
        "SELECT market, volume, avg_price, last_price, realized_pnl, fees_krw FROM paper_positions ORDER BY market"
    ).fetchall()
    realised = sum((r[4] for r in book), 0)
    fees = sum((r[5] for r in book), 0)
    held = [f"{m} {v.normalize()} @ {a:,.0f} (last {last:,.0f})" for m, v, a, last, _r, _f in book if v > 0]
    lines.append(f"paper: {'; '.join(held) or 'flat'} | realised PnL {realised:+,.0f} KRW, fees {fees:,.0f} KRW")
    return "\n".join(lines) + "\n"


def _age_text(age: Any) -> str:
    if age is None:
        return "-"
    return str(timedelta(seconds=max(0, int(age.total_seconds()))))


def render_status(nodes: list[dict[str, Any]], actors: list[dict[str, Any]], *, now: datetime) -> str:
    """The two tables ``ctl status`` prints."""
    lines = []
    root = next((n for n in nodes if n["node"] == "root"), None)
    if root is not None:
        lines.append(f"system running: {root['detail'].get('mode', '')}".rstrip(": "))
    lines.append(f"{'NODE':<11}{'PID':>8}  {'STATE':<9}{'INC':>4}{'RESTARTS':>10}  {'UPTIME':<10} HEARTBEAT")
    for n in nodes:
        uptime = _age(now, n["started_at"]) if n["state"] == "running" else "-"
        lines.append(f"{n['node']:<11}{n['pid'] or '-':>8}  {n['state']:<9}{n['incarnation']:>4}{n['restarts']:>10}"
                     f"  {uptime:<10} {_age(now, n['heartbeat_at'])} ago")
    lines.append("")
    lines.append(f"{'ACTOR':<22}{'STATE':<11}{'INC':>4}{'MAILBOX':>9}{'PROCESSED':>11}  LAST MESSAGE")
    for a in actors:
        last = a["last_message_at"]
        last_text = "-" if last is None else f"{last.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} ({_age(now, last)} ago)"
        lines.append(f"{a['node'] + '/' + a['actor']:<22}{a['state']:<11}{a['incarnation']:>4}{a['mailbox']:>9}"
                     f"{a['processed']:>11}  {last_text}")
    return "\n".join(lines) + "\n"


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    return str(timedelta(seconds=seconds))
