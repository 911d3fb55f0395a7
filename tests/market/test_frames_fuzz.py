"""Whatever arrives on the wire, the decoder answers with a Trade, None, or one of our two errors."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from market.frames import FrameError, UpbitStreamError, decode_trade

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True),
                   st.text(max_size=20))
_trade_like = st.fixed_dictionaries(
    {"ty": st.sampled_from(["trade", "orderbook", "ticker", 7])},
    optional={k: _scalars for k in ("cd", "tms", "ttms", "tp", "tv", "ab", "sid", "st", "code", "trade_price",
                                    "trade_volume", "ask_bid", "sequential_id", "trade_timestamp", "type")})


def _decodes_or_refuses(frame: bytes) -> None:
    try:
        decode_trade(frame)
    except (FrameError, UpbitStreamError):
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_our_errors(frame: bytes) -> None:
    _decodes_or_refuses(frame)


@settings(max_examples=500, deadline=None)
@given(_trade_like)
def test_trade_shaped_json_with_any_values_never_escapes_our_errors(frame: dict) -> None:
    _decodes_or_refuses(orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS) if frame else b"{}")
