"""``model``: the vocabulary every other package speaks, at the bottom of the layering.

It imports nothing of ours (an import-linter contract says so), and holds only values and the
rules that define them:

- :mod:`model.market` — trades and 1-second bars, their sides and sources;
- :mod:`model.trading` — what a strategy decides: signal kinds, exit plans, signals;
- :mod:`model.instruments` — venues and venue-qualified instrument ids;
- :mod:`model.intents` — intents and their order attempts;
- :mod:`model.reasons` — attempt statuses, blocked and downgrade reasons, the system flags;
- :mod:`model.reconciliation` — orders as reconciliation compares them;
- :mod:`model.risk` — the risk state and our live orders as the ledger knows them;
- :mod:`model.alerts` — alerts and their levels;
- :mod:`model.clock` — the clock protocol, the system clock and a fake one for tests.
"""
