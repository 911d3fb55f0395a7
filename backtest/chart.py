"""The backtest's pictures: an equity-curve PNG (matplotlib, Agg) and a small static HTML page.

The PNG has three parts, read top to bottom:

- the headline figures as cards (PnL after fees, win rate, max drawdown, trades, exposure,
  Sharpe), so the picture alone answers "did it make money, and how bumpy was it";
- the closed-trade equity curve (realised PnL after fees), green above zero and red below, with
  the drawdown from the running peak shaded;
- the price the strategy traded on, with every buy (▲) and sell (▼), on the same time axis.

Long holes in the data (the shipped candle year is sampled in windows) break the price line
instead of drawing a straight line across them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: before pyplot is imported

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from backtest.report import Figures, PaperTrade, Report  # noqa: E402

MAX_POINTS = 2_400  # per market: more than a 12-inch figure can show
MAX_MARKERS = 600  # more fills than this would hide the price line: they are counted, not drawn
GAP_BUCKETS = 3  # a hole in the data longer than this many buckets, 5 min and GAP_SHARE of the
GAP_SHARE = 0.015  # span breaks the price line (shorter ones are invisible at the picture's scale)

INK = "#1f2933"
MUTED = "#6b7280"
GRID = "#e5e7eb"
EQUITY = "#2563eb"
GAIN = "#16a34a"
LOSS = "#dc2626"
PRICE = "#475569"
PALETTE = ("#475569", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#65a30d", "#7c3aed", "#0d9488",
           "#b45309")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartInputs:
    """Everything the picture shows."""

    title: str  # e.g. "SmaMomentum on KRW-BTC"
    subtitle: str  # window, parameters, data
    report: Report
    trades: Sequence[PaperTrade]
    start_ms: int
    end_ms: int
    prices: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # market -> (epoch s, close)


def downsample(closes: Iterable[tuple[str, int, Decimal]], *, start_ms: int, end_ms: int,
               max_points: int = MAX_POINTS) -> dict[str, list[tuple[int, float]]]:
    """Per market, the last close of each of at most ``max_points`` equal time buckets.

    ``closes`` is ``(market, epoch second, close)`` ordered by market then time.
    """
    width = max(1, math.ceil((end_ms - start_ms) / 1000 / max_points))
    series: dict[str, list[tuple[int, float]]] = {}
    for market, ts, close in closes:
        points = series.setdefault(market, [])
        bucket = ts // width
        if points and points[-1][0] // width == bucket:
            points[-1] = (ts, float(close))
        else:
            points.append((ts, float(close)))
    return series


def render_png(path: Path, inputs: ChartInputs) -> None:
    """Draw the picture into ``path`` (PNG)."""
    fig = plt.figure(figsize=(12, 7.6), dpi=110, facecolor="white")
    try:
        _draw(fig, inputs)
        fig.savefig(path, format="png", facecolor="white", metadata={"Software": None})
    finally:
        plt.close(fig)


def _draw(fig: Figure, inputs: ChartInputs) -> None:
    grid = fig.add_gridspec(3, 1, height_ratios=(0.9, 3.2, 2.0), hspace=0.2, left=0.075, right=0.975,
                            top=0.885, bottom=0.075)
    fig.text(0.075, 0.955, inputs.title, fontsize=17, fontweight="bold", color=INK, va="center")
    fig.text(0.075, 0.918, inputs.subtitle, fontsize=9.5, color=MUTED, va="center")
    _cards(fig.add_subplot(grid[0]), inputs.report.figures)
    equity_ax = fig.add_subplot(grid[1])
    price_ax = fig.add_subplot(grid[2], sharex=equity_ax)
    _equity(equity_ax, inputs)
    _prices(price_ax, inputs)
    span_s = (inputs.end_ms - inputs.start_ms) / 1000
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    price_ax.xaxis.set_major_locator(locator)
    price_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    equity_ax.tick_params(labelbottom=False)
    pad = span_s * 0.01 / 86_400
    price_ax.set_xlim(_num(inputs.start_ms) - pad, _num(inputs.end_ms) + pad)


def _cards(ax: plt.Axes, f: Figures) -> None:
    ax.set_axis_off()
    pnl_color = GAIN if f.pnl_krw > 0 else (LOSS if f.pnl_krw < 0 else INK)
    cards = [
        ("PnL after fees", f"{_amount(f.pnl_krw)} KRW",
         f"{_pct_text(f.return_pct, signed=True)} of {_krw(f.capital_krw)} deployed", pnl_color),
        ("Win rate", _pct_text(f.win_rate_pct), f"{f.wins:,} won · {f.losses:,} lost", INK),
        ("Max drawdown", f"{_amount(-f.max_drawdown_krw)} KRW", "largest fall from a peak",
         LOSS if f.max_drawdown_krw else INK),
        ("Trades", f"{f.trades:,}", f"fees {_krw(f.fees_krw)} KRW", INK),
        ("Exposure", _pct_text(f.exposure_pct), "of the time in a position", INK),
        ("Sharpe (daily)", "n/a" if f.sharpe_daily is None else f"{f.sharpe_daily:.2f}",
         f"over {f.days} day{'s' if f.days != 1 else ''}", INK),
    ]
    n = len(cards)
    for i, (label, value, note, color) in enumerate(cards):
        x0 = i / n
        box = FancyBboxPatch((x0 + 0.004, 0.02), 1 / n - 0.012, 0.96, boxstyle="round,pad=0,rounding_size=0.06",
                             transform=ax.transAxes, facecolor="#f8fafc", edgecolor=GRID, linewidth=1)
        ax.add_patch(box)
        cx = x0 + 0.5 / n
        ax.text(cx, 0.78, label.upper(), transform=ax.transAxes, ha="center", va="center", fontsize=7.5,
                color=MUTED, fontweight="bold")
        ax.text(cx, 0.46, value, transform=ax.transAxes, ha="center", va="center", fontsize=14,
                color=color, fontweight="bold")
        ax.text(cx, 0.16, note, transform=ax.transAxes, ha="center", va="center", fontsize=7.5, color=MUTED)


def _equity(ax: plt.Axes, inputs: ChartInputs) -> None:
    _style(ax)
    points = inputs.report.equity
    xs = [_num(p.ts_ms) for p in points]
    ys = [float(p.equity_krw) for p in points]
    ax.fill_between(xs, [max(y, 0.0) for y in ys], 0, step="post", color=GAIN, alpha=0.14, linewidth=0)
    ax.fill_between(xs, [min(y, 0.0) for y in ys], 0, step="post", color=LOSS, alpha=0.14, linewidth=0)
    ax.axhline(0, color=INK, linewidth=0.8, alpha=0.5)
    ax.step(xs, ys, where="post", color=EQUITY, linewidth=1.9, zorder=3, label="realised PnL after fees")
    peak_i, trough_i = _max_drawdown(ys)
    if trough_i > peak_i:
        px, py, tx, ty = xs[peak_i], ys[peak_i], xs[trough_i], ys[trough_i]
        ax.plot([px, tx], [py, py], color=LOSS, linewidth=1, linestyle=(0, (2, 2)), zorder=4)
        ax.annotate("", xy=(tx, ty), xytext=(tx, py), zorder=4,
                    arrowprops={"arrowstyle": "-|>", "color": LOSS, "linewidth": 1.3, "shrinkA": 0, "shrinkB": 0})
        right = tx > (xs[0] + xs[-1]) / 2
        ax.annotate(f"max drawdown {_signed(-inputs.report.figures.max_drawdown_krw)} KRW", xy=(tx, (py + ty) / 2),
                    xytext=(-8 if right else 8, 0), textcoords="offset points", ha="right" if right else "left",
                    va="center", fontsize=8.5, color=LOSS, fontweight="bold", zorder=5)
    unrealized = inputs.report.figures.unrealized_pnl_krw
    if inputs.report.open_positions:
        ax.plot([xs[-1]], [ys[-1] + float(unrealized)], marker="o", markersize=6, linestyle="none",
                color=GAIN if unrealized >= 0 else LOSS, markeredgecolor="white", zorder=5,
                label=f"incl. the open position ({_signed(unrealized)} KRW)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:+,.0f}" if v else "0"))
    ax.set_ylabel("KRW", color=MUTED, fontsize=9)
    ax.margins(y=0.08)
    _header(ax, "Equity")


def _prices(ax: plt.Axes, inputs: ChartInputs) -> None:
    _style(ax)
    markets = sorted(inputs.prices)
    indexed = len(markets) > 1
    base: dict[str, float] = {}
    for i, market in enumerate(markets):
        points = inputs.prices[market]
        if not points:
            continue
        base[market] = points[0][1] if indexed else 1.0
        xs, ys = _with_gaps(points, inputs.start_ms, inputs.end_ms)
        scale = 100.0 / base[market] if indexed else 1.0
        ax.plot(xs, [y * scale for y in ys], color=PALETTE[i % len(PALETTE)], linewidth=1.0, label=market)
    shown = [t for t in inputs.trades if t.market in base]
    for side, marker, color in (("buy", "^", GAIN), ("sell", "v", LOSS)):
        fills = [t for t in shown if t.side == side]
        if fills and len(shown) <= MAX_MARKERS:
            scales = {m: (100.0 / b if indexed else 1.0) for m, b in base.items()}
            ax.scatter([_num(t.fill_ts * 1000) for t in fills], [float(t.price) * scales[t.market] for t in fills],
                       marker=marker, s=30, color=color, edgecolors="white", linewidths=0.6, zorder=4,
                       label=f"{side} ({len(fills)})")
    ax.set_ylabel("indexed to 100" if indexed else "KRW", color=MUTED, fontsize=9)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _compact(v, [float(t) for t in ax.yaxis.get_majorticklocs()])))
    ax.margins(y=0.1)
    many = len(shown) > MAX_MARKERS
    _header(ax, f"Price  ·  {len(shown):,} fills, too many to mark at this scale" if many else "Price and fills")


def _header(ax: plt.Axes, title: str) -> None:
    """The panel's title on the left and its legend on the right, both above the plot area."""
    ax.set_title(title, loc="left", fontsize=10, color=INK, fontweight="bold", pad=6)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=len(handles), fontsize=8,
                  frameon=False, borderaxespad=0.2, handletextpad=0.4, columnspacing=1.2)


