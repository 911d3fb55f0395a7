"""The recorded data shipped in data/upbit is complete, unchanged and documented."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from market.recording import BUNDLED_DATA_DIR

# shipped name -> git blob id of the source file (see data/upbit/PROVENANCE.md)
BLOBS = {
    "upbit-ws-2021-04-17-30s.capture": "79deeb2082d85176a70c2fda612b6c0cee27d052",
    "upbit-ws-2021-04-05-2min.capture": "dfe887d3cfbdc7f5f106f8ef99864de241ad6fd2",
    "upbit-markets-2021-04-17.capture": "4f19480332746f036ada8aa324aa2cda920f83c2",
    "krw-btc-1m-candles-2024-08-to-2025-08.csv.gz": "5956980d1a145254b879ac4e7e22f8b460b4df1e",
}
ACKNOWLEDGMENT = "This product includes software developed by Bryant Moscon (http://www.bryantmoscon.com/)"


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@pytest.mark.parametrize(("name", "blob"), sorted(BLOBS.items()))
def test_shipped_files_are_byte_for_byte_copies(name: str, blob: str) -> None:
    assert _git_blob_id((BUNDLED_DATA_DIR / name).read_bytes()) == blob


def test_every_shipped_file_is_documented() -> None:
    shipped = {p.name for p in BUNDLED_DATA_DIR.iterdir()} - {"PROVENANCE.md"}
    assert shipped == set(BLOBS)
    provenance = (BUNDLED_DATA_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    for name, blob in BLOBS.items():
        assert name in provenance
        assert blob in provenance


def test_licences_carry_the_acknowledgment_and_the_synthetic_note() -> None:
    licences = (BUNDLED_DATA_DIR.parent / "LICENSES.md").read_text(encoding="utf-8")
    assert ACKNOWLEDGMENT in licences
    assert "MIT-claimed" in licences
    assert "synthetic expansions of real candles" in licences


def test_the_market_list_parses() -> None:
    first = (BUNDLED_DATA_DIR / "upbit-markets-2021-04-17.capture").read_text(encoding="utf-8").splitlines()[0]
    prefix, payload = first.split(": ", 1)
    assert prefix == "https://api.upbit.com/v1/market/all -> 1618678261.6800792"
    markets = orjson.loads(payload)
    assert len(markets) == 294
    assert markets[0]["market"] == "KRW-BTC"
    assert sum(m["market"].startswith("KRW-") for m in markets) == 117


def test_nothing_reads_the_shared_workspace() -> None:
    root = Path(__file__).resolve().parents[2]
    for source in [*(root / "market").glob("*.py"), *(root / "tests" / "market").glob("*.py")]:
        if source.name == "test_data.py":
            continue
        assert "/work/shared" not in source.read_text(encoding="utf-8"), source
