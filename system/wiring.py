"""Which actors each node runs, in which order, with which collaborators.

- ``ops``: NotifierActor, and TelegramCommandActor when Telegram is configured.
- ``execution``: ExecutionActor, AccountActor (one_for_one: independent).
- ``market``: PaperActor, StrategyActor, BarActor, FeedActor — started downstream first, so
  every actor's consumer exists before it emits, and supervised rest_for_one: when an actor
  restarts, every actor upstream of it (started after it) restarts too and re-derives what it
  had in flight from PostgreSQL. Stopping runs in reverse: the feed stops first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol
from dataclasses import dataclass, field

from actors.account import AccountActor
from actors.bar import BarActor
from actors.board import StatusBoard
from actors.execution import ExecutionActor
from execution.engine import EngineConfig
from actors.feed import RECORDINGS, ReplayFeedActor, replay_feed_name
from actors.live_feed import CLOSE_GRACE_MS, LIVE_FEED, LiveFeedActor
from actors.notifier import NotifierActor
from actors.paper import PaperActor
from actors.peers import Peers
from actors.strategy import StrategyActor
from actors.telegram_commands import TelegramCommandActor
from config import Settings
from market.recording import Recording
from persistence import alerts
from persistence.errors import DatabaseError
from exchange.rest import UpbitClient
from notify.telegram import TelegramClient
from otp.actor_child import actor_child, current_ref
from otp.core import Supervisor
from otp.spec import DEFAULT_HANG_TIMEOUT_S, ChildSpec
from trading.strategy import load_factory

log = logging.getLogger(__name__)

NETWORK_HANG_S = 300.0
"""Hang limit of actors whose one message may wait on the network (HTTP retries with timeouts,
an unknown order's lookup window): far above their worst legitimate handler, far below forever.
The market actors keep the default (:data:`otp.spec.DEFAULT_HANG_TIMEOUT_S`)."""



class RootChannel(Protocol):
    """The node's line to the root (``system.node``'s channel); the market node reports ``drained``."""

    def send(self, *message: Any) -> None: ...

@dataclass(slots=True, kw_only=True)
class NodeWiring:
    """A node's child specs and the shared objects its actors use."""

    specs: list[ChildSpec]
    peers: Peers = field(default_factory=Peers)
    board: StatusBoard = field(default_factory=StatusBoard)

    def bind(self, sup: Supervisor) -> None:
        self.peers.bind(lambda name: current_ref(sup, name))


def node_specs(node: str, settings: Settings, db_url: str, channel: RootChannel) -> NodeWiring:
    """The wiring of ``node`` (one of the root's node names)."""
    wiring = NodeWiring(specs=[])
    board, peers = wiring.board, wiring.peers
    shutdown = settings.supervision.shutdown_timeout_s
    if node == "ops":
        telegram = None
        if settings.telegram.bot_token is not None:
            telegram = TelegramClient(settings.telegram.api_url, settings.telegram.bot_token.reveal())
        wiring.specs = [ChildSpec(id="notifier", shutdown=shutdown, hang_timeout_s=NETWORK_HANG_S, start=actor_child(
            NotifierActor, board=board, db_url=db_url, telegram=telegram, chat_id=settings.telegram.chat_id,
            min_level=settings.telegram.min_level, disabled_kinds=settings.telegram.disabled_kinds))]
        if settings.telegram.bot_token is not None and settings.telegram.chat_id is not None:
            commands_client = TelegramClient(settings.telegram.api_url, settings.telegram.bot_token.reveal())
            wiring.specs.append(ChildSpec(id="telegram", shutdown=shutdown, hang_timeout_s=NETWORK_HANG_S, start=actor_child(
                TelegramCommandActor, board=board, client=commands_client, chat_id=settings.telegram.chat_id,
                operators=settings.telegram.operator_ids, db_url=db_url)))
    elif node == "execution":
        wiring.specs = _execution_specs(settings, db_url, board)
    elif node == "market":
        wiring.specs = _market_specs(settings, db_url, channel, board, peers)
    else:
        raise ValueError(f"unknown node {node!r}")
    return wiring