def _max_drawdown(ys: Sequence[float]) -> tuple[int, int]:
    """Indexes of the peak and the trough of the largest fall from a running peak (peak starts at 0)."""
    best = (0, 0, 0.0)
    peak_i = 0
    for i, y in enumerate(ys):
        if y > ys[peak_i]:
            peak_i = i
        if ys[peak_i] - y > best[2]:
            best = (peak_i, i, ys[peak_i] - y)
    return best[0], best[1]


def _with_gaps(points: Sequence[tuple[int, float]], start_ms: int, end_ms: int) -> tuple[list[float], list[float]]:
    span_s = (end_ms - start_ms) / 1000
    hole = max(300.0, GAP_BUCKETS * span_s / MAX_POINTS, GAP_SHARE * span_s)
    xs: list[float] = []
    ys: list[float] = []
    previous: int | None = None
    for ts, close in points:
        if previous is not None and ts - previous > hole:
            xs.append(_num((previous + 1) * 1000))
            ys.append(math.nan)
        xs.append(_num(ts * 1000))
        ys.append(close)
        previous = ts
    return xs, ys


def _style(ax: plt.Axes) -> None:
    ax.set_facecolor("white")
    ax.grid(True, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(GRID)
    ax.tick_params(colors=MUTED, labelsize=8.5)


def _num(ts_ms: int) -> float:
    return float(mdates.date2num(datetime.fromtimestamp(ts_ms / 1000, UTC)))


def _compact(value: float, ticks: Sequence[float]) -> str:
    """``86,200,000`` → ``86.2M``, with as many decimals as the tick spacing needs (same for every tick)."""
    scale, suffix = next(((s, x) for s, x in ((1e9, "B"), (1e6, "M"), (1e3, "k")) if max(map(abs, ticks), default=0) >= s),
                         (1.0, ""))
    step = min((abs(b - a) for a, b in zip(ticks, ticks[1:], strict=False) if b != a), default=scale) / scale
    decimals = max(0, min(6, -math.floor(math.log10(step)) if step > 0 else 0))
    return f"{value / scale:,.{decimals}f}{suffix}"


def _krw(value: Decimal) -> str:
    return f"{value:,.0f}"


def _amount(value: Decimal) -> str:
    """A signed KRW amount that fits a card: ``-12,349``, ``+1.07M``."""
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:+,.2f}M"
    return _signed(value)


