"""The market list the simulator serves at ``GET /v1/market/all`` and orders are checked against.

It is seeded from the real ``/v1/market/all`` answer recorded on 2021-04-17
(``data/upbit/upbit-markets-2021-04-17.capture``, see ``data/upbit/PROVENANCE.md``), plus KRW-BTC
and every market of the replayed recording, so that whatever trades can also be ordered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from market.frames import MARKET_CODE
from market.recording import BUNDLED_DATA_DIR

__all__ = ["MARKETS_CAPTURE", "MarketInfo", "MarketList", "load_market_capture"]

MARKETS_CAPTURE: Final = BUNDLED_DATA_DIR / "upbit-markets-2021-04-17.capture"

_REST_LINE: Final = re.compile(r"\S+/v1/market/all -> \d+(?:\.\d+)?: (\[.*\])")
_CAUTION_KEYS: Final = (
    "PRICE_FLUCTUATIONS",
    "TRADING_VOLUME_SOARING",
    "DEPOSIT_AMOUNT_SOARING",
    "GLOBAL_PRICE_DIFFERENCES",
    "CONCENTRATION_OF_SMALL_ACCOUNTS",
)


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """One listed market: quote-first id and its names."""

    market: str
    korean_name: str
    english_name: str
    warning: bool = False

    def as_json(self, *, details: bool) -> dict[str, object]:
        """The ``/v1/market/all`` item (``isDetails=true`` adds ``market_event``)."""
        item: dict[str, object] = {
            "market": self.market,
            "korean_name": self.korean_name,
            "english_name": self.english_name,
        }
        if details:
            item["market_warning"] = "CAUTION" if self.warning else "NONE"  # the older single flag
            item["market_event"] = {"warning": self.warning, "caution": dict.fromkeys(_CAUTION_KEYS, False)}
        return item


def load_market_capture(path: Path = MARKETS_CAPTURE) -> list[MarketInfo]:
    """Read the recorded ``/v1/market/all`` answer (the first REST line of the capture).

    Raises:
        ValueError: the file holds no ``/v1/market/all`` line or its JSON is not a market list.
        OSError: the file cannot be read.

    """
    with path.open("r", encoding="utf-8") as lines:
        for line in lines:
            match = _REST_LINE.match(line.rstrip("\r\n"))
            if match is None:
                continue
            items = orjson.loads(match.group(1))
            if not isinstance(items, list):
                break
            return [
                MarketInfo(str(item["market"]), str(item.get("korean_name", "")), str(item.get("english_name", "")))
                for item in items
                if isinstance(item, dict) and isinstance(item.get("market"), str)
            ]
    raise ValueError(f"{path}: no /v1/market/all answer found")


class MarketList:
    """The listed markets, in listing order; :meth:`add` lists one more (thread-safe)."""

    def __init__(self, markets: Iterable[MarketInfo], extra: Iterable[str] = ()) -> None:
        """``extra``: market ids to list too if missing (named after their codes)."""
        self._by_id: dict[str, MarketInfo] = {}
        for info in markets:
            self._by_id.setdefault(info.market, info)
        for market in extra:
            self.add(market)

    @classmethod
    def default(cls, extra: Iterable[str] = ()) -> MarketList:
        """The recorded 2021 list plus KRW-BTC and ``extra``."""
        return cls(load_market_capture(), ["KRW-BTC", *extra])

    @classmethod
    def of(cls, names: Mapping[str, str] | Iterable[str]) -> MarketList:
        """A list of just these market ids (names default to the coin code)."""
        return cls((), list(names))

    def __contains__(self, market: object) -> bool:
        return market in self._by_id

    def __iter__(self) -> Iterator[MarketInfo]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, market: str) -> MarketInfo | None:
        return self._by_id.get(market)

    def add(self, market: str) -> None:
        """List ``market`` (named after its coin) if it is not listed yet."""
        if MARKET_CODE.fullmatch(market) is None:
            raise ValueError(f"not an upper-case Upbit market code like 'KRW-BTC': {market!r}")
        coin = market.partition("-")[2]
        self._by_id.setdefault(market, MarketInfo(market, coin, coin))  # atomic under the GIL
