"""``python -m supervisor smoke --window SECONDS``: did every recent paper trade reach execution?

Looks once, read-only, at the paper-to-order pipeline over the last SECONDS of wall clock (the
database's, by ``paper_trades.created_at``) and prints:

- how many paper trades (intents) the window holds;
- their order attempts by mode and status, as a small table;
- the paper trades without any attempt (how many, and the first few ids);
- the most common ``blocked_reasons`` and a hint for the most common one (:data:`HINTS`).

With ``--json`` the same facts are printed as one JSON object instead. It works whether or not
the system is running (it reads what was written); it never starts the embedded database.

A paper trade written a moment ago may not have its attempt *yet*: run the check a few seconds
after the activity it is meant to cover.

When ``TRADE_MODE`` is test or live and no exchange keys are configured, there is nothing to
test: it prints a ``SKIP:`` line and exits 0.

Exit status: 0 every paper trade in the window has its attempt (or none was in the window, or
skipped); 1 at least one has none, or the database is not reachable; 2 bad usage (``--window``
not a positive number, a missing ``--env-file``) or bad configuration.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC
from pathlib import Path
from typing import Any, TextIO

from config import Settings
from config.settings import LIVE_CONFIRM_PHRASE, TradeMode
from model.reasons import Reason
from persistence import embedded
from persistence.db import connect
from persistence.errors import DatabaseError, translated
from persistence.smoke import PipelineFacts, pipeline_facts

__all__ = ["HINTS", "add_parser", "smoke"]

EXIT_OK = 0
EXIT_MISSING = 1
EXIT_UNREACHABLE = 1
SAMPLE = 5  # paper trade ids listed when some have no attempt
TOP = 5  # blocked reasons listed

HINTS: dict[Reason, str] = {
    Reason.KEYS_MISSING: "set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY (python -m supervisor preflight checks them)",
    Reason.TEST_DISABLED: "TEST_ORDERS=false refuses test mode: set TEST_ORDERS=true to validate orders with "
                          "Upbit's orders/test",
    Reason.AUTO_TEST_DISABLED: "a live request some guard refused fell back to shadow: fix the guard the other "
                               "reasons name, or set AUTO_TEST=true to fall back to test mode instead",
    Reason.PAPER_PROFILE_MISMATCH: "PAPER_PROFILE=test never trades live: set PAPER_PROFILE=default for live",
    Reason.LIVE_DISABLED: "live orders need LIVE_TRADING=true (and every other live guard)",
    Reason.LIVE_UNCONFIRMED: f"live orders need LIVE_CONFIRM set to exactly '{LIVE_CONFIRM_PHRASE}'",
    Reason.READ_ONLY: "READ_ONLY=true sends nothing to the exchange: set READ_ONLY=false to send orders",
    Reason.FEED_NOT_LIVE: "live orders follow live market data only: set FEED_SOURCE=upbit (and MARKETS); a "
                          "replayed recording never drives a real order",
    Reason.THROTTLED: "Upbit's request budget stayed exhausted: make sure nothing else uses these API keys (the "
                      "budget is per account), trade fewer markets, or lower EXEC_THROTTLE_REMAINING",
    Reason.DATA_LAG: "intents or live bars arrived older than EXEC_MAX_DATA_LAG_S: check the feed lag in "
                     "python -m supervisor ctl status and the machine's load (a fast replay makes old intents)",
    Reason.BREAKER_OPEN: "the order endpoint's circuit breaker opened after repeated exchange failures: see the "
                         "breakers in python -m supervisor ctl status and the alerts; it closes once Upbit answers",
    Reason.RISK_LIMIT: "a risk limit or the KRW budget refused it: check RISK_MAX_ORDER_KRW, RISK_MAX_POSITIONS, "
                       "LIVE_MARKETS (empty = no live market) and the KRW balance (Telegram /balance)",
    Reason.KILL_SWITCH: "the kill switch is on (by an operator or RISK_DAILY_LOSS_KRW): "
                        "python -m supervisor ctl killswitch off when it is safe",
    Reason.PAUSED: "entries are paused: python -m supervisor ctl resume",
    Reason.RECONCILE_HALT: "a reconciliation difference halted entries: read the latest reconciliation in "
                           "python -m supervisor ctl status, resolve it, then python -m supervisor ctl reconcile",
    Reason.NOT_RECONCILED: "live entries wait for the start-up reconciliation: check the account actor and the "
                           "latest reconciliation in python -m supervisor ctl status (and the keys: preflight)",
    Reason.NOTHING_HELD: "a live exit found less of the market in our own fills than the venue's minimum order: "
                         "nothing of ours to sell (coins the bot did not buy are never sold); see the alert",
}
"""One line per blocked reason: what to do about it."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``smoke`` and its flags."""
    p = sub.add_parser("smoke", help="check that every recent paper trade got its order attempt (read-only)")
    p.add_argument("--window", type=_window, required=True, metavar="SECONDS",
                   help="look at paper trades created in the last SECONDS (a positive number)")
    p.add_argument("--json", action="store_true", help="print the facts as one JSON object")
    p.add_argument("--env-file", dest="smoke_env_file", type=Path, default=None, metavar="PATH",
                   help="settings file (default: ./.env if present)")


