"""Tests for market.upbit_ws against a real loopback server replaying real captured frames."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from model.market import Trade, TradeSource
from market.capture import read_trades
from market.upbit_ws import (
    Backoff,
    FeedConfigError,
    FeedProtocolError,
    FeedRejected,
    FeedUnavailable,
    StreamSettings,
    StreamState,
    UpbitTradeStream,
)
from tests.helpers import MS, eventually, new_threads
from tests.fakes.upbit_ws import FakeUpbitServer
from tests.market.recorded_frames import raw_frames, raw_trade_frames

MARKETS_30S = ["KRW-LAMB", "KRW-WAVES", "BTC-ITAM"]
FAST = StreamSettings(
    poll_s=20 * MS,
    backoff_initial_s=1 * MS,
    backoff_max_s=10 * MS,
    open_timeout_s=2000 * MS,
    close_timeout_s=1000 * MS,
    max_retries=3,
)


@pytest.fixture(autouse=True)
def _no_threads_left_behind() -> Iterator[None]:
    before = threading.enumerate()
    yield
    eventually(lambda: not new_threads(before), 3000 * MS, what=f"threads left behind: {new_threads(before)}")


class Collector:
    """``on_trades`` fake: records batches and signals when enough trades arrived."""

    def __init__(self, want: int) -> None:
        self.want = want
        self.batches: list[list[Trade]] = []
        self.trades: list[Trade] = []
        self.done = threading.Event()

    def __call__(self, batch: list[Trade]) -> None:
        self.batches.append(list(batch))
        self.trades.extend(batch)
        if len(self.trades) >= self.want:
            self.done.set()


class States:
    """``on_state`` fake: records state changes; ``connected`` is set on every connect."""

    def __init__(self) -> None:
        self.seen: list[StreamState] = []
        self.connected = threading.Event()

    def __call__(self, state: StreamState, detail: str) -> None:
        assert detail
        self.seen.append(state)
        if state is StreamState.CONNECTED:
            self.connected.set()


@contextmanager
def running(stream: UpbitTradeStream, stop: threading.Event) -> Iterator[list[BaseException]]:
    """Run ``stream`` in a thread; on exit set ``stop`` and join it. Yields the errors raised."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            stream.run()
        except BaseException as exc:  # noqa: BLE001 -- handed to the test for assertions
            errors.append(exc)

    thread = threading.Thread(target=target, name="upbit-stream-under-test")
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        thread.join(timeout=5000 * MS)
        assert not thread.is_alive(), "the stream did not return after stop was set"


def _live(trades: list[Trade]) -> list[Trade]:
    return [replace(t, source=TradeSource.LIVE, offset=-1) for t in trades]


@pytest.fixture
def frames_30s(capture_30s: Path) -> list[bytes]:
    return raw_trade_frames(capture_30s)


@pytest.fixture
def expected_30s(capture_30s: Path) -> list[Trade]:
    return _live(list(read_trades(capture_30s)))


def _stream(
    server: FakeUpbitServer,
    on_trades: Callable[[list[Trade]], None],
    stop: threading.Event,
    *,
    markets: list[str] = MARKETS_30S,
    settings: StreamSettings = FAST,
    **kwargs: object,
) -> UpbitTradeStream:
    return UpbitTradeStream(
        server.url,
        markets,
        on_trades,
        stop,
        settings=settings,
        rng=random.Random(7),
        **kwargs,  # type: ignore[arg-type]
    )


def test_streams_real_frames_in_arrival_order(frames_30s: list[bytes], expected_30s: list[Trade]) -> None:
    collect, stop, states = Collector(304), threading.Event(), States()
    with FakeUpbitServer(frames_30s) as server:
        stream = _stream(server, collect, stop, on_state=states, ticket_factory=lambda: "ticket-42")
        with running(stream, stop) as errors:
            assert collect.done.wait(5000 * MS), f"got {len(collect.trades)} of 304 trades"
        assert errors == []
        assert collect.trades == expected_30s  # the out-of-order deliveries included
        assert all(1 <= len(b) <= FAST.batch_max for b in collect.batches)
        assert server.subscriptions == [
            [
                {"ticket": "ticket-42"},
                {"type": "trade", "codes": MARKETS_30S, "is_only_realtime": True},
                {"format": "SIMPLE"},
            ]
        ]
        assert (stream.attempts, stream.sessions) == (1, 1)
        assert states.seen == [StreamState.CONNECTED]


