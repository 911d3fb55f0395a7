"""``python -m supervisor drill``: kill-and-restart resilience drills, as a product feature.

    python -m supervisor drill [--faults N] [--kinds kill,crash,hang,db,ws,exchange,telegram]
                               [--seed S] [--report DIR] [--speed X] [--from TIME] [--until TIME]
                               [--orders shadow|test|live]

The real system runs twice on a window of the shipped recording, each time into a fresh database:
an uninterrupted **reference run**, then a **drill run** into which faults are injected at points
chosen from the seed (same seed, same plan). Then the drill run must equal the reference run —
bars, paper trades, positions — and hold its own invariants: every paper trade has its order
attempt (and never two at the exchange), every alert delivered exactly once, restarts within the
restart intensity with escalations reported and no restart loop, every fault recovered from. A
report (``report.txt``, ``report.json``, the runs' logs) goes to ``--report DIR``.

Modules: :mod:`.plan` (the pure, seeded fault schedule), :mod:`.faults` (the injectors and the
recovery watch), :mod:`.invariants` (the checks), :mod:`.report` (text and JSON),
:mod:`.telegram_stub` (a loopback Bot API that can be down), :mod:`.database` (the drill's own
PostgreSQL), :mod:`.command` (arguments and orchestration).

Exit status: 0 every invariant held; 1 one failed (or a run failed); 2 bad usage.
"""

from __future__ import annotations

from tools.drill.command import add_parser, drill

__all__ = ["add_parser", "drill"]