def _window(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def smoke(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """The command; its exit code."""
    as_json = bool(args.json)
    if settings.trade_mode in (TradeMode.TEST, TradeMode.LIVE) and not settings.has_exchange_keys:
        why = (f"TRADE_MODE={settings.trade_mode.value} cannot run without exchange keys (UPBIT_ACCESS_KEY and "
               "UPBIT_SECRET_KEY are not set), so there is no test mode to check")
        _emit(out, as_json, {"ok": True, "skipped": True, "reason": why}, f"SKIP: {why}")
        return EXIT_OK
    try:
        url, where = _database_url(settings)
        with connect(url, autocommit=True, application_name="smoke") as conn, translated():
            facts = pipeline_facts(conn, args.window, sample=SAMPLE, top=TOP)
    except DatabaseError as exc:
        why = f"the database is not reachable: {exc}"
        _emit(out, as_json, {"ok": False, "error": why}, f"error: {why}")
        return EXIT_UNREACHABLE
    ok = facts.missing == 0
    if as_json:
        _emit(out, True, as_dict(facts, settings.trade_mode.value), "")
    else:
        out.write(render(facts, settings.trade_mode.value, where))
    return EXIT_OK if ok else EXIT_MISSING


class _Unreachable(DatabaseError):
    """The embedded server is not running (nothing to read, and smoke never starts it)."""


def _database_url(settings: Settings) -> tuple[str, str]:
    if settings.database.url is not None:
        return settings.database.url.reveal(), "DATABASE_URL"
    where = f"embedded PostgreSQL in {settings.database.embedded_pg_dir}"
    url = embedded.running_url(settings.database.embedded_pg_dir)
    if url is None:
        raise _Unreachable(f"the {where} is not running (smoke never starts it)")
    return url, where


def hint(reason: str) -> str:
    """The hint for one ``blocked_reasons`` value (a value this build does not know gets a pointer)."""
    try:
        return HINTS[Reason(reason)]
    except ValueError:
        return f"{reason} is not a reason this build knows: see the attempt's error and the execution logs"


def as_dict(facts: PipelineFacts, trade_mode: str) -> dict[str, Any]:
    """The facts as JSON-ready values."""
    top = facts.reasons[0][0] if facts.reasons else None
    return {
        "ok": facts.missing == 0,
        "skipped": False,
        "trade_mode": trade_mode,
        "window_s": facts.window_s,
        "since": facts.since.isoformat(),
        "until": facts.until.isoformat(),
        "paper_trades": facts.paper_trades,
        "attempts": [{"mode": m, "status": s, "count": n} for m, s, n in facts.attempts],
        "without_attempt": facts.missing,
        "without_attempt_ids": list(facts.missing_ids),
        "blocked_reasons": [{"reason": r, "count": n} for r, n in facts.reasons],
        "hint": None if top is None else {"reason": top, "text": hint(top)},
    }


def render(facts: PipelineFacts, trade_mode: str, where: str) -> str:
    """The human-readable report."""
    lines = [f"smoke: paper trades created in the last {facts.window_s:g} s (since "
             f"{facts.since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}; database: {where}); TRADE_MODE={trade_mode}"]
    if facts.paper_trades == 0:
        lines.append(f"OK: nothing to check: no paper trades in the last {facts.window_s:g} s")
        return "\n".join(lines) + "\n"
    lines.append(f"paper trades: {facts.paper_trades}")
    lines.append(f"  {'MODE':<8}{'STATUS':<11}{'ATTEMPTS':>8}")
    lines += [f"  {m:<8}{s:<11}{n:>8}" for m, s, n in facts.attempts] or ["  (no attempts)"]
    if facts.reasons:
        lines.append("blocked reasons: " + ", ".join(f"{r} {n}" for r, n in facts.reasons))
        top = facts.reasons[0][0]
        lines.append(f"hint ({top}): {hint(top)}")
    if facts.missing:
        more = ", …" if facts.missing > len(facts.missing_ids) else ""
        lines.append(f"FAIL: {facts.missing} of {facts.paper_trades} paper trades have no order attempt "
                     f"(ids {', '.join(map(str, facts.missing_ids))}{more}); is the execution node running? "
                     "(python -m supervisor ctl status)")
    else:
        lines.append(f"OK: every one of the {facts.paper_trades} paper trades has its order attempt")
    return "\n".join(lines) + "\n"


def _emit(out: TextIO, as_json: bool, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, sort_keys=True) if as_json else text, file=out)
