"""Run every check in order, time each, mask the results, print the table and write the evidence."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from config import Settings
from exchange.errors import ErrorKind
from tools.preflight import local, remote
from tools.preflight.report import EXIT_FAILED, EXIT_USAGE, CheckResult, PreflightKind, Redactor, Report, default_evidence_path, print_table, write_evidence

__all__ = ["CHECK_ORDER", "Collaborators", "run", "run_checks"]

log = logging.getLogger(__name__)

CHECK_ORDER = ("config", "credentials", "secrets", "database", "upbit_accounts", "upbit_order_chance", "clock_skew",
               "rate_limit", "telegram", "env_file_git")

_TITLES = {"database": "database reachable and migrated", "telegram": "Telegram bot and chat reachable"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Collaborators:
    """What the preflight reads the world through (tests substitute them)."""

    env: Mapping[str, str] | None = None  # the process environment; None = os.environ
    wall: Callable[[], float] = time.time  # epoch seconds: the clock whose skew is checked
    monotonic: Callable[[], float] = time.perf_counter  # for timings
    sleep: Callable[[float], None] = time.sleep  # the Upbit client's rate-limit waits
    max_clock_skew_s: float = remote.MAX_CLOCK_SKEW_S
    on_settings: Callable[[Settings], object] | None = None  # e.g. configure_logging, once settings load


def run(*, env_file: Path | None, evidence: Path | None, out: TextIO, err: TextIO | None = None,
        deps: Collaborators | None = None) -> int:
    """One preflight: checks, table on ``out``, problems with the run itself on ``err`` (stderr); the exit code."""
    deps = deps or Collaborators()
    err = err or sys.stderr
    if env_file is not None and not env_file.is_file():
        print(f"error: --env-file {env_file}: no such file", file=err)
        return EXIT_USAGE
    if evidence is not None and evidence.is_dir():
        print(f"error: --evidence {evidence} is a directory; give a file name", file=err)
        return EXIT_USAGE
    report, redactor = run_checks(env_file=env_file, deps=deps)
    path = evidence or default_evidence_path(report.started_at)
    try:
        write_evidence(report, path, redactor)
    except OSError as exc:
        print_table(report, out, redactor, None)
        print(redactor.redact(f"error: could not write the evidence file {path}: {exc}"), file=err)
        return EXIT_FAILED
    print_table(report, out, redactor, path)
    return report.exit_code


def run_checks(*, env_file: Path | None, deps: Collaborators) -> tuple[Report, Redactor]:
    """Every check, in :data:`CHECK_ORDER`; the report (already masked) and its redactor."""
    started_wall, started = deps.wall(), deps.monotonic()
    results: dict[str, CheckResult] = {}

    def timed(name: str, check: Callable[[], CheckResult]) -> CheckResult:
        t0 = deps.monotonic()
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - a preflight reports every failure as a check; never crashes
            result = _crashed(name, exc)
        results[name] = replace(result, duration_ms=(deps.monotonic() - t0) * 1000)
        return results[name]

    loaded_box: list[local.Loaded] = []

    def config() -> CheckResult:
        result, loaded = local.load(env_file, deps.env)
        loaded_box.append(loaded)
        return result

    timed("config", config)
    loaded = loaded_box[0] if loaded_box else local.Loaded(settings=None)
    settings = loaded.settings
    if settings is not None and deps.on_settings is not None:
        deps.on_settings(settings)
    timed("credentials", lambda: local.check_keys(loaded))

    probe: remote.UpbitProbe | None = None
    if settings is None:
        for name in ("database", "upbit_accounts", "upbit_order_chance", "clock_skew", "rate_limit", "telegram"):
            results[name] = CheckResult.failed(name, _TITLES.get(name, name), PreflightKind.NOT_RUN,
                                               "not checked: the configuration did not load (see check 1)",
                                               "fix the configuration first")
    else:
        ready = settings
        timed("database", lambda: local.check_database(ready))
        try:
            probe = remote.probe_upbit(ready, wall=deps.wall, sleep=deps.sleep, monotonic=deps.monotonic)
            results["upbit_accounts"], results["upbit_order_chance"] = probe.accounts, probe.order_chance
        except Exception as exc:  # noqa: BLE001 - reported as a failed check, like every other failure
            for name in ("upbit_accounts", "upbit_order_chance"):
                results[name] = _crashed(name, exc)
        timed("clock_skew", lambda: remote.check_clock(probe, max_skew_s=deps.max_clock_skew_s))
        timed("rate_limit", lambda: remote.check_rate_limit(probe))
        timed("telegram", lambda: remote.check_telegram(ready, wall=deps.wall))
    timed("env_file_git", lambda: local.check_env_file_git(loaded.env_file))

    redactor = Redactor(settings.secrets()) if settings is not None else Redactor.for_raw(loaded.raw_secrets)
    caught_in: list[str] = []
    for name, result in list(results.items()):
        before = redactor.caught
        results[name] = redactor.check(result)
        if redactor.caught > before:
            caught_in.append(name)
    caught = redactor.caught
    timed("secrets", lambda: local.check_secrets(loaded, caught=caught, caught_in=caught_in))
    results["secrets"] = redactor.check(results["secrets"])
    answers = tuple(a.to_json() for a in (probe.answers if probe is not None else ()))
    finished_wall = deps.wall()
    report = Report(
        started_at=datetime.fromtimestamp(started_wall, UTC), finished_at=datetime.fromtimestamp(finished_wall, UTC),
        duration_ms=(deps.monotonic() - started) * 1000, env_file=loaded.env_file,
        checks=tuple(results[name] for name in CHECK_ORDER),
        settings=None if settings is None else settings.masked_summary(), upbit_answers=answers,
    )
    return report, redactor


def _crashed(name: str, exc: Exception) -> CheckResult:
    log.debug("preflight check %s raised", name, exc_info=True)
    return CheckResult.failed(name, _TITLES.get(name, name), ErrorKind.UNKNOWN,
                              f"unexpected {type(exc).__name__}: {exc}",
                              "a bug in the preflight or an unexpected answer: report it with this evidence file")
