"""The checks that talk to the outside, GET only: Upbit (keys, clock, rate budget) and Telegram.

Clock skew is measured from the ``Date`` header of Upbit's answers (1-second resolution). For one
answer sent at local time ``t0``, received at ``t1``, with ``Date`` second ``D``, the server's
clock read somewhere in ``[D, D+1)`` while ours read somewhere in ``[t0, t1]``, so our offset lies
in ``[t0 - D - 1, t1 - D]``; several answers narrow it by intersection. The check fails only on
skew that is *certain* to exceed the limit (the interval lies wholly beyond it), so a correct
clock never fails on the header's coarse resolution. :func:`offset_bounds` is that arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from config import Settings
from exchange.errors import ErrorKind, ExchangeError
from exchange.models import Account, OrderChance
from exchange.rate_limit import documented_limits, parse_remaining_req
from tools.preflight.guard import Answer, ReadOnlySession, read_only_upbit
from tools.preflight.report import CheckResult, Classification, PreflightKind, Status

__all__ = ["UpbitProbe", "check_clock", "check_rate_limit", "check_telegram", "offset_bounds", "probe_upbit"]

PREFLIGHT_MARKET = "KRW-BTC"
MAX_CLOCK_SKEW_S = 1.0
LOW_HEADROOM_SHARE = 0.2  # warn when at most this share of a group's per-second budget is left

_NTP_FIX = ("synchronise the clock with NTP: 'timedatectl set-ntp true' (systemd-timesyncd) or install chrony; "
            "'timedatectl status' must say 'System clock synchronized: yes'")

# Fixes more specific than exchange.errors' hints, by Upbit's error name.
_FIX_BY_NAME = {
    "expired_access_key": "the key has expired: issue a new Open API key on upbit.com and put it into "
                          "UPBIT_ACCESS_KEY/UPBIT_SECRET_KEY",
    "invalid_access_key": "Upbit does not know this access key: copy UPBIT_ACCESS_KEY/UPBIT_SECRET_KEY again from "
                          "upbit.com (Open API management), or issue a new key",
    "no_authorization_i_p": "add this machine's public IP (e.g. curl -s https://checkip.amazonaws.com) to the "
                            "key's allowed IPs on upbit.com (Open API management)",
    "no_authorization_ip": "add this machine's public IP (e.g. curl -s https://checkip.amazonaws.com) to the "
                           "key's allowed IPs on upbit.com (Open API management)",
    "out_of_scope": "the key lacks a permission this system needs: enable asset viewing, order viewing and "
                    "ordering for the key on upbit.com (Open API management)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class UpbitProbe:
    """The Upbit checks' results and every answer Upbit gave (for clock and rate-limit checks)."""

    accounts: CheckResult
    order_chance: CheckResult
    answers: tuple[Answer, ...]
    network_failure: CheckResult | None  # the failure when Upbit never answered at all


def probe_upbit(settings: Settings, *, wall: Callable[[], float], sleep: Callable[[float], None],
                monotonic: Callable[[], float], market: str = PREFLIGHT_MARKET) -> UpbitProbe:
    """Check 5: ``GET /v1/accounts`` and ``GET /v1/orders/chance`` with the configured keys."""
    access, secret = settings.exchange.access_key, settings.exchange.secret_key
    titles = ("Upbit accounts with these keys", f"Upbit order rules for {market} (orders/chance)")
    if access is None or secret is None:
        skipped = "not checked: no Upbit keys (see check 2)"
        fix = "set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY"
        return UpbitProbe(accounts=CheckResult.failed("upbit_accounts", titles[0], PreflightKind.NOT_RUN, skipped, fix),
                          order_chance=CheckResult.failed("upbit_order_chance", titles[1], PreflightKind.NOT_RUN,
                                                          skipped, fix),
                          answers=(), network_failure=None)
    base = settings.feed.upbit_rest_url
    client, session = read_only_upbit(base, access_key=access.reveal(), secret_key=secret.reveal(), wall=wall,
                                      sleep=sleep)
    try:
        accounts = _call("upbit_accounts", titles[0], base, lambda: _accounts(client.accounts()), monotonic)
        if accounts.kind in (ErrorKind.RATE_LIMITED, ErrorKind.BLOCKED):
            # Sending more after a 429 is what earns a 418 block: stop here.
            chance = CheckResult.failed("upbit_order_chance", titles[1], PreflightKind.NOT_RUN,
                                        "not sent: Upbit refused the previous request for its rate limit",
                                        "see check upbit_accounts")
        else:
            chance = _call("upbit_order_chance", titles[1], base, lambda: _chance(client.order_chance(market)),
                           monotonic)
            if chance.status is Status.PASS and chance.data.get("state") != "active":
                chance = replace(chance, status=Status.WARN, kind=ErrorKind.MARKET_OFFLINE,
                                 fix="the market is not orderable now (e.g. maintenance): check Upbit's notices")
    finally:
        session.close()
    network = accounts if accounts.kind is ErrorKind.NETWORK and not session.answers else None
    return UpbitProbe(accounts=accounts, order_chance=chance, answers=tuple(session.answers), network_failure=network)


