"""The Telegram command actor's pure parts and its /balance answer (the actor runs in tests/e2e)."""

from __future__ import annotations

import psycopg
import pytest

from actors.telegram_commands import HELP, _args, balance_text, destructive, parse


def test_balance_is_the_latest_poll_per_currency(db: psycopg.Connection) -> None:
    assert balance_text(db) == ""  # no poll: the actor answers "No exchange account (no API keys)…"
    db.execute("INSERT INTO account_snapshots (taken_at, currency, balance, locked, avg_buy_price, unit_currency)"
               " VALUES ('2025-01-01T00:00:00Z', 'KRW', 5, 0, 0, 'KRW'),"
               " ('2025-01-01T00:00:10Z', 'BTC', 0.00120000, 0.0001, 95000000, 'KRW'),"
               " ('2025-01-01T00:00:10Z', 'KRW', 1000000.0, 50000, 0, 'KRW')")
    assert balance_text(db) == ("exchange account at 2025-01-01 00:00:10 UTC:\n"
                                "KRW 1,000,000 (locked 50,000)\n"
                                "BTC 0.0012 (locked 0.0001), avg buy 95,000,000 KRW")


@pytest.mark.parametrize(("text", "args"), [("/mode live", {"mode": "live"}), ("/mode@Bot test", {"mode": "test"}),
                                            ("/mode", None), ("/mode fast", None), ("/reconcile", {}),
                                            ("/reconcile now", None)])
def test_mode_and_reconcile_arguments(text: str, args: dict[str, str] | None) -> None:
    name, words = parse(text)
    assert _args(name, words) == args


def test_only_live_mode_needs_confirmation() -> None:
    assert destructive("mode", {"mode": "live"})
    assert not destructive("mode", {"mode": "test"}) and not destructive("mode", {"mode": "shadow"})
    assert not destructive("reconcile", {})
    assert "/reconcile" in HELP and "/balance" in HELP and "/mode shadow|test|live" in HELP
