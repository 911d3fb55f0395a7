"""The Bot API client against a fake Telegram speaking the real protocol."""

from __future__ import annotations

from collections.abc import Iterator

import pybreaker
import pytest

from notify.telegram import (Pacer, TelegramBreakerOpen, TelegramClient, TelegramRateLimited, TelegramRejected,
                             TelegramUnavailable)
from tests.fakes.telegram_server import FakeTelegram

TOKEN = "123456789:AAExampleTokenValue_abcdefghijklmnop"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN) as server:
        yield server


def client(fake: FakeTelegram, **kw: object) -> TelegramClient:
    clock = FakeClock()
    return TelegramClient(fake.url, TOKEN, pacer=Pacer(clock=clock.monotonic, sleep=clock.sleep),
                          retry_sleep=clock.sleep, **kw)


def test_send_message_and_transient_5xx_is_retried(fake: FakeTelegram) -> None:
    fake.faults.fail_5xx = 2
    message_id = client(fake).send_message(42, "hello")
    assert message_id == 1
    assert fake.texts() == ["hello"]
    assert fake.calls.count("sendMessage") == 3


def test_429_carries_retry_after_and_is_not_retried_blindly(fake: FakeTelegram) -> None:
    fake.faults.rate_limit, fake.faults.retry_after = 1, 7
    with pytest.raises(TelegramRateLimited) as caught:
        client(fake).send_message(42, "x")
    assert caught.value.retry_after == 7
    assert fake.texts() == []


def test_wrong_token_is_rejected_and_the_token_never_appears_in_errors(fake: FakeTelegram) -> None:
    bad = "987654321:BBWrongTokenValue_zyxwvutsrqponmlkji"
    c = TelegramClient(fake.url, bad)
    with pytest.raises(TelegramRejected) as caught:
        c.send_message(42, "x")
    assert bad not in str(caught.value) and "Unauthorized" in str(caught.value)
    unreachable = TelegramClient("http://127.0.0.1:9", TOKEN, attempts=1, timeout=(0.5, 0.5))
    with pytest.raises(TelegramUnavailable) as down:
        unreachable.send_message(42, "x")
    assert TOKEN not in str(down.value) and TOKEN not in repr(down.value.__cause__)


def test_breaker_opens_after_repeated_outage_and_stops_calling(fake: FakeTelegram) -> None:
    fake.faults.down = True
    c = client(fake, attempts=1, breaker=pybreaker.CircuitBreaker(fail_max=2, reset_timeout=60))
    with pytest.raises(TelegramUnavailable):
        c.send_message(42, "x")
    with pytest.raises(TelegramBreakerOpen):  # the failure that trips it
        c.send_message(42, "x")
    calls = len(fake.calls)
    with pytest.raises(TelegramBreakerOpen):
        c.send_message(42, "x")
    assert len(fake.calls) == calls  # open: not hammered


def test_pacer_spaces_messages_per_chat_and_overall() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock.monotonic, sleep=clock.sleep)
    pacer.wait_turn(1)
    pacer.wait_turn(1)
    assert clock.slept == [1.0]
    for chat in range(2, 40):
        pacer.wait_turn(chat)
    assert sum(clock.slept) > 1.0  # the 31st message within a second waited


def test_get_updates_long_polls(fake: FakeTelegram) -> None:
    c = client(fake)
    fake.user_says(42, "/status")
    updates = c.get_updates(None, timeout_s=1)
    assert [(u.chat_id, u.text) for u in updates] == [(42, "/status")]
    assert c.get_updates(updates[-1].update_id + 1, timeout_s=0) == []


def test_updates_carry_the_sending_user_not_only_the_chat(fake: FakeTelegram) -> None:
    c = client(fake)
    fake.user_says(-100777, "/killswitch off", username="alice", user_id=123)
    fake.user_says(-100777, "/confirm", username=None, user_id=456, first_name="alice) in chat 1; confirmed by")
    fake.user_says(-100777, "/flatten", username="bob (admin)", user_id=789)
    updates = c.get_updates(None, timeout_s=1)
    assert [(u.chat_id, u.sender_id, u.sender_name, u.text) for u in updates] == [
        (-100777, 123, "alice", "/killswitch off"),
        (-100777, 456, "", "/confirm"),  # no username: the display name is never used
        (-100777, 789, "", "/flatten")]  # not a Telegram username: dropped