def test_only_subscribed_markets_arrive(frames_30s: list[bytes], expected_30s: list[Trade]) -> None:
    collect, stop = Collector(3), threading.Event()
    with FakeUpbitServer(frames_30s) as server:
        with running(_stream(server, collect, stop, markets=["KRW-WAVES"]), stop) as errors:
            assert collect.done.wait(5000 * MS)
            assert server.all_sent.wait(5000 * MS)
        assert errors == []
        assert collect.trades == [t for t in expected_30s if t.market == "KRW-WAVES"]


def test_default_format(frames_30s: list[bytes], expected_30s: list[Trade]) -> None:
    collect, stop = Collector(304), threading.Event()
    with FakeUpbitServer(frames_30s) as server:
        settings = replace(FAST, fmt="DEFAULT")
        with running(_stream(server, collect, stop, settings=settings), stop) as errors:
            assert collect.done.wait(5000 * MS)
        assert errors == []
        assert server.subscriptions[0][2] == {"format": "DEFAULT"}  # type: ignore[index]
        assert collect.trades == expected_30s


def test_reconnects_after_dropped_connections(frames_30s: list[bytes], expected_30s: list[Trade]) -> None:
    collect, stop, states = Collector(304), threading.Event(), States()
    with FakeUpbitServer(frames_30s, drop_after=[100, 37]) as server:
        stream = _stream(server, collect, stop, on_state=states)
        with running(stream, stop) as errors:
            assert collect.done.wait(5000 * MS), f"got {len(collect.trades)} of 304 trades"
        assert errors == []
        assert collect.trades == expected_30s  # every trade exactly once, in order
        assert server.accepted == 3
        assert (stream.attempts, stream.sessions) == (3, 3)
        assert states.seen == [
            StreamState.CONNECTED,
            StreamState.DISCONNECTED,
            StreamState.CONNECTED,
            StreamState.DISCONNECTED,
            StreamState.CONNECTED,
        ]
        assert len({s[0]["ticket"] for s in server.subscriptions}) == 3  # type: ignore[index]


def test_status_frames_and_server_pings(frames_30s: list[bytes], expected_30s: list[Trade]) -> None:
    collect, stop = Collector(304), threading.Event()
    with FakeUpbitServer(frames_30s, status_every=10, ping_client=True) as server:
        with running(_stream(server, collect, stop), stop) as errors:
            assert collect.done.wait(5000 * MS)
        assert errors == []
        assert collect.trades == expected_30s
        assert server.pongs == 1  # the client answered the server's ping


def test_error_frame_is_fatal(frames_30s: list[bytes]) -> None:
    stop = threading.Event()
    with FakeUpbitServer(frames_30s, reject_with=("INVALID_PARAM", "codes are wrong")) as server:
        with running(_stream(server, Collector(1), stop), stop) as errors:
            eventually(lambda: bool(errors), 5000 * MS, what="the stream to fail")
        (error,) = errors
        assert isinstance(error, FeedRejected)
        assert "INVALID_PARAM" in str(error)
        assert server.accepted == 1  # not retried


def test_malformed_trade_frame_is_fatal_after_the_good_ones(frames_30s: list[bytes]) -> None:
    bad = frames_30s[5].replace(b'"ab":"BID"', b'"ab":"SELL"').replace(b'"ab":"ASK"', b'"ab":"SELL"')
    collect, stop = Collector(10_000), threading.Event()
    with FakeUpbitServer([*frames_30s[:5], bad, *frames_30s[6:]]) as server:
        with running(_stream(server, collect, stop), stop) as errors:
            eventually(lambda: bool(errors), 5000 * MS, what="the stream to fail")
        (error,) = errors
        assert isinstance(error, FeedProtocolError)
        assert "ab is an unknown side 'SELL'" in str(error)
        assert len(collect.trades) == 5  # what came before was delivered
        assert server.accepted == 1


