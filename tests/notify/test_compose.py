from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from notify.compose import compose, split
from model.alerts import Alert


def _alert(i: int, kind: str, text: str = "t") -> Alert:
    return Alert(id=i, created_at=datetime.now(UTC), kind=kind, level="info", text=text, attempts=0)


def test_bursts_of_one_kind_are_grouped_and_kinds_kept_apart() -> None:
    batch = [_alert(1, "paper_fill"), _alert(2, "paper_fill"), _alert(3, "node_exit"), _alert(4, "paper_fill")]
    out = compose(batch)
    assert [o.alert_ids for o in out] == [(1, 2), (3,), (4,)]
    assert out[0].parts[0].startswith("2× paper_fill\n")


def test_groups_never_exceed_the_limit() -> None:
    batch = [_alert(i, "paper_fill", "x" * 900) for i in range(1, 11)]
    out = compose(batch, limit=4096)
    assert sum(len(o.alert_ids) for o in out) == 10
    assert all(len(p) <= 4096 for o in out for p in o.parts)
    assert len(out) > 1


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=3000), st.integers(1, 500))
def test_split_keeps_every_character_within_the_limit(text: str, limit: int) -> None:
    parts = split(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
