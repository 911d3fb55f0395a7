"""persistence.db on a real server: which connections wait for the WAL flush at commit."""

from __future__ import annotations

import pytest

from persistence.db import connect


@pytest.mark.parametrize("autocommit", [False, True])
def test_only_connections_opened_not_durable_commit_asynchronously(db_url: str, autocommit: bool) -> None:
    with connect(db_url, autocommit=autocommit) as durable, \
            connect(db_url, autocommit=autocommit, durable=False) as fast:
        assert durable.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert fast.execute("SHOW synchronous_commit").fetchone() == ("off",)
        if not autocommit:
            fast.rollback()  # the setting is the session's: it outlives a transaction's end
            assert fast.execute("SHOW synchronous_commit").fetchone() == ("off",)
            fast.commit()
            durable.commit()
        # what a non-durable connection commits is visible to others at once (only the flush is deferred)
        fast.execute("CREATE TABLE seen (x int)")
        fast.execute("INSERT INTO seen VALUES (1)")
        fast.commit() if not autocommit else None
        assert durable.execute("SELECT x FROM seen").fetchall() == [(1,)]