def _call(name: str, title: str, base: str, probe: Callable[[], tuple[str, dict[str, Any]]],
          monotonic: Callable[[], float]) -> CheckResult:
    t0 = monotonic()
    result = _outcome(name, title, base, probe)
    return replace(result, duration_ms=(monotonic() - t0) * 1000)


def _outcome(name: str, title: str, base: str, probe: Callable[[], tuple[str, dict[str, Any]]]) -> CheckResult:
    try:
        detail, data = probe()
    except ExchangeError as exc:
        status = f"HTTP {exc.status} " if exc.status is not None else ""
        error = f"{exc.name}: " if exc.name else ""
        detail = f"{exc.endpoint or base}: {status}{error}{exc.message}"
        if exc.kind is ErrorKind.NETWORK:
            detail = f"{base} unreachable ({exc.message})"
        fix = _FIX_BY_NAME.get(exc.name or "", exc.hint)
        if exc.kind is ErrorKind.NETWORK:
            fix = f"check UPBIT_REST_URL ({base}), DNS, the firewall and this machine's network; {exc.hint}"
        return CheckResult.failed(name, title, exc.kind, detail, fix, status=exc.status, error_name=exc.name)
    return CheckResult.passed(name, title, detail, **data)


def _accounts(accounts: Sequence[Account]) -> tuple[str, dict[str, Any]]:
    currencies = [a.currency for a in accounts]
    shown = ", ".join(currencies[:10]) + (" …" if len(currencies) > 10 else "")
    return f"keys accepted; {len(accounts)} balance(s): {shown or 'none'}", {"currencies": currencies}


def _chance(chance: OrderChance) -> tuple[str, dict[str, Any]]:
    market = chance.market
    detail = (f"{market.id} state {market.state or '?'}, bid fee {chance.bid_fee}, ask fee {chance.ask_fee}, "
              f"min total {market.bid.min_total} {market.bid.currency}")
    return detail, {"market": market.id, "state": market.state, "bid_fee": str(chance.bid_fee),
                    "ask_fee": str(chance.ask_fee), "min_total": str(market.bid.min_total)}


# --- clock skew -----------------------------------------------------------------------------


def offset_bounds(answers: Sequence[Answer]) -> tuple[float, float] | None:
    """``(low, high)``: our clock minus the server's, as far as the ``Date`` headers pin it down."""
    intervals: list[tuple[float, float, float]] = []
    for answer in answers:
        if not answer.date:
            continue
        try:
            server = parsedate_to_datetime(answer.date).timestamp()
        except (TypeError, ValueError):
            continue
        rtt = answer.received_at - answer.sent_at
        intervals.append((answer.sent_at - server - 1.0, answer.received_at - server, rtt))
    if not intervals:
        return None
    low, high = max(i[0] for i in intervals), min(i[1] for i in intervals)
    if low > high:  # inconsistent (the local clock stepped meanwhile): trust the fastest exchange alone
        best = min(intervals, key=lambda i: i[2])
        low, high = best[0], best[1]
    return low, high


