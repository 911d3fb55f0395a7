"""The drill's checks: the drill run against the reference run, and against itself.

Each check is a function of what the two databases (and the stub Telegram, the simulator, the
drill run's exit code and the fault log) hold once both runs are over; it returns a
:class:`Check` — pass or fail, a one-line summary, and the evidence. The checks:

``orders``      every paper trade has its order attempt: exactly one in shadow; in test/live at
                least one, at most one that reached the exchange (test: one ``test_ok``; live:
                one with an exchange uuid, and at most one simulator order per intent), no
                identifier twice; every attempt final.
``bars``        the 1-second bars equal the reference run's (a bar the drill run marked
                ``incomplete`` may differ).
``paper``       the paper trades (in order: market, side, price, volume, fee, realised PnL,
                deciding bar) and the final paper positions equal the reference run's.
``alerts``      every alert was delivered exactly once: marked sent, and each alert's text
                received once by Telegram (grouped messages are split back into alert lines).
``supervision`` the system exited 0 (the root never gave up); no supervisor restarted more often
                than its intensity allows within its period without giving up (escalating);
                every node give-up was seen by the root; every restart is explained by an
                injected fault (or an armed failpoint) — no restart loop.
``recovery``    every injected fault was recovered from within the bound (and every hang was
                detected by the root); the median and worst recovery times.

With live orders, against the simulated exchange's own book (foreign orders a fault placed under
our identifiers left out):

``ledger``      no sell exceeded what our own fills held of its market when it was placed (minus
                what our open sells still asked for), no order is outside ``LIVE_MARKETS``, and
                no buy total exceeds ``RISK_MAX_ORDER_KRW``;
``exits``       every live exit executed, was refused as ``NOTHING_HELD``, or is pending with
                exactly one critical alert (an exit still pending at the end is reported);
``adoption``    every order an attempt adopted is the order it requested (market, side, type,
                price, volume), and no foreign order was adopted.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from tools.drill.faults import FaultResult

SHOW = 5  # differences listed per check
EXPLAIN_BEFORE_S = 1.0  # a restart up to this long before an injection (clock skew) is its fault's
EXPLAIN_AFTER_S = 15.0  # … and up to this long after its recovery
_HEADER = re.compile(r"^\d+× \S+$")
_IDENT = re.compile(r"^(?P<bot>[a-z0-9]+)-(?P<intent>\d+)-(?P<attempt>\d+)-(?P<nonce>[a-z0-9]+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """The outcome of one invariant."""

    name: str
    ok: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "summary": self.summary, "evidence": self.evidence}


@dataclass(frozen=True, slots=True, kw_only=True)
class Intensity:
    """One supervisor level's restart limit."""

    intensity: int
    period_s: float


