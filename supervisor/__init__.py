"""The entry point: ``python -m supervisor`` and its subcommands (see :mod:`supervisor.cli`).

A thin dispatcher. What it dispatches to lives in packages of its own:

- ``system``: the running system — the root process, its node processes and their wiring;
- ``tools``: the operator's tools — ``ctl``, ``drill``, ``preflight``, ``smoke``, ``watchdog``, ``record``;
- ``backtest``: a backtest is the real system over a recording; ``upbit_sim``: the simulated Upbit;
- ``otp``: the supervision engine the system is built on (it knows none of these).
"""
