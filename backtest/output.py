"""What a backtest leaves behind: the report directory and the summary printed at the end.

``report.json`` is canonical JSON (sorted keys, two-space indent, UTF-8, ``Decimal`` as plain
strings, no wall-clock time), so the same inputs give the same bytes. ``run.json`` holds what is
*not* reproducible: the database the run used, the server, when it finished and how long it took.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from backtest import chart
from backtest.report import PaperTrade, Report, iso, plain

REPORT_FORMAT = 1
RULE = "─" * 64


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunFacts:
    """Where and when a backtest ran (``run.json``; not part of the reproducible report)."""

    database: str
    server: str
    kept: bool
    duration_s: float


def write_report(report_dir: Path, *, report: Report, trades: Sequence[PaperTrade], inputs: Mapping[str, Any],
                 prices: dict[str, list[tuple[int, float]]], start_ms: int, end_ms: int, facts: RunFacts) -> None:
    """``report.json``, ``equity.png``, ``report.html`` and ``run.json`` into ``report_dir``."""
    (report_dir / "report.json").write_text(dumps(document(report, trades, inputs)), encoding="utf-8")
    title, subtitle = titles(inputs, start_ms, end_ms)
    chart.render_png(report_dir / "equity.png", chart.ChartInputs(
        title=title, subtitle=subtitle, report=report, trades=trades, start_ms=start_ms, end_ms=end_ms,
        prices=prices))
    chart.render_html(report_dir / "report.html", title=title, subtitle=subtitle, rows=rows(report, inputs),
                      notes=[f"data: {inputs['data']['file']} (sha256 {inputs['data']['sha256']})",
                             f"database: {facts.database} on {facts.server} ({'kept' if facts.kept else 'dropped'})",
                             "each figure is defined in backtest/report.py; the machine-readable report is"
                             " report.json, where and when it ran is in run.json"])
    finished = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    (report_dir / "run.json").write_text(dumps({**dataclasses.asdict(facts), "finished_at": finished}),
                                         encoding="utf-8")


def document(report: Report, trades: Sequence[PaperTrade], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The content of ``report.json``."""
    f = report.figures
    return {
        "format": REPORT_FORMAT,
        "inputs": dict(inputs),
        "figures": {field.name: _jsonable(getattr(f, field.name)) for field in dataclasses.fields(f)},
        "open_positions": [{"market": p.market, "volume": plain(p.volume), "cost_krw": plain(p.cost_krw),
                            "entry_fees_krw": plain(p.entry_fees_krw),
                            "last_price": None if p.last_price is None else plain(p.last_price),
                            "unrealized_pnl_krw": plain(p.unrealized_pnl_krw)} for p in report.open_positions],
        "trades": [{"id": t.id, "time": iso(t.fill_ts * 1000), "market": t.market, "side": t.side,
                    "price": plain(t.price), "volume": plain(t.volume), "amount_krw": plain(t.amount_krw),
                    "fee_krw": plain(t.fee_krw), "realized_pnl_krw": plain(t.realized_pnl), "reason": t.reason}
                   for t in trades],
    }


def summary(report: Report, inputs: Mapping[str, Any], report_dir: Path, facts: RunFacts) -> str:
    """The short table printed at the end."""
    title, subtitle = titles(inputs, None, None)
    lines = [title, subtitle, RULE, *(f"{k:<18}{v}" for k, v in rows(report, inputs)), RULE,
             f"{'report':<18}{report_dir / 'report.json'}  equity.png  report.html",
             f"{'database':<18}{facts.database} on {facts.server} ({'kept' if facts.kept else 'dropped'})"]
    return "\n".join(lines)


def rows(report: Report, inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The figures as ``(label, text)``, for the summary and the HTML page."""
    f = report.figures
    table = [
        ("trades", f"{f.trades:,} ({f.closed_trades:,} closed)"),
        ("win rate", f"{_pct(f.win_rate_pct)}  ({f.wins:,} won, {f.losses:,} lost)"),
        ("PnL after fees", f"{f.pnl_krw:+,.0f} KRW  ({_pct(f.return_pct, signed=True)} of {f.capital_krw:,.0f} KRW"
                           " deployed)"),
        ("fees paid", f"{f.fees_krw:,.0f} KRW"),
        ("max drawdown", f"{-f.max_drawdown_krw:,.0f} KRW" if f.max_drawdown_krw else "0 KRW"),
        ("exposure", f"{_pct(f.exposure_pct)} of the time in a position"),
        ("Sharpe (daily)", "n/a (needs 2 days or more with variation)" if f.sharpe_daily is None
         else f"{f.sharpe_daily:.2f}  over {f.days} days"),
    ]
    table += [("open at the end", f"{p.market} {p.volume.normalize():f}, unrealised {p.unrealized_pnl_krw:+,.0f} KRW")
              for p in report.open_positions]
    replayed = inputs["replayed"]
    table.append(("replayed", f"{replayed['trades']:,} trades, {replayed['first_trade']} → {replayed['last_trade']}"))
    return table


def titles(inputs: Mapping[str, Any], start_ms: int | None, end_ms: int | None) -> tuple[str, str]:
    """``SmaMomentum on KRW-BTC`` and ``<window> · <params> · <data>``."""
    strategy = inputs["strategy"].rpartition(":")[2]
    markets = inputs["replayed"]["markets"]
    shown = ", ".join(markets[:4]) + (f" +{len(markets) - 4} more" if len(markets) > 4 else "")
    window, replayed = inputs["window"], inputs["replayed"]
    lo = _human(window["from"] or (iso(start_ms) if start_ms is not None else replayed["first_trade"]))
    hi = _human(window["to"] or (iso(end_ms) if end_ms is not None else replayed["last_trade"]))
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(inputs["params"].items())) or "default parameters"
    data = inputs["data"]
    return f"{strategy} on {shown}", f"{lo} → {hi} UTC  ·  {params}  ·  {data['file']} ({data['source']})"


def thaw(value: object) -> object:
    """Settings' frozen JSON (FrozenMap, tuples) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


def dumps(document: object) -> str:
    """Canonical JSON text."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _human(iso_text: str) -> str:
    """``2024-08-24T22:28:00Z`` → ``2024-08-24 22:28`` (seconds only when not zero)."""
    text = iso_text.removesuffix("Z").replace("T", " ")
    return text.removesuffix(":00") if len(text) == len("2024-08-24 22:28:00") else text


def _pct(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.2f} %" if signed else f"{value:.2f} %"


def _jsonable(value: object) -> object:
    return plain(value) if isinstance(value, Decimal) else value
