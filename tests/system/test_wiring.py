"""The market node's real actors under their real supervisor, in this process, on a test database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pykka
import pytest

from otp.actor import Crash
from config import Settings, load_settings
from otp.actor_child import current_ref
from otp.core import Supervisor
from otp.events import EventKind, SupervisorEvent
from otp.spec import Strategy, SupervisorFlags
from system.wiring import node_specs
from tests.e2e.harness import SLICE_FROM, SLICE_UNTIL, expected_candle_bars
from tests.helpers import eventually


class FakeChannel:
    """Records what the node would send to the root."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.drained = threading.Event()

    def send(self, *message: Any) -> None:
        self.sent.append(message)
        if message[0] == "drained":
            self.drained.set()


def _settings(tmp_path: Path, db_url: str, **env: str) -> Settings:
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    base = {"DATABASE_URL": db_url, "REPLAY_FROM": SLICE_FROM, "REPLAY_UNTIL": SLICE_UNTIL,
            "STRATEGY_PARAMS": '{"window": 5, "entry_bps": 0, "exit_bps": 0}', "REPLAY_SPEED": "max"}
    return load_settings(env={**base, **env}, env_file=env_file)


@pytest.fixture
def events() -> list[SupervisorEvent]:
    return []


@pytest.fixture
def market(tmp_path: Path, db_url: str, events: list[SupervisorEvent]) -> Iterator[tuple[Supervisor, FakeChannel]]:
    channel = FakeChannel()
    wired = node_specs("market", _settings(tmp_path, db_url, REPLAY_SPEED="3000"), db_url, channel)
    sup = Supervisor("market", SupervisorFlags(strategy=Strategy.REST_FOR_ONE, intensity=5, period=10),
                     wired.specs, on_event=events.append)
    wired.bind(sup)
    sup.start()
    yield sup, channel
    sup.stop()
    pykka.ActorRegistry.stop_all()


def test_an_actor_that_raises_is_restarted_with_those_after_it_and_the_result_is_exact(
        market: tuple[Supervisor, FakeChannel], events: list[SupervisorEvent], db_url: str) -> None:
    sup, channel = market
    with psycopg.connect(db_url, autocommit=True) as conn:
        eventually(lambda: conn.execute("SELECT count(*) FROM market_1s").fetchone()[0] > 20, timeout=30,
                   interval=0.01, what="bars flowing")
        ref = current_ref(sup, "bar")
        assert ref is not None
        ref.tell(Crash(note="test"))
        eventually(lambda: current_ref(sup, "feed") is not None
                   and any(e.kind is EventKind.STARTED and e.child_id == "feed" and e.incarnation == 2 for e in events),
                   timeout=30, interval=0.01, what="bar and feed restarted")
        assert channel.drained.wait(60), "the replay finished after the restart"
        exits = [(e.child_id, e.reason.kind.value) for e in events if e.kind is EventKind.EXITED and e.reason]
        assert ("bar", "error") in exits
        assert ("feed", "shutdown") in exits  # started after bar: restarted with it (rest_for_one)
        assert not any(e.child_id in {"paper", "strategy"} and e.kind is EventKind.EXITED for e in events)
        bars, volume = expected_candle_bars(SLICE_FROM, SLICE_UNTIL)
        assert conn.execute("SELECT count(*), sum(volume) FROM market_1s").fetchone() == (bars, volume)
        # the restarted bar actor kept receiving messages: it processed the rest of the recording
        assert conn.execute("SELECT max(ts) FROM market_1s").fetchone()[0].isoformat().startswith("2024-08-25T00:27")


def test_daily_summary_once_per_utc_day(db: psycopg.Connection) -> None:
    from persistence import control
    from system.root import daily_summary

    assert daily_summary(db) is False  # the first day only records the date
    assert daily_summary(db) is False  # and never twice a day
    control.set_flag(db, "daily_summary_date", "2000-01-01", "test")  # as if the day rolled over
    db.execute("INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason,"
               " bar_ts, source) VALUES ('KRW-BTC', 'sell', 100, 1, 100, 0.05, 12.5, 't', now(), 'capture')")
    assert daily_summary(db) is True
    assert daily_summary(db) is False
    texts = [r[0] for r in db.execute("SELECT text FROM alerts WHERE kind = 'daily_summary'")]
    assert len(texts) == 1 and "1 paper trades" in texts[0] and "realised PnL +12 KRW" in texts[0]