def _exchange_client(settings: Settings, db_url: str) -> UpbitClient | None:
    """The signed client of the exchange (UPBIT_REST_URL), or None without API keys."""
    keys = settings.exchange
    if keys.access_key is None or keys.secret_key is None:
        return None
    return UpbitClient(settings.feed.upbit_rest_url, access_key=keys.access_key.reveal(),
                       secret_key=keys.secret_key.reveal(), on_breaker_change=_breaker_alert(db_url))


def _execution_specs(settings: Settings, db_url: str, board: StatusBoard) -> list[ChildSpec]:
    shutdown = settings.supervision.shutdown_timeout_s
    # one client for both actors: Upbit's request budgets are per key, so one rate limiter must see
    # every request the key makes (the client is thread-safe: its limiter and breakers lock)
    client = _exchange_client(settings, db_url)
    return [
        ChildSpec(id="execution", shutdown=shutdown, hang_timeout_s=NETWORK_HANG_S, start=actor_child(
            ExecutionActor, board=board, config=EngineConfig.from_settings(settings), db_url=db_url, exchange=client,
            failpoints=settings.failpoints)),
        ChildSpec(id="account", shutdown=shutdown, hang_timeout_s=NETWORK_HANG_S, start=actor_child(
            AccountActor, board=board, client=client, settings=settings.account,
            bot_id=settings.bot_id, db_url=db_url)),
    ]


def _breaker_alert(db_url: str) -> Callable[[str, str, str], None]:
    """A breaker's state change becomes an alert (and a log line)."""

    def changed(group: str, old: str, new: str) -> None:
        level = "warning" if new == "open" else "info"
        log.log(logging.WARNING if new == "open" else logging.INFO, "exchange breaker %s: %s -> %s", group, old, new)
        try:
            alerts.raise_alert(db_url, kind="breaker", level=level,
                               text=f"exchange circuit breaker '{group}' {old} → {new}"
                                    + (": calls to this endpoint group are paused" if new == "open" else ""))
        except DatabaseError as exc:
            log.error("could not record the breaker change: %s", exc)

    return changed


def _market_specs(settings: Settings, db_url: str, channel: RootChannel, board: StatusBoard,
                  peers: Peers) -> list[ChildSpec]:
    shutdown = settings.supervision.shutdown_timeout_s
    factory = load_factory(settings.strategy.spec, settings.strategy.params)
    if settings.feed.source.value == "upbit":
        feed_name, grace_ms = LIVE_FEED, CLOSE_GRACE_MS
        feed_start = actor_child(LiveFeedActor, board=board, url=settings.feed.upbit_ws_url,
                                 markets=settings.feed.markets, peers=peers, db_url=db_url,
                                 rest=UpbitClient(settings.feed.upbit_rest_url, access_key=None, secret_key=None,
                                                  on_breaker_change=_breaker_alert(db_url)))
    else:
        path = settings.replay.file or RECORDINGS[settings.replay.source.value]
        feed_name, grace_ms = replay_feed_name(path.name), 0
        recording = Recording.open(path).between(settings.replay.start, settings.replay.until)
        if settings.feed.markets:
            recording = recording.only(settings.feed.markets)
        feed_start = actor_child(ReplayFeedActor, board=board, recording=recording, feed=feed_name,
                                 speed=settings.replay_speed, max_gap_s=settings.replay.max_gap_s, db_url=db_url,
                                 peers=peers)

    def on_drained(last_offset: int) -> None:
        channel.send("drained", last_offset)

    return [
        ChildSpec(id="paper", shutdown=shutdown, start=actor_child(
            PaperActor, board=board, order_krw=settings.paper.order_krw, fee_rate=settings.paper.fee_rate,
            slippage_bps=settings.paper.slippage_bps, cooldown_s=int(settings.paper.cooldown_s),
            capital_krw=settings.paper.capital_krw, db_url=db_url, on_drained=on_drained)),
        ChildSpec(id="strategy", shutdown=shutdown, start=actor_child(
            StrategyActor, board=board, factory=factory, db_url=db_url, peers=peers)),
        ChildSpec(id="bar", shutdown=shutdown, start=actor_child(
            BarActor, board=board, feed=feed_name, db_url=db_url, peers=peers, grace_ms=grace_ms)),
        ChildSpec(id="feed", shutdown=shutdown, start=feed_start,
                  hang_timeout_s=NETWORK_HANG_S if settings.feed.source.value == "upbit" else DEFAULT_HANG_TIMEOUT_S),
    ]
