"""Execution: from a paper trade (an *intent*) to at most one exchange order, behind guards.

The pure parts decide; the actors in ``actors/`` carry them out:

- :mod:`model.reasons` — the vocabulary: attempt statuses, blocked reasons, system flags.
- :mod:`execution.guards` — which mode an intent really runs in (shadow, test or live) and why
  it was downgraded; live needs every guard to agree.
- :mod:`execution.risk` — per-order and per-day limits, the KRW budget, the kill switch trip.
- :mod:`execution.engine` — the exactly-once protocol: the attempt row is committed before the
  request leaves; an unknown outcome is resolved by the identifier, never by sending again.
- :mod:`execution.reconcile` — exchange balances and open orders against our ledger.
"""