def _rows(conn: psycopg.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


# --- orders ------------------------------------------------------------------------------------

def check_orders(run: psycopg.Connection, *, orders: str, sim_orders: Sequence[dict[str, Any]] | None) -> Check:
    per_trade = _rows(run, "SELECT p.id, count(a.id), count(a.id) FILTER (WHERE a.status = 'test_ok'),"
                           " count(a.id) FILTER (WHERE a.uuid IS NOT NULL), count(a.id) FILTER (WHERE NOT a.final),"
                           " count(a.id) FILTER (WHERE a.status IN ('logged', 'test_ok', 'done', 'cancelled'))"
                           " FROM paper_trades p LEFT JOIN order_attempts a ON a.paper_trade_id = p.id"
                           " GROUP BY p.id ORDER BY p.id")
    statuses = dict(_rows(run, "SELECT status, count(*) FROM order_attempts GROUP BY status"))
    problems: list[str] = []
    if orders == "shadow":
        wrong = [(t, n) for t, n, *_ in per_trade if n != 1]
        if wrong:
            problems.append(f"{len(wrong)} paper trades without exactly one attempt, e.g. (trade, attempts) {wrong[:SHOW]}")
    else:
        missing = [t for t, n, *_ in per_trade if n == 0]
        if missing:
            problems.append(f"{len(missing)} paper trades without an attempt, e.g. {missing[:SHOW]}")
        reached = 2 if orders == "test" else 3
        twice = [(row[0], row[reached]) for row in per_trade if row[reached] > 1]
        if twice:
            what = "test_ok attempts" if orders == "test" else "attempts with an exchange order"
            problems.append(f"{len(twice)} intents with more than one of their {what}, e.g. {twice[:SHOW]}")
    open_ = sum(row[4] for row in per_trade)
    if open_:
        problems.append(f"{open_} attempts not final")
    evidence: dict[str, Any] = {"paper_trades": len(per_trade), "attempts_by_status": statuses}
    if sim_orders is not None:
        idents = [str(o.get("identifier")) for o in sim_orders]
        repeated = [i for i, n in Counter(idents).items() if n > 1]
        per_intent = Counter(m.group("intent") for i in idents if (m := _IDENT.match(i)))
        doubled = [i for i, n in per_intent.items() if n > 1]
        evidence.update(exchange_orders=len(sim_orders), identifiers_repeated=repeated[:SHOW],
                        intents_with_two_exchange_orders=doubled[:SHOW])
        if repeated:
            problems.append(f"identifiers sent twice to the exchange: {repeated[:SHOW]}")
        if doubled:
            problems.append(f"intents with more than one exchange order: {doubled[:SHOW]}")
    attempts = sum(statuses.values())
    if problems:
        return Check(name="orders", ok=False, summary="; ".join(problems), evidence=evidence)
    extra = f", {len(sim_orders)} exchange orders, no identifier twice" if sim_orders is not None else ""
    unsuccessful = [row[0] for row in per_trade if row[5] == 0]
    evidence["intents_without_a_successful_attempt"] = [
        {"paper_trade": t, "side": side, "status": status, "error": (error or "")[:300], "reasons": reasons}
        for t, side, status, error, reasons in _rows(
            run, "SELECT DISTINCT ON (paper_trade_id) paper_trade_id, side, status, error, blocked_reasons"
                 " FROM order_attempts WHERE paper_trade_id = ANY(%s) ORDER BY paper_trade_id, attempt DESC",
            (unsuccessful[:SHOW],))]
    if unsuccessful:
        extra += (f"; {len(unsuccessful)} intents ended without a successful attempt (refused by the exchange, "
                  "blocked by a guard or never placed: see the evidence)")
    return Check(name="orders", ok=True, evidence=evidence,
                 summary=f"{len(per_trade)} paper trades, {attempts} attempts ({_counts(statuses)}), all final{extra}")


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


# --- bars ---------------------------------------------------------------------------------------

_BAR_SQL = ("SELECT market, ts, open, high, low, close, volume, trade_count, incomplete FROM market_1s"
            " ORDER BY market, ts")


def check_bars(ref: psycopg.Connection, run: psycopg.Connection) -> Check:
    expected = {(r[0], r[1]): r[2:8] for r in _rows(ref, _BAR_SQL)}
    actual = {(r[0], r[1]): (r[2:8], r[8]) for r in _rows(run, _BAR_SQL)}
    incomplete = sum(1 for _v, inc in actual.values() if inc)
    missing = sorted(k for k in expected if k not in actual)
    extra = sorted(k for k in actual if k not in expected and not actual[k][1])
    differ = sorted(k for k in expected if k in actual and actual[k][0] != expected[k] and not actual[k][1])
    evidence = {"reference_bars": len(expected), "drill_bars": len(actual), "incomplete": incomplete,
                "missing": [_bar_key(k) for k in missing[:SHOW]], "extra": [_bar_key(k) for k in extra[:SHOW]],
                "different": [_bar_key(k) for k in differ[:SHOW]]}
    if missing or extra or differ:
        return Check(name="bars", ok=False, evidence=evidence,
                     summary=f"{len(missing)} bars missing, {len(extra)} extra, {len(differ)} different "
                             f"(of {len(expected)} in the reference run)")
    note = f" ({incomplete} marked incomplete)" if incomplete else ""
    return Check(name="bars", ok=True, evidence=evidence, summary=f"{len(actual)} bars equal the reference run's{note}")


def _bar_key(key: tuple[str, datetime]) -> str:
    return f"{key[0]} {key[1].isoformat()}"


# --- paper ---------------------------------------------------------------------------------------

_TRADES_SQL = ("SELECT market, side, price, volume, fee_krw, realized_pnl, bar_ts FROM paper_trades ORDER BY id")
_POSITIONS_SQL = ("SELECT market, volume, avg_price, cost_krw, realized_pnl, fees_krw, trades FROM paper_positions"
                  " ORDER BY market")


def check_paper(ref: psycopg.Connection, run: psycopg.Connection) -> Check:
    expected, actual = _rows(ref, _TRADES_SQL), _rows(run, _TRADES_SQL)
    first = next((i for i, (a, b) in enumerate(zip(expected, actual)) if a != b), None)
    if first is None and len(expected) != len(actual):
        first = min(len(expected), len(actual))
    pos_expected, pos_actual = _rows(ref, _POSITIONS_SQL), _rows(run, _POSITIONS_SQL)
    pnl = sum((r[5] for r in actual), start=0)
    evidence: dict[str, Any] = {"reference_trades": len(expected), "drill_trades": len(actual),
                                "realised_pnl_krw": str(pnl), "positions_equal": pos_expected == pos_actual}
    problems = []
    if first is not None:
        evidence["first_difference"] = {"index": first, "reference": _text(expected[first:first + 1]),
                                        "drill": _text(actual[first:first + 1])}
        problems.append(f"paper trades differ from #{first + 1} on ({len(actual)} vs {len(expected)} in the reference)")
    if pos_expected != pos_actual:
        evidence["positions"] = {"reference": _text(pos_expected), "drill": _text(pos_actual)}
        problems.append("final paper positions differ")
    if problems:
        return Check(name="paper", ok=False, summary="; ".join(problems), evidence=evidence)
    return Check(name="paper", ok=True, evidence=evidence,
                 summary=f"{len(actual)} paper trades and the final positions equal the reference run's "
                         f"(realised PnL {pnl:+,.0f} KRW)")


def _text(rows: list[tuple[Any, ...]]) -> list[list[str]]:
    return [[str(v) for v in row] for row in rows]


# --- alerts --------------------------------------------------------------------------------------

def notifier_crashes(results: Sequence[FaultResult]) -> int:
    """Injected faults that stop the notifier abruptly (each may re-send the group it was sending)."""
    return sum(1 for r in results if r.status == "injected" and (
        r.fault.kind == "db" or (r.fault.kind == "kill" and r.fault.target == "ops")
        or (r.fault.kind == "hang" and r.fault.target == "ops" and r.detected)
        or (r.fault.kind == "crash" and r.fault.target == "ops/notifier")))


def check_alerts(run: psycopg.Connection, received: Sequence[str], *, crashes: int = 0) -> Check:
    """``crashes``: faults that stopped the notifier abruptly. Exactly-once over HTTP cannot be
    proven (``actors.notifier``): a notifier stopped between Telegram's acceptance and its commit
    sends that one message again after its restart — so each such fault may account for one
    re-sent message, which is reported, not failed. Anything beyond that fails."""
    from notify.compose import line
    from model.alerts import Alert

    rows = _rows(run, "SELECT id, created_at, kind, level, text, attempts, sent_at, channel FROM alerts ORDER BY id")
    unsent = [r for r in rows if r[6] is None]
    # the root's last words ("system stopping") may still be in the outbox when the notifier stops:
    # kept for the next start by design, so not a loss
    stop_notice = [r for r in unsent if r[2] == "system" and str(r[4]).startswith("system stopping")
                   and r[0] == rows[-1][0]]
    lost = [r for r in unsent if r not in stop_notice]
    expected: Counter[str] = Counter()
    undelivered: Counter[str] = Counter()  # lines of alerts not marked sent
    for r in rows:
        alert = Alert(id=r[0], created_at=r[1], kind=r[2], level=r[3], text=r[4], attempts=r[5])
        if r[6] is not None and r[7] == "telegram":
            expected.update(line(alert).split("\n"))
        elif r[6] is None:
            undelivered.update(line(alert).split("\n"))
    got: Counter[str] = Counter()
    resent = 0  # received messages repeating an already received alert line
    for text in received:
        lines = text.split("\n")
        if lines and _HEADER.match(lines[0]):
            lines = lines[1:]
        if any(got[k] >= expected.get(k, 0) and k in expected for k in lines):
            resent += 1
        got.update(lines)
    doubled = {k: got[k] - expected[k] for k in got if got[k] > expected.get(k, 0) and k in expected}
    never = {k: expected[k] - got.get(k, 0) for k in expected if got.get(k, 0) < expected[k]}
    unmarked = [k for k in got if k not in expected and k in undelivered]
    unknown = [k for k in got if k not in expected and k not in undelivered]
    evidence = {"alerts": len(rows), "sent_telegram": sum(1 for r in rows if r[7] == "telegram"),
                "unsent": [f"#{r[0]} {r[2]}: {r[4]}"[:200] for r in lost[:SHOW]],
                "stop_notice_kept_for_next_start": bool(stop_notice), "telegram_messages": len(received),
                "received_twice": list(doubled.items())[:SHOW], "messages_resent": resent,
                "faults_stopping_the_notifier": crashes, "not_received": list(never.items())[:SHOW],
                "received_but_not_marked_sent": unmarked[:SHOW], "received_but_not_an_alert": unknown[:SHOW]}
    problems = []
    if lost:
        problems.append(f"{len(lost)} alerts never marked sent")
    if doubled and resent > crashes:
        problems.append(f"{sum(doubled.values())} alert lines received more than once, in {resent} re-sent messages "
                        f"({crashes} faults stopped the notifier abruptly, each allowing one)")
    if never:
        problems.append(f"{sum(never.values())} alert lines marked sent but never received")
    if unmarked:
        problems.append(f"{len(unmarked)} alert lines received but not marked sent (a restart would send them again)")
    if unknown:
        problems.append(f"{len(unknown)} received lines match no alert")
    if problems:
        return Check(name="alerts", ok=False, summary="; ".join(problems), evidence=evidence)
    kept = " (the final 'system stopping' notice stays in the outbox for the next start)" if stop_notice else ""
    if doubled:
        return Check(name="alerts", ok=True, evidence=evidence,
                     summary=f"{len(rows) - len(stop_notice)} alerts delivered in {len(received)} Telegram messages; "
                             f"{sum(doubled.values())} lines in {resent} message(s) re-sent after the notifier was "
                             f"stopped between Telegram's answer and its commit (the documented limit: at most one "
                             f"message per such stop; {crashes} such fault{'s' if crashes != 1 else ''}){kept}")
    return Check(name="alerts", ok=True, evidence=evidence,
                 summary=f"{len(rows) - len(stop_notice)} alerts delivered exactly once in {len(received)} Telegram "
                         f"messages{kept}")


# --- supervision ---------------------------------------------------------------------------------

def check_supervision(run: psycopg.Connection, *, exit_code: int | None, root: Intensity, node: Intensity,
                      results: Sequence[FaultResult], failpoints: bool) -> Check:
    events = _rows(run, "SELECT at, supervisor, kind, child_id, reason FROM supervisor_events ORDER BY at, id")
    restarts = [(at, sup, child) for at, sup, kind, child, _r in events if kind == "restarting"]
    gave_up = [(at, sup) for at, sup, kind, _c, _r in events if kind == "gave_up"]
    per_child = Counter(f"{sup}/{child}" if sup != "root" else child for _at, sup, child in restarts)
    problems = []
    if exit_code != 0:
        problems.append(f"the system exited {exit_code} (0 expected: the root must not give up)")
    if any(sup == "root" for _at, sup in gave_up):
        problems.append("the root supervisor gave up")
    # intensity: more restarts within a period than allowed is only acceptable with a give-up in that window
    over = []
    for sup in sorted({s for _a, s, _c in restarts}):
        limit = root if sup == "root" else node
        times = [at for at, s, _c in restarts if s == sup]
        worst = _max_in_window(times, limit.period_s)
        if worst > limit.intensity:
            start = next(t for t in times if _count_from(times, t, limit.period_s) == worst)
            window_end = start + timedelta(seconds=limit.period_s)
            if not any(s == sup and start <= at <= window_end + timedelta(seconds=1) for at, s in gave_up):
                over.append(f"{sup}: {worst} restarts within {limit.period_s:g} s (limit {limit.intensity}) and no give-up")
    problems.extend(over)
    # escalations: a node that gave up must be seen exiting by the root (which then restarts it)
    unseen = []
    for at, sup in gave_up:
        if sup == "root":
            continue
        seen = any(s == "root" and kind == "exited" and child == sup and t >= at for t, s, kind, child, _r in events)
        if not seen:
            unseen.append(f"{sup} at {at.isoformat()}")
    if unseen:
        problems.append(f"node give-ups the root did not see: {unseen[:SHOW]}")
    # no restart loop: every restart falls in a fault's span (or follows a failpoint kill)
    spans = _fault_spans(results)
    failpoint_exits = [t for t, s, kind, child, reason in events
                       if failpoints and s == "root" and kind == "exited" and child == "execution"
                       and str(reason).startswith("killed")]
    unexplained = [f"{sup}/{child} at {at.isoformat()}" for at, sup, child in restarts
                   if not any(a <= at <= b for a, b in spans)
                   and not any(t <= at <= t + timedelta(seconds=EXPLAIN_AFTER_S) for t in failpoint_exits)]
    if unexplained:
        problems.append(f"{len(unexplained)} restarts no fault explains (a restart loop?): {unexplained[:SHOW]}")
    escalations = [f"{sup} gave up at {at.isoformat()}" for at, sup in gave_up]
    evidence = {"exit_code": exit_code, "restarts_per_child": dict(per_child), "escalations": escalations,
                "root_limit": f"{root.intensity} in {root.period_s:g} s",
                "node_limit": f"{node.intensity} in {node.period_s:g} s", "unexplained_restarts": unexplained[:SHOW],
                "failpoint_kills": len(failpoint_exits)}
    if problems:
        return Check(name="supervision", ok=False, summary="; ".join(problems), evidence=evidence)
    esc = f"; escalations reported: {'; '.join(escalations)}" if escalations else "; no escalation"
    if not per_child:
        return Check(name="supervision", ok=True, evidence=evidence, summary=f"exit 0; no restart{esc}")
    return Check(name="supervision", ok=True, evidence=evidence,
                 summary=f"exit 0; {sum(per_child.values())} restarts ({_counts(dict(per_child))}), each explained by "
                         f"a fault, within the restart intensity{esc}")


def _count_from(times: list[datetime], start: datetime, period_s: float) -> int:
    end = start + timedelta(seconds=period_s)
    return sum(1 for t in times if start <= t <= end)


def _max_in_window(times: list[datetime], period_s: float) -> int:
    return max((_count_from(times, t, period_s) for t in times), default=0)


def _fault_spans(results: Sequence[FaultResult]) -> list[tuple[datetime, datetime]]:
    spans = []
    for r in results:
        if r.injected_at is None:
            continue
        end = r.recovered_at or (r.injected_at + timedelta(seconds=60))
        spans.append((r.injected_at - timedelta(seconds=EXPLAIN_BEFORE_S), end + timedelta(seconds=EXPLAIN_AFTER_S)))
    return spans


# --- recovery ------------------------------------------------------------------------------------

def check_recovery(results: Sequence[FaultResult]) -> Check:
    injected = [r for r in results if r.status == "injected"]
    undetected = [r for r in injected if r.detected is False]
    unrecovered = [r for r in injected if r.recovery_s is None]
    times = [r.recovery_s for r in injected if r.recovery_s is not None]
    restarts = [r.restart_s for r in injected if r.restart_s is not None]
    evidence: dict[str, Any] = {
        "injected": len(injected), "skipped": [f"{r.fault.describe()}: {r.reason}" for r in results
                                               if r.status != "injected"],
        "median_recovery_s": _round(statistics.median(times)) if times else None,
        "worst_recovery_s": _round(max(times)) if times else None,
        "median_restart_s": _round(statistics.median(restarts)) if restarts else None,
        "worst_restart_s": _round(max(restarts)) if restarts else None,
    }
    figures = (f"processing again: median {evidence['median_recovery_s']} s, worst {evidence['worst_recovery_s']} s"
               if times else "no recovery measured")
    if restarts:
        figures += f"; restarted: median {evidence['median_restart_s']} s, worst {evidence['worst_restart_s']} s"
    problems = []
    if undetected:
        problems.append(f"{len(undetected)} hung node(s) NOT DETECTED by the root: "
                        f"{', '.join(r.fault.describe() for r in undetected)}")
    if unrecovered:
        problems.append(f"{len(unrecovered)} fault(s) not recovered from within the bound: "
                        f"{', '.join(r.fault.describe() for r in unrecovered)}")
    if problems:
        return Check(name="recovery", ok=False, summary="; ".join(problems) + f" ({figures})", evidence=evidence)
    others = Counter(r.status for r in results if r.status != "injected")
    aside = f" ({', '.join(f'{n} {s.replace(chr(95), chr(32))}' for s, n in sorted(others.items()))})" if others else ""
    return Check(name="recovery", ok=True, evidence=evidence,
                 summary=f"{len(injected)} faults recovered{aside}; {figures}")


def _round(value: float) -> float:
    return round(value, 3)


# --- ledger, exits, adoption (live orders) --------------------------------------------------------

def _when(order: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(order.get("placed_at") or order["created_at"]))


def check_ledger(run: psycopg.Connection, orders: Sequence[dict[str, Any]], *, live_markets: Sequence[str],
                 cap: Any) -> Check:
    """Each order against what our fills held when it was placed (the simulator's fills and times)."""
    from decimal import Decimal

    problems: list[str] = []
    sells = 0
    ordered = sorted(orders, key=_when)
    for i, order in enumerate(ordered):
        placed = _when(order)
        if order["market"] not in live_markets:
            problems.append(f"order {order['uuid']} in {order['market']}, outside LIVE_MARKETS {list(live_markets)}")
        if order["side"] == "bid":
            if order.get("price") is not None and Decimal(str(order["price"])) > cap:
                problems.append(f"buy {order['uuid']} of {order['price']} KRW, above RISK_MAX_ORDER_KRW={cap}")
            continue
        sells += 1
        held = open_sells = Decimal(0)
        for before in ordered[:i]:
            if before["market"] != order["market"]:
                continue
            filled = sum((Decimal(str(t["volume"])) for t in before.get("trades", [])
                          if datetime.fromisoformat(str(t["created_at"])) <= placed), Decimal(0))
            if before["side"] == "bid":
                held += filled
            else:
                held -= filled
                if before["state"] in ("wait", "watch") or any(
                        datetime.fromisoformat(str(t["created_at"])) > placed for t in before.get("trades", [])):
                    open_sells += Decimal(str(before["volume"])) - filled
        if Decimal(str(order["volume"])) > held - open_sells:
            problems.append(f"sell {order['uuid']} of {order['volume']} when our fills held {held} and our open "
                            f"sells asked for {open_sells}")
    evidence = {"orders": len(ordered), "sells": sells, "problems": problems[:SHOW]}
    if problems:
        return Check(name="ledger", ok=False, summary=f"{len(problems)} orders beyond the ledger or the limits: "
                                                      f"{problems[0]}", evidence=evidence)
    return Check(name="ledger", ok=True, evidence=evidence,
                 summary=f"{len(ordered)} exchange orders within LIVE_MARKETS and the cap; none of the {sells} sells "
                         "exceeded what our own fills held")


def check_exits(run: psycopg.Connection) -> Check:
    """Every live exit executed, had nothing to sell, or waits visibly (one critical alert)."""
    last = _rows(run, "SELECT DISTINCT ON (a.paper_trade_id) a.paper_trade_id, a.status, a.blocked_reasons,"
                      " a.executed_volume FROM order_attempts a WHERE a.mode = 'live' AND a.side = 'ask'"
                      " ORDER BY a.paper_trade_id, a.attempt DESC")
    pending = {r[0]: r[1] for r in _rows(run, "SELECT paper_trade_id, resolution FROM pending_exits")}
    alerts = [t for (t,) in _rows(run, "SELECT text FROM alerts WHERE level = 'critical' AND text LIKE 'EXIT PENDING%%'")]
    executed = nothing = waiting = 0
    problems: list[str] = []
    for trade, status, reasons, volume in last:
        raised = sum(1 for t in alerts if f"(paper trade {trade})" in t)
        if trade in pending and raised != 1:
            problems.append(f"exit {trade} was pending with {raised} critical alerts (one expected)")
        if status in ("done", "cancelled") and volume > 0:
            executed += 1
        elif "NOTHING_HELD" in (reasons or []) or pending.get(trade) == "nothing held":
            nothing += 1
        elif trade in pending and pending[trade] is None:
            waiting += 1
        elif trade in pending:
            problems.append(f"exit {trade} ended {status} but its pending exit was resolved as {pending[trade]!r}")
        else:
            problems.append(f"exit {trade} ended {status} {reasons} without executing and is not pending")
    evidence = {"live_exits": len(last), "executed": executed, "nothing_held": nothing, "still_pending": waiting,
                "became_pending": len(pending), "problems": problems[:SHOW]}
    if problems:
        return Check(name="exits", ok=False, summary=f"{len(problems)} exits dropped or unannounced: {problems[0]}",
                     evidence=evidence)
    note = f"; {waiting} still pending at the end (visible, one alert each)" if waiting else ""
    return Check(name="exits", ok=True, evidence=evidence,
                 summary=f"{len(last)} live exits: {executed} executed, {nothing} with nothing of ours to sell, "
                         f"{len(pending)} became pending on the way{note}")


def check_adoption(run: psycopg.Connection, orders: Sequence[dict[str, Any]], *, foreign: set[str]) -> Check:
    """Every adopted order is the one its attempt requested; no foreign order is anyone's."""
    from decimal import Decimal

    by_uuid = {str(o["uuid"]): o for o in orders}
    adopted = _rows(run, "SELECT id, uuid, request FROM order_attempts WHERE uuid IS NOT NULL")
    refused = _rows(run, "SELECT count(*) FROM execution_events WHERE kind = 'adoption_refused'")[0][0]
    problems: list[str] = []
    for attempt, uuid, request in adopted:
        if uuid in foreign:
            problems.append(f"attempt {attempt} adopted the foreign order {uuid}")
            continue
        order = by_uuid.get(uuid)
        if order is None:
            problems.append(f"attempt {attempt} adopted {uuid}, which the exchange does not know")
            continue
        for name in ("market", "side", "ord_type"):
            if order[name] != request.get(name):
                problems.append(f"attempt {attempt}: {name} {order[name]!r}, requested {request.get(name)!r}")
        for name in ("price", "volume"):
            if name in request and (order.get(name) is None or Decimal(str(order[name])) != Decimal(request[name])):
                problems.append(f"attempt {attempt}: {name} {order.get(name)}, requested {request[name]}")
    evidence = {"adopted": len(adopted), "foreign_orders": len(foreign), "refused": int(refused),
                "problems": problems[:SHOW]}
    if problems:
        return Check(name="adoption", ok=False, summary=f"{len(problems)} wrong adoptions: {problems[0]}",
                     evidence=evidence)
    return Check(name="adoption", ok=True, evidence=evidence,
                 summary=f"{len(adopted)} orders adopted, each the one requested; {len(foreign)} foreign orders "
                         f"under our identifiers, none adopted ({refused} refusals recorded)")
