"""The fault schedule of a drill: a pure function of the seed and the options.

The same seed, count, kinds and order mode always give the same plan — the same faults, in the
same order, at the same points, with the same targets and parameters — so a drill that found a
problem can be run again exactly (``--seed``). Points are *progress* through the recording: the
fraction of the reference run's 1-second bars the drill run has stored when the fault is due
(``at = 0.25``: a quarter of the way through), so a plan means the same at any ``--speed``.

Placement: the window ``[start, end]`` of the run is cut into ``count`` equal slots and each
fault lands inside its own slot (never in its outer 15 %), so two faults are always apart by at
least 30 % of a slot. Kinds: every requested kind appears once before any appears twice (as long
as ``count`` allows), in a shuffled order; the *disruptive* kinds — those that cost the root a
node restart (kill, hang, db) — are kept apart where the mix allows it, so one drill does not
test the root's give-up instead of recovery.

With ``orders`` test or live, a ``kill`` kind also arms the execution node's failpoints
(``FAILPOINTS``, :mod:`execution.failpoints`): SIGKILL inside the order path at the N-th pass
after the attempt is committed and the M-th pass after the exchange answered (per process, so
every execution process dies there again); N and M come from the seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

KINDS: tuple[str, ...] = ("kill", "crash", "hang", "db", "ws", "exchange", "telegram", "outage", "foreign", "mode")
DISRUPTIVE: frozenset[str] = frozenset({"kill", "hang", "db"})
NODES: tuple[str, ...] = ("ops", "execution", "market")
ACTORS: tuple[str, ...] = ("market/feed", "market/bar", "market/strategy", "market/paper", "execution/execution",
                           "execution/account", "ops/notifier", "ops/telegram")
EXCHANGE_FAULTS: tuple[str, ...] = ("fail_500", "fail_429", "drop_after_accept", "lookup_lag")
ORDER_MODES: tuple[str, ...] = ("shadow", "test", "live")

DB_OUTAGE_S = (4.0, 10.0)  # restarts wait for the database (a held restart is not counted)
TELEGRAM_OUTAGE_S = (2.0, 4.0)
EXCHANGE_OUTAGE_S = (3.0, 6.0)  # every order request refused: the order breaker opens during exits
MODE_SPELL_S = (3.0, 6.0)  # how long the system runs restarted in the other mode
LOOKUP_LAG_S = (0.2, 0.8)
FAILPOINT_PASS = (50, 90)
SLOT_MARGIN = 0.15


class PlanError(ValueError):
    """The options cannot make a plan (unknown kind, bad count or window)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One planned fault."""

    index: int  # 1-based, in injection order
    kind: str  # one of KINDS
    at: float  # progress fraction of the recording (0..1) at which it is due
    target: str  # a node, node/actor, "postgres", "telegram", the exchange fault, "websocket", "orders",
    # "identifier", or the mode a "mode" fault restarts the system in
    duration_s: float = 0.0  # how long an outage lasts (db, telegram, lookup_lag); 0: instantaneous
    count: int = 0  # how many requests an exchange fault hits (fail_*, drop_after_accept)

    def describe(self) -> str:
        """One line: ``#2 kill market at 31%``."""
        extra = f" for {self.duration_s:g} s" if self.duration_s else ""
        extra += f" x{self.count}" if self.count else ""
        target = "" if self.target == self.kind else f" {self.target}"
        return f"#{self.index} {self.kind}{target}{extra} at {self.at:.0%}"

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "kind": self.kind, "at": self.at, "target": self.target,
                "duration_s": self.duration_s, "count": self.count}


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A whole drill's schedule."""

    seed: int
    orders: str
    kinds: tuple[str, ...]
    faults: tuple[Fault, ...] = ()
    failpoints: str = ""  # the FAILPOINTS setting of the drill run ("" = none armed)
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return {"seed": self.seed, "orders": self.orders, "kinds": list(self.kinds), "failpoints": self.failpoints,
                "faults": [f.as_dict() for f in self.faults], "notes": list(self.notes)}


def default_kinds(orders: str) -> tuple[str, ...]:
    """The kinds a drill injects when ``--kinds`` is not given: every kind that applies."""
    if orders == "shadow":
        return ("kill", "crash", "hang", "db", "telegram")
    if orders == "test":
        return ("kill", "crash", "hang", "db", "exchange", "telegram", "mode")
    return ("kill", "crash", "hang", "db", "exchange", "telegram", "outage", "foreign", "mode")


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"kill,crash"`` → ``("kill", "crash")``; unknown or repeated names are an error."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise PlanError(f"unknown fault kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise PlanError(f"a fault kind is repeated in {text!r}")
    if not kinds:
        raise PlanError("no fault kind given")
    return kinds