def check_clock(probe: UpbitProbe | None, *, max_skew_s: float = MAX_CLOCK_SKEW_S) -> CheckResult:
    """Check 6: our clock against Upbit's ``Date`` header; fail beyond ``max_skew_s``."""
    name, title = "clock_skew", f"clock within {max_skew_s:g} s of Upbit's"
    bounds = None if probe is None else offset_bounds(probe.answers)
    if bounds is None:
        return _not_measured(name, title, probe, "Date header")
    low, high = bounds
    certain = low if low > 0 else (-high if high < 0 else 0.0)
    data = {"offset_low_s": round(low, 3), "offset_high_s": round(high, 3), "max_skew_s": max_skew_s}
    if certain > max_skew_s:
        direction = "ahead of" if low > 0 else "behind"
        return CheckResult.failed(
            name, title, PreflightKind.CLOCK_SKEW,
            f"this machine's clock is {direction} Upbit's by {certain:.1f} to {max(abs(low), abs(high)):.1f} s "
            f"(limit {max_skew_s:g} s)", _NTP_FIX, **data)
    return CheckResult.passed(name, title, f"offset between {low:+.2f} s and {high:+.2f} s (Upbit's Date header "
                              f"has 1 s resolution; limit {max_skew_s:g} s)", **data)


def _not_measured(name: str, title: str, probe: UpbitProbe | None, what: str) -> CheckResult:
    if probe is not None and probe.network_failure is not None:
        return CheckResult.failed(name, title, ErrorKind.NETWORK, f"not measured: Upbit did not answer ({what} "
                                  "needs an answer)", probe.network_failure.fix or "see check upbit_accounts")
    reason = "no Upbit keys to ask with" if probe is None or not probe.answers else f"no {what} in Upbit's answers"
    return CheckResult.failed(name, title, PreflightKind.NOT_RUN, f"not measured: {reason}",
                              "fix the Upbit checks above, then run preflight again")


# --- rate-limit headroom ----------------------------------------------------------------------


def check_rate_limit(probe: UpbitProbe | None) -> CheckResult:
    """Check 7: the per-second budget left in ``Remaining-Req``; fail at zero, warn when nearly used up."""
    name, title = "rate_limit", "Upbit request budget (Remaining-Req)"
    answers = () if probe is None else probe.answers
    fix_busy = ("something else is using this key's request budget (another bot or tool with the same key?): "
                "stop it or give it its own key, then run preflight again")
    blocked = [a for a in answers if a.status == 418]
    if blocked:
        return CheckResult.failed(name, title, ErrorKind.BLOCKED, f"Upbit answered 418 on {blocked[0].path}: "
                                  "temporarily blocked for ignoring 429s",
                                  "stop every process using this key and IP until the block ends; " + fix_busy)
    limited = [a for a in answers if a.status == 429]
    if limited:
        return CheckResult.failed(name, title, ErrorKind.RATE_LIMITED,
                                  f"Upbit answered 429 (too many requests) on {limited[0].path}", fix_busy,
                                  remaining_req=limited[0].remaining_req)
    left: dict[str, int] = {}
    for answer in answers:
        remaining = parse_remaining_req(answer.remaining_req)
        if remaining is not None:
            left[remaining.group] = min(remaining.sec, left.get(remaining.group, remaining.sec))
    if not left:
        return _not_measured(name, title, probe, "Remaining-Req header")
    limits = documented_limits()
    shown = ", ".join(f"{g} {sec} of {limits.get(g, 10):g}/s left" for g, sec in sorted(left.items()))
    exhausted = sorted(g for g, sec in left.items() if sec <= 0)
    if exhausted:
        return CheckResult.failed(name, title, ErrorKind.RATE_LIMITED,
                                  f"no request left this second in group {', '.join(exhausted)} ({shown})",
                                  fix_busy, remaining=left)
    low = sorted(g for g, sec in left.items() if sec <= LOW_HEADROOM_SHARE * limits.get(g, 10))
    if low:
        return CheckResult.warned(name, title, ErrorKind.RATE_LIMITED, f"little headroom: {shown}", fix_busy,
                                  remaining=left)
    return CheckResult.passed(name, title, shown, remaining=left)


