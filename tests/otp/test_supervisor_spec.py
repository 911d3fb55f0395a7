"""Child specs and flags: defaults (S4) and validation (S1, S2); mirrors ``otp/spec.py``."""

from __future__ import annotations

import math
from typing import Any

import pytest

from otp.core import Supervisor
from otp.errors import SupervisorDataError
from otp.spec import BRUTAL_KILL, INFINITY, ChildSpec, ChildType, Restart, Strategy, SupervisorFlags
from tests.fakes.children import FakeFactory


def _start(ctx: Any) -> Any:
    raise AssertionError("must never be called")


def test_spec_defaults() -> None:
    worker = ChildSpec(id="w", start=_start)
    sup = ChildSpec(id="s", start=_start, type=ChildType.SUPERVISOR)
    flags = SupervisorFlags()

    assert (worker.restart, worker.shutdown, worker.type) == (Restart.PERMANENT, 5.0, ChildType.WORKER)
    assert (sup.restart, sup.shutdown, sup.type) == (Restart.PERMANENT, INFINITY, ChildType.SUPERVISOR)
    assert (flags.strategy, flags.intensity, flags.period) == (Strategy.ONE_FOR_ONE, 1, 5.0)


def test_explicit_shutdown_values_are_kept() -> None:
    assert ChildSpec(id="a", start=_start, shutdown=BRUTAL_KILL).shutdown is BRUTAL_KILL
    assert ChildSpec(id="a", start=_start, shutdown=0).shutdown == 0.0
    assert ChildSpec(id="a", start=_start, type=ChildType.SUPERVISOR, shutdown=2).shutdown == 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": ""},
        {"id": 7},
        {"start": "not callable"},
        {"restart": "permanent"},
        {"type": "worker"},
        {"shutdown": -1},
        {"shutdown": math.nan},
        {"shutdown": math.inf},
        {"shutdown": True},
        {"shutdown": "5"},
    ],
)
def test_faulty_specs_rejected(kwargs: dict[str, Any]) -> None:
    spec: dict[str, Any] = {"id": "child", "start": _start, **kwargs}
    with pytest.raises(SupervisorDataError):
        ChildSpec(**spec)


def test_duplicate_ids_rejected_and_nothing_started(fakes: FakeFactory) -> None:
    specs = [ChildSpec(id="a", start=fakes.start()), ChildSpec(id="a", start=fakes.start())]

    with pytest.raises(SupervisorDataError, match="duplicate"):
        Supervisor("sup", SupervisorFlags(), specs)

    assert fakes.start_attempts == {}


def test_non_spec_child_rejected() -> None:
    with pytest.raises(SupervisorDataError):
        Supervisor("sup", SupervisorFlags(), [{"id": "a"}])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strategy": "simple_one_for_one"},
        {"strategy": "one_for_one"},
        {"intensity": -1},
        {"intensity": 1.5},
        {"intensity": True},
        {"period": 0},
        {"period": -5},
        {"period": math.inf},
        {"period": math.nan},
        {"period": False},
    ],
)
def test_invalid_flags_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SupervisorDataError):
        SupervisorFlags(**kwargs)


def test_unknown_flags_are_an_error_not_ignored() -> None:
    # Deviation from OTP (which ignores unknown flags): our config is strict and typed.
    with pytest.raises(TypeError):
        SupervisorFlags(auto_shutdown="never")  # type: ignore[call-arg]


def test_simple_one_for_one_is_named_as_unsupported() -> None:
    with pytest.raises(SupervisorDataError, match="simple_one_for_one is not supported"):
        SupervisorFlags(strategy="simple_one_for_one")  # type: ignore[arg-type]
