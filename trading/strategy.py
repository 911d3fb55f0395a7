"""The strategy plugin interface and its loader.

A strategy is a plain class, chosen by configuration as ``module:Class`` plus a JSON object of
keyword parameters (``STRATEGY`` and ``STRATEGY_PARAMS``). One instance serves one market. It
receives closed 1-second bars in time order and may return a ``SignalRaised`` for each; it does
no I/O. Its state is rebuilt after a restart by replaying the last ``warmup_bars`` persisted
bars through ``on_bar`` with signals discarded, so a restart never loses a warm-up.

    class MyStrategy:
        def __init__(self, *, market: str, window: int = 10) -> None: ...
        @property
        def warmup_bars(self) -> int: ...
        def on_bar(self, bar: Bar) -> SignalRaised | None: ...
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from actors.messages import Bar, SignalRaised


class StrategyError(ValueError):
    """The configured strategy cannot be loaded or rejects its parameters."""


@runtime_checkable
class Strategy(Protocol):
    """What every strategy provides."""

    @property
    def warmup_bars(self) -> int:
        """How many past bars rebuild its state."""
        ...

    def on_bar(self, bar: Bar) -> SignalRaised | None:
        """Consume one closed bar; maybe signal."""
        ...


StrategyFactory = Callable[[str], Strategy]


def load_factory(spec: str, params: Mapping[str, Any]) -> StrategyFactory:
    """Resolve ``module:Class`` and check ``params`` against its constructor now, at start."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise StrategyError(f"STRATEGY must look like module:Class, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StrategyError(f"STRATEGY {spec!r}: cannot import module {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None or not inspect.isclass(cls):
        raise StrategyError(f"STRATEGY {spec!r}: module {module_name!r} has no class {class_name!r}")
    try:
        probe = cls(market="KRW-BTC", **params)
    except TypeError as exc:
        raise StrategyError(f"STRATEGY_PARAMS {dict(params)!r} rejected by {spec}: {exc}") from exc
    except ValueError as exc:
        raise StrategyError(f"STRATEGY_PARAMS rejected by {spec}: {exc}") from exc
    if not isinstance(probe, Strategy):
        raise StrategyError(f"STRATEGY {spec!r} does not implement warmup_bars and on_bar(bar)")

    def factory(market: str) -> Strategy:
        return cls(market=market, **params)

    return factory