# --- Telegram ---------------------------------------------------------------------------------


def check_telegram(settings: Settings, *, wall: Callable[[], float]) -> CheckResult:
    """Check 8: the bot token works (``getMe``) and the bot can reach the chat (``getChat``)."""
    name, title = "telegram", "Telegram bot and chat reachable"
    telegram = settings.telegram
    if telegram.bot_token is None or telegram.chat_id is None:
        return CheckResult.warned(name, title, ErrorKind.CONFIG, "not configured: no alert will reach anyone",
                                  "set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID to get alerts (optional)")
    base = f"{telegram.api_url}/bot{telegram.bot_token.reveal()}"
    session = ReadOnlySession(wall=wall)
    try:
        ok, me = _telegram_get(session, base, "getMe", {})
        if not ok:
            return _telegram_failure(name, title, "getMe", me, telegram.api_url)
        ok, chat = _telegram_get(session, base, "getChat", {"chat_id": telegram.chat_id})
        if not ok:
            return _telegram_failure(name, title, "getChat", chat, telegram.api_url, chat_id=telegram.chat_id)
    finally:
        session.close()
    bot = me.get("result", {}).get("username", "?")
    found = chat.get("result", {})
    label = found.get("title") or found.get("username") or found.get("type") or "?"
    return CheckResult.passed(name, title, f"bot @{bot} can reach chat {telegram.chat_id} ({label})", bot=bot,
                              chat_type=found.get("type"))


def _telegram_get(session: ReadOnlySession, base: str, method: str,
                  params: dict[str, str | int]) -> tuple[bool, dict[str, Any]]:
    """``(ok, body)``; a transport failure is ``(False, {"error_code": None, "description": …})``."""
    try:
        response = session.get(f"{base}/{method}", params=params, timeout=(3.05, 10.0))
    except requests.RequestException as exc:  # its text holds the URL, and so the token: not used
        return False, {"error_code": None, "description": type(exc).__name__}
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 200 and body.get("ok"):
        return True, body
    return False, {"error_code": response.status_code, "description": str(body.get("description") or
                                                                          response.reason or "")[:300]}


def _telegram_failure(name: str, title: str, method: str, answer: dict[str, Any], api_url: str,
                      chat_id: int | None = None) -> CheckResult:
    code, description = answer.get("error_code"), answer.get("description", "")
    kind: Classification
    if code is None:
        kind = ErrorKind.NETWORK
        detail = f"{method}: {api_url} unreachable ({description})"
        fix = f"check TELEGRAM_API_URL ({api_url}), DNS, the firewall and this machine's network"
    elif method == "getMe" and code in (401, 404):
        kind = ErrorKind.INVALID_KEY
        detail = f"getMe: HTTP {code} {description}: Telegram does not accept the bot token"
        fix = "check TELEGRAM_BOT_TOKEN: copy it again from @BotFather (/token), or issue a new one there"
    elif method == "getChat" and code in (400, 403, 404):
        kind = ErrorKind.PERMISSION
        detail = f"getChat: HTTP {code} {description}: the bot cannot reach chat {chat_id}"
        fix = ("check TELEGRAM_CHAT_ID, and let the bot in: send /start to the bot from that chat, or add the bot "
               "to the group")
    elif code == 429:
        kind = ErrorKind.RATE_LIMITED
        detail = f"{method}: HTTP 429 {description}"
        fix = "Telegram rate-limits this bot right now: wait a minute and run preflight again"
    elif code >= 500:
        kind = ErrorKind.SERVER
        detail = f"{method}: HTTP {code} {description}"
        fix = "Telegram answered with a server error: usually temporary, run preflight again later"
    else:
        kind = ErrorKind.UNKNOWN
        detail = f"{method}: HTTP {code} {description}"
        fix = "see Telegram's description above"
    return CheckResult.failed(name, title, kind, detail, fix, method=method, status=code)
