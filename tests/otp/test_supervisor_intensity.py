"""``RestartWindow`` (S19), values in and out; mirrors ``otp/intensity.py``."""

from __future__ import annotations

from otp.intensity import RestartWindow


def test_intensity_zero_first_restart_exceeds() -> None:
    assert RestartWindow(0, 5.0).record(0.0) is False


def test_intensity_two_allows_two_then_third_exceeds() -> None:
    window = RestartWindow(2, 5.0)

    assert [window.record(t) for t in (0.0, 1.0, 2.0)] == [True, True, False]


def test_boundary_entry_is_kept() -> None:
    window = RestartWindow(1, 5.0)
    window.record(0.0)

    assert window.record(5.0) is False  # the entry at exactly now - period still counts
    assert window.restarts == (0.0, 5.0)


def test_entry_just_outside_the_period_is_dropped() -> None:
    window = RestartWindow(1, 5.0)
    window.record(0.0)

    assert window.record(5.001) is True
    assert window.restarts == (5.001,)


def test_spaced_failures_never_trip() -> None:
    window = RestartWindow(1, 1.0)

    assert all(window.record(i * 2.1) for i in range(20))
