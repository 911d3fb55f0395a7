"""Shared fixtures for the market tests: the recorded data shipped in ``data/upbit``."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.recording import CANDLES_KRW_BTC_1M, CAPTURE_2021_04_05, CAPTURE_2021_04_17


@pytest.fixture(scope="session")
def capture_30s() -> Path:
    """30 s of real frames, 2021-04-17: 304 trades, some delivered out of order."""
    return CAPTURE_2021_04_17


@pytest.fixture(scope="session")
def capture_2min() -> Path:
    """2 min of real frames, 2021-04-05: 672 trades over 7 markets."""
    return CAPTURE_2021_04_05


@pytest.fixture(scope="session")
def candles_year() -> Path:
    """105,200 real KRW-BTC 1-minute candles, 2024-08-24 → 2025-08-24 (gappy)."""
    return CANDLES_KRW_BTC_1M