def make_plan(*, seed: int, count: int, kinds: Sequence[str], orders: str = "shadow", start: float = 0.1,
              end: float = 0.85) -> Plan:
    """The schedule for ``count`` faults of ``kinds`` between progress ``start`` and ``end``."""
    kinds = tuple(kinds)
    if count < 0:
        raise PlanError(f"the number of faults must be >= 0, got {count}")
    if not kinds and count:
        raise PlanError("no fault kind given")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise PlanError(f"unknown fault kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    if orders not in ORDER_MODES:
        raise PlanError(f"orders must be one of {', '.join(ORDER_MODES)}, got {orders!r}")
    if not 0.0 <= start < end <= 1.0:
        raise PlanError(f"the fault window must satisfy 0 <= start < end <= 1, got {start}..{end}")
    rng = random.Random(seed)
    sequence = _kind_sequence(rng, kinds, count)
    slot = (end - start) / count if count else 0.0
    faults = []
    for i, kind in enumerate(sequence):
        at = start + slot * (i + rng.uniform(SLOT_MARGIN, 1.0 - SLOT_MARGIN))
        faults.append(_fault(rng, i + 1, kind, round(at, 4)))
    failpoints = ""
    notes: list[str] = []
    if orders != "shadow" and "kill" in kinds:
        n, m = rng.randint(*FAILPOINT_PASS), rng.randint(*FAILPOINT_PASS)
        failpoints = f"execution.after_intent_commit@{n},execution.after_send@{m}"
        notes.append(f"every execution process is killed at its {n}th order after the attempt is committed and at "
                     f"its {m}th order after the exchange answered (FAILPOINTS)")
    return Plan(seed=seed, orders=orders, kinds=kinds, faults=tuple(faults), failpoints=failpoints, notes=tuple(notes))


def _kind_sequence(rng: random.Random, kinds: tuple[str, ...], count: int) -> list[str]:
    """Every kind once per round (shuffled), disruptive kinds spread apart where possible."""
    sequence: list[str] = []
    while len(sequence) < count:
        round_ = list(kinds)
        rng.shuffle(round_)
        sequence.extend(round_)
    sequence = sequence[:count]
    return _spread(sequence)


def _spread(sequence: list[str]) -> list[str]:
    """Reorder (deterministically) so no two disruptive kinds are neighbours, when the mix allows."""
    rest, out = list(sequence), list[str]()
    while rest:
        disruptive = [i for i, k in enumerate(rest) if k in DISRUPTIVE]
        calm = [i for i, k in enumerate(rest) if k not in DISRUPTIVE]
        may_disrupt = not out or out[-1] not in DISRUPTIVE
        if disruptive and (not calm or (may_disrupt and len(disruptive) >= len(calm))):
            pick = disruptive[0]
        elif calm:
            pick = calm[0]
        else:
            pick = 0
        out.append(rest.pop(pick))
    return out


def _fault(rng: random.Random, index: int, kind: str, at: float) -> Fault:
    if kind in ("kill", "hang"):
        return Fault(index=index, kind=kind, at=at, target=rng.choice(NODES))
    if kind == "crash":
        return Fault(index=index, kind=kind, at=at, target=rng.choice(ACTORS))
    if kind == "db":
        return Fault(index=index, kind=kind, at=at, target="postgres", duration_s=round(rng.uniform(*DB_OUTAGE_S), 1))
    if kind == "telegram":
        return Fault(index=index, kind=kind, at=at, target="telegram",
                     duration_s=round(rng.uniform(*TELEGRAM_OUTAGE_S), 1))
    if kind == "exchange":
        variant = rng.choice(EXCHANGE_FAULTS)
        if variant == "lookup_lag":
            return Fault(index=index, kind=kind, at=at, target=variant, duration_s=round(rng.uniform(*LOOKUP_LAG_S), 1))
        return Fault(index=index, kind=kind, at=at, target=variant, count=rng.randint(1, 3))
    if kind == "outage":
        return Fault(index=index, kind=kind, at=at, target="orders", duration_s=round(rng.uniform(*EXCHANGE_OUTAGE_S), 1))
    if kind == "foreign":
        return Fault(index=index, kind=kind, at=at, target="identifier", count=1)
    if kind == "mode":
        return Fault(index=index, kind=kind, at=at, target=rng.choice(("shadow", "test")),
                     duration_s=round(rng.uniform(*MODE_SPELL_S), 1))
    # ws
    return Fault(index=index, kind=kind, at=at, target=rng.choice(("ws_drop", "ws_stall")))
