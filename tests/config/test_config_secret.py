"""Tests for config/secret.py: masking, immutability and pickling of secrets."""

from __future__ import annotations

import pickle

import pytest

from config import DatabaseUrl, Secret, mask_database_url, mask_secret

RAW = "AbCdEfGhIjKlMnOpXyZ0"


def test_mask_shows_first_and_last_four_characters() -> None:
    assert mask_secret(RAW) == "AbCd…XyZ0"
    assert mask_secret("123456789012") == "1234…9012"  # 12 characters: partly shown


def test_short_values_are_masked_completely() -> None:
    assert mask_secret("12345678901") == "****"  # 11 characters
    assert mask_secret("a") == "****"


def test_repr_str_and_format_show_only_the_mask() -> None:
    secret = Secret(RAW)

    assert str(secret) == "AbCd…XyZ0"
    assert repr(secret) == "Secret('AbCd…XyZ0')"
    assert f"{secret}" == "AbCd…XyZ0"
    assert f"{secret:>12}" == "   AbCd…XyZ0"
    assert "key=%s" % secret == "key=AbCd…XyZ0"  # noqa: UP031 - %-formatting is what logging uses
    assert RAW not in repr([secret, {"k": secret}])
    assert secret.reveal() == RAW


def test_secrets_are_immutable_and_reject_empty_values() -> None:
    secret = Secret(RAW)

    with pytest.raises(AttributeError):
        secret._value = "other"  # noqa: SLF001
    with pytest.raises(ValueError, match="empty"):
        Secret("")
    with pytest.raises(TypeError):
        Secret(123)  # type: ignore[arg-type]


def test_equality_hash_and_pickling() -> None:
    assert Secret(RAW) == Secret(RAW)
    assert Secret(RAW) != Secret(RAW + "x")
    assert Secret(RAW) != RAW  # never equal to the bare string
    assert Secret(RAW) != DatabaseUrl(RAW)
    assert len({Secret(RAW), Secret(RAW)}) == 1

    clone = pickle.loads(pickle.dumps(Secret(RAW)))  # noqa: S301 - our own data
    assert type(clone) is Secret
    assert clone.reveal() == RAW


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://user:pw@host/db", "postgresql://user:****@host/db"),
        (
            "postgres://user:p%40ss@host:5432/db?sslmode=require",
            "postgres://user:****@host:5432/db?sslmode=require",
        ),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        (
            "postgresql://host/db?user=u&password=hunter22",
            "postgresql://host/db?user=u&password=****",
        ),
        ("postgresql://u:a:b@c@host/db", "postgresql://u:****@host/db"),
    ],
)
def test_database_url_password_is_masked(url: str, masked: str) -> None:
    assert mask_database_url(url) == masked
    secret = DatabaseUrl(url)
    assert str(secret) == masked
    assert repr(secret) == f"DatabaseUrl({masked!r})"


def test_database_url_redactions_cover_the_url_and_long_passwords() -> None:
    url = "postgresql://trader:p%40ssw0rd@db/ledger"
    redactions = dict(DatabaseUrl(url).redactions())

    assert redactions[url] == "postgresql://trader:****@db/ledger"
    assert redactions["p%40ssw0rd"] == "****"
    assert redactions["p@ssw0rd"] == "****"  # the percent-decoded spelling too
    short = dict(DatabaseUrl("postgresql://u:pw@h/db").redactions())
    assert "pw" not in short  # too short to redact on its own without mangling every log line