def _signed(value: Decimal) -> str:
    return f"{value:+,.0f}" if value.quantize(Decimal(1)) else "0"


def _pct_text(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.2f} %" if signed and value else f"{value:.2f} %"


# --- the HTML page ---------------------------------------------------------------------------


def render_html(path: Path, *, title: str, subtitle: str, rows: Sequence[tuple[str, str]],
                notes: Sequence[str], image: str = "equity.png") -> None:
    """A small self-contained page: the title, the picture, the figures table and notes."""
    esc = html.escape
    table = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    extra = "\n".join(f"<li>{esc(n)}</li>" for n in notes)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body{{font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:{INK};max-width:1360px;margin:24px auto;
padding:0 16px}}
h1{{font-size:22px;margin:0}} .sub{{color:{MUTED};margin:2px 0 16px}}
img{{width:100%;height:auto;border:1px solid {GRID};border-radius:8px}}
table{{border-collapse:collapse;margin:16px 0}} th,td{{padding:4px 14px;border-bottom:1px solid {GRID};
text-align:left}} th{{color:{MUTED};font-weight:600}} td{{font-variant-numeric:tabular-nums}}
li{{color:{MUTED}}}
</style></head><body>
<h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p>
<img src="{esc(image)}" alt="equity curve and fills">
<table>
{table}
</table>
<ul>
{extra}
</ul>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
