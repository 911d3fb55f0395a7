"""A request's parameters, wherever they came from: URL query, form body or JSON body.

Upbit clients differ in where they put parameters (``docs/upbit-api.md`` §1.3): ccxt sends GET and
DELETE parameters in the URL and POST parameters as JSON; pyupbit sends GET parameters as a
form-encoded *body* and DELETE parameters as JSON. :class:`Params` keeps them in arrival order
(the order matters for the ``query_hash``), with arrays as repeated ``key[]`` entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from upbit_sim.auth import json_pairs
from upbit_sim.errors import ApiError

__all__ = ["Params"]


class Params:
    """Ordered request parameters with typed accessors that raise Upbit's validation errors."""

    def __init__(self, pairs: Sequence[tuple[str, str]], values: Mapping[str, object] | None = None) -> None:
        """Args:
        pairs: ``(key, value)`` text pairs in arrival order (what the query hash covers).
        values: the original JSON values when the parameters came as a JSON object.
        """
        self.pairs = list(pairs)
        self._values = dict(values) if values is not None else None

    @classmethod
    def from_query(cls, query: str) -> Params:
        """Parameters of a URL query string or a form-encoded body (percent-decoded)."""
        return cls(parse_qsl(query, keep_blank_values=True))

    @classmethod
    def from_json(cls, body: Mapping[str, object]) -> Params:
        """Parameters of a JSON object body (values keep their JSON types)."""
        return cls(json_pairs(body), body)

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def raw(self, key: str) -> object:
        """The value as sent (JSON type for JSON bodies), ``None`` when absent or null."""
        if self._values is not None:
            return self._values.get(key)
        found = [value for k, value in self.pairs if k == key]
        return found[-1] if found else None

    def text(self, key: str) -> str | None:
        """The value as text, ``None`` when absent, null or empty."""
        value = self.raw(key)
        if value is None or isinstance(value, (list, dict)):
            return None
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return text if text != "" else None

    def texts(self, key: str) -> list[str]:
        """Every value of an array parameter (``key[]=a&key[]=b``, ``key=a``, or a JSON list)."""
        if self._values is not None:
            value = self._values.get(key, self._values.get(f"{key}[]"))
            if value is None:
                return []
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return [value for k, value in self.pairs if k in (key, f"{key}[]") and value != ""]

    def decimal(self, key: str) -> Decimal | None:
        """A positive finite decimal, ``None`` when absent; anything else is a validation error."""
        value = self.raw(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ApiError.validation(f"{key} does not have a valid value")
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
        except InvalidOperation:
            raise ApiError.validation(f"{key} does not have a valid value") from None
        if not number.is_finite() or number <= 0:
            raise ApiError.validation(f"{key} does not have a valid value")
        return number

    def integer(self, key: str, *, default: int, low: int, high: int) -> int:
        """An integer in ``[low, high]``; ``default`` when absent."""
        text = self.text(key)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise ApiError.validation(f"{key} does not have a valid value") from None
        if not low <= value <= high:
            raise ApiError.validation(f"{key} must be between {low} and {high}")
        return value
