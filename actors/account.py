"""AccountActor: balances and positions from the exchange, reconciled with ours.

This build has no exchange client yet (it arrives with the exchange layer), so the actor's
simplest real form is to say plainly what it can and cannot do, once, and then idle under
supervision: without API keys there is no account to read (paper trading and shadow execution
only); with keys it warns that account reconciliation is not available in this build.
"""

from __future__ import annotations

import logging
from typing import Any

from actors.node_actor import NodeActor

log = logging.getLogger(__name__)


class AccountActor(NodeActor):
    """Idles, saying why."""

    def __init__(self, *, has_keys: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.has_keys = has_keys
        self.counters.update(reconciliations=0, reason="")

    def setup(self) -> None:
        super().setup()
        if self.has_keys:
            reason = "exchange keys are set, but this build has no exchange client: account reconciliation is off"
            log.warning("%s", reason)
        else:
            reason = "no exchange API keys: no account to read (paper trading and shadow execution only)"
            log.info("%s", reason)
        self.counters["reason"] = reason
        self.counters["idle"] = True
