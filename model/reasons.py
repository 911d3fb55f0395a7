"""The words execution records: attempt statuses, blocked reasons and the system flags it reads.

Statuses (``order_attempts.status``): ``logged`` (shadow: recorded, nothing sent), ``blocked``
(a guard or limit stopped it; nothing sent), ``throttled`` (the request budget stayed exhausted),
``test_ok`` (Upbit's orders/test accepted it), ``submitted`` (the exchange holds the order, not
yet final), ``done`` / ``cancelled`` (the exchange's final states), ``unknown`` (committed, and
the exchange's answer is not known: it may or may not hold the order), ``error`` (refused by the
exchange, or confirmed absent after an unknown outcome). Only ``submitted`` and ``unknown`` are
not final; the database refuses a second non-final attempt of one intent.

An *attempt* being final is not the same as its *intent* being done: an exit whose attempt ended
without executing is kept in ``pending_exits`` and retried (see :mod:`execution.engine`), and an
``unknown`` attempt nobody could settle is in the needs-review queue (``review_since``).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    LOGGED = "logged"
    BLOCKED = "blocked"
    THROTTLED = "throttled"
    TEST_OK = "test_ok"
    SUBMITTED = "submitted"
    DONE = "done"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    ERROR = "error"


NOT_FINAL = frozenset({Status.SUBMITTED, Status.UNKNOWN})


class Reason(StrEnum):
    """Why an attempt was stopped or downgraded (``order_attempts.blocked_reasons``)."""

    # the mode was downgraded (the attempt still runs, in the lower mode)
    KEYS_MISSING = "KEYS_MISSING"  # test/live asked for, no API keys
    TEST_DISABLED = "TEST_DISABLED"  # test asked for (or downgraded to), TEST_ORDERS=false
    AUTO_TEST_DISABLED = "AUTO_TEST_DISABLED"  # live refused and AUTO_TEST=false: shadow, not test
    PAPER_PROFILE_MISMATCH = "PAPER_PROFILE_MISMATCH"  # live asked for with PAPER_PROFILE=test
    LIVE_DISABLED = "LIVE_DISABLED"  # live asked for, LIVE_TRADING is not true
    LIVE_UNCONFIRMED = "LIVE_UNCONFIRMED"  # live asked for, LIVE_CONFIRM is not the exact phrase
    READ_ONLY = "READ_ONLY"  # READ_ONLY=true: nothing is ever sent
    FEED_NOT_LIVE = "FEED_NOT_LIVE"  # live asked for, but the market data is a replay (FEED_SOURCE is not upbit)
    # the attempt was stopped (nothing sent)
    THROTTLED = "THROTTLED"  # the exchange's request budget for the second stayed exhausted
    DATA_LAG = "DATA_LAG"  # the intent (or the live market data behind it) is too old
    BREAKER_OPEN = "BREAKER_OPEN"  # the order endpoint's circuit breaker is open
    RISK_LIMIT = "RISK_LIMIT"  # a risk limit or the KRW budget refused it
    KILL_SWITCH = "KILL_SWITCH"  # the kill switch is on: no new entries
    PAUSED = "PAUSED"  # the operator paused entries
    RECONCILE_HALT = "RECONCILE_HALT"  # a reconciliation difference halted entries
    NOT_RECONCILED = "NOT_RECONCILED"  # live entries wait for the start-up reconciliation
    NOTHING_HELD = "NOTHING_HELD"  # a live exit: our ledger holds less of the market than the venue's minimum


class Flag(StrEnum):
    """``system_flags`` names execution and the account read or write."""

    PAUSED = "paused"  # bool
    KILLSWITCH = "killswitch"  # bool
    MODE = "mode"  # the requested mode set at run time: "shadow" | "test" | "live"
    RECONCILED = "reconciled"  # {"at": iso, "ok": bool, "report": id}: the latest reconciliation
    RECONCILE_HALT = "reconcile_halt"  # false, or {"at": iso, "report": id, "why": text}
    RECONCILE_REQUEST = "reconcile_request"  # {"id": command id, "by": issuer}: run one now