def test_orderbook_and_status_frames_are_skipped(capture_30s: Path, expected_30s: list[Trade]) -> None:
    orderbooks = [f for f in raw_frames(capture_30s) if f.startswith(b'{"ty":"orderbook"')][:20]
    collect, stop = Collector(304), threading.Event()
    extra = [*orderbooks, b'{"status":"UP"}']
    with FakeUpbitServer(raw_trade_frames(capture_30s), extra_frames=extra) as server:
        with running(_stream(server, collect, stop), stop) as errors:
            assert collect.done.wait(5000 * MS)
        assert errors == []
        assert collect.trades == expected_30s


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_gives_up_when_the_server_is_unreachable() -> None:
    stop = threading.Event()
    settings = replace(FAST, max_retries=2)
    states = States()
    url = f"ws://127.0.0.1:{_free_port()}"
    stream = UpbitTradeStream(url, ["KRW-BTC"], Collector(1), stop, settings=settings, on_state=states)
    with pytest.raises(FeedUnavailable, match="3 connection attempts in a row failed") as caught:
        stream.run()
    assert isinstance(caught.value.__cause__, OSError)
    assert (stream.attempts, stream.sessions) == (3, 0)
    assert states.seen == [StreamState.DISCONNECTED] * 3


def test_http_refusal_on_upgrade_is_fatal() -> None:
    stop = threading.Event()
    with FakeUpbitServer([], http_status=403) as server:
        with pytest.raises(FeedRejected, match="HTTP 403"):
            _stream(server, Collector(1), stop).run()
        assert server.http_refusals == 1


def test_http_503_on_upgrade_is_retried() -> None:
    stop = threading.Event()
    with FakeUpbitServer([], http_status=503) as server:
        with pytest.raises(FeedUnavailable, match="HTTP 503"):
            _stream(server, Collector(1), stop, settings=replace(FAST, max_retries=1)).run()
        assert server.http_refusals == 2


def test_stop_returns_promptly_while_idle() -> None:
    stop, states = threading.Event(), States()
    with FakeUpbitServer([]) as server:
        stream = _stream(server, Collector(1), stop, on_state=states)
        with running(stream, stop) as errors:
            assert states.connected.wait(5000 * MS)
        assert errors == []
        assert stream.sessions == 1


def test_stale_connection_is_replaced() -> None:
    now = [1000.0]
    stop, states = threading.Event(), States()
    with FakeUpbitServer([]) as server:
        settings = replace(FAST, stale_after_s=30.0)
        stream = _stream(server, Collector(1), stop, settings=settings, clock=lambda: now[0], on_state=states)
        with running(stream, stop) as errors:
            assert states.connected.wait(5000 * MS)
            eventually(lambda: server.accepted == 1, 5000 * MS, what="the server to see the connection")
            states.connected.clear()
            now[0] += 31.0  # silence for longer than stale_after_s
            assert states.connected.wait(5000 * MS)
        assert errors == []
        assert server.accepted == 2
        assert states.seen[:3] == [StreamState.CONNECTED, StreamState.DISCONNECTED, StreamState.CONNECTED]


def test_on_trades_errors_propagate_unchanged(frames_30s: list[bytes]) -> None:
    def explode(_batch: list[Trade]) -> None:
        raise KeyError("consumer bug")

    stop = threading.Event()
    with FakeUpbitServer(frames_30s) as server:
        with running(_stream(server, explode, stop), stop) as errors:
            eventually(lambda: bool(errors), 5000 * MS, what="the stream to fail")
        assert isinstance(errors[0], KeyError)


def test_configuration_errors() -> None:
    stop = threading.Event()
    with pytest.raises(FeedConfigError, match="at least one market"):
        UpbitTradeStream("ws://127.0.0.1:1", [], Collector(1), stop)
    with pytest.raises(FeedConfigError, match="krw-btc"):
        UpbitTradeStream("ws://127.0.0.1:1", ["krw-btc"], Collector(1), stop)
    with pytest.raises(FeedConfigError, match="invalid WebSocket URL"):
        UpbitTradeStream("not a url", ["KRW-BTC"], Collector(1), stop, settings=FAST).run()
    with pytest.raises(FeedConfigError, match="poll_s"):
        StreamSettings(poll_s=0)
    with pytest.raises(FeedConfigError, match="max_retries"):
        StreamSettings(max_retries=-1)


def test_backoff_is_jittered_capped_and_resettable() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4.0, factor=2.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == 8  # jittered
    assert backoff.failures == 8
    backoff.reset()
    assert 0.25 <= backoff.next_delay() <= 0.5
    again = Backoff(initial_s=0.5, max_s=4.0, factor=2.0, rng=random.Random(1))
    assert [again.next_delay() for _ in range(8)] == delays  # deterministic given the rng
