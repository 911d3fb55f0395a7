"""The preflight's results: one :class:`CheckResult` per check, a :class:`Report`, and its two outputs.

Both outputs — the printed table and the JSON evidence file — are built from the same
:class:`Report`, after :class:`Redactor` has replaced every configured secret in every string of
it with the secret's mask. The redactor is the last net, not the first: checks never put a secret
into their text on purpose, and :meth:`Redactor.redact` counts what it had to catch so the
``secrets`` check can say so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from config.secret import DatabaseUrl, Secret
from exchange.errors import ErrorKind

__all__ = [
    "EXIT_FAILED",
    "EXIT_PASSED",
    "EXIT_USAGE",
    "CheckResult",
    "Classification",
    "PreflightKind",
    "Redactor",
    "Report",
    "Status",
    "default_evidence_path",
    "print_table",
    "write_evidence",
]

EXIT_PASSED = 0  # every check passed (warnings allowed)
EXIT_FAILED = 1  # at least one check failed, or the evidence could not be written
EXIT_USAGE = 2  # bad arguments

EVIDENCE_FORMAT = 1


class Status(StrEnum):
    """The verdict of one check."""

    PASS = "pass"
    WARN = "warn"  # fine to go live, but read the detail
    FAIL = "fail"


class PreflightKind(StrEnum):
    """Failure classes of the preflight's own; exchange failures use :class:`ErrorKind`."""

    CLOCK_SKEW = "clock_skew"
    NOT_MIGRATED = "not_migrated"
    DATABASE_UNREACHABLE = "database_unreachable"
    SECRET_EXPOSED = "secret_exposed"
    NOT_RUN = "not_run"  # could not be checked because an earlier check failed


Classification = ErrorKind | PreflightKind


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """What one check found: status, classification (``None`` when it passed), detail and fix."""

    name: str  # stable id, used in the evidence file
    title: str
    status: Status
    detail: str
    kind: Classification | None = None
    fix: str | None = None
    duration_ms: float = 0.0
    data: Mapping[str, object] = field(default_factory=dict)  # measurements, JSON-able

    def __post_init__(self) -> None:
        """A problem is classified and says how to fix it; a pass needs neither."""
        if self.status is not Status.PASS and (self.kind is None or not self.fix):
            msg = f"check {self.name}: a {self.status} needs a classification and a fix"
            raise ValueError(msg)

    @classmethod
    def passed(cls, name: str, title: str, detail: str, **data: object) -> CheckResult:
        return cls(name=name, title=title, status=Status.PASS, detail=detail, data=data)

    @classmethod
    def failed(cls, name: str, title: str, kind: Classification, detail: str, fix: str,
               **data: object) -> CheckResult:
        return cls(name=name, title=title, status=Status.FAIL, kind=kind, detail=detail, fix=fix, data=data)

    @classmethod
    def warned(cls, name: str, title: str, kind: Classification, detail: str, fix: str,
               **data: object) -> CheckResult:
        return cls(name=name, title=title, status=Status.WARN, kind=kind, detail=detail, fix=fix, data=data)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """One preflight run."""

    started_at: datetime
    finished_at: datetime
    duration_ms: float
    env_file: Path | None
    checks: tuple[CheckResult, ...]
    settings: Mapping[str, str] | None  # the masked summary; None when the configuration did not load
    upbit_answers: tuple[Mapping[str, object], ...] = ()

    @property
    def passed(self) -> bool:
        return all(check.status is not Status.FAIL for check in self.checks)

    @property
    def exit_code(self) -> int:
        return EXIT_PASSED if self.passed else EXIT_FAILED

    def count(self, status: Status) -> int:
        return sum(1 for check in self.checks if check.status is status)

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        return next(check for check in self.checks if check.name == name)

    def to_json(self) -> dict[str, object]:
        """The evidence document."""
        return {
            "format": EVIDENCE_FORMAT,
            "tool": "python -m supervisor preflight",
            "result": "pass" if self.passed else "fail",
            "exit_code": self.exit_code,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_ms": round(self.duration_ms, 1),
            "env_file": None if self.env_file is None else str(self.env_file),
            "counts": {status.value: self.count(status) for status in Status},
            "checks": [
                {
                    "name": c.name, "title": c.title, "status": c.status.value,
                    "classification": None if c.kind is None else c.kind.value,
                    "detail": c.detail, "fix": c.fix, "duration_ms": round(c.duration_ms, 1),
                    "data": dict(c.data),
                }
                for c in self.checks
            ],
            "upbit_answers": [dict(answer) for answer in self.upbit_answers],
            "settings": None if self.settings is None else dict(self.settings),
        }


# --- secrets ------------------------------------------------------------------------------


class Redactor:
    """Replaces every known secret value with its mask, in one pass, and counts what it caught."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        replacements: dict[str, str] = {}
        for secret in secrets:
            for raw, masked in secret.redactions():
                if raw != masked:
                    replacements.setdefault(raw, masked)
        self._replacements = replacements
        ordered = sorted(replacements, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self.caught = 0

    @classmethod
    def for_raw(cls, values: Mapping[str, str]) -> Redactor:
        """From raw setting values by name (``DATABASE_URL`` is masked as a URL)."""
        return cls(DatabaseUrl(v) if name == "DATABASE_URL" else Secret(v) for name, v in values.items() if v)

    def redact(self, text: str) -> str:
        if self._pattern is None:
            return text
        redacted, hits = self._pattern.subn(lambda m: self._replacements[m.group(0)], text)
        self.caught += hits
        return redacted

    def leaks(self, text: str) -> bool:
        """Whether ``text`` still holds a secret (without counting)."""
        return self._pattern is not None and self._pattern.search(text) is not None

    def deep(self, value: object) -> object:
        """``value`` (JSON-like) with every string redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {self.redact(str(k)): self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value

    def check(self, check: CheckResult) -> CheckResult:
        """``check`` with its detail, fix and data redacted."""
        data = self.deep(dict(check.data))
        assert isinstance(data, dict)
        return replace(check, detail=self.redact(check.detail),
                       fix=None if check.fix is None else self.redact(check.fix), data=data)


# --- outputs ------------------------------------------------------------------------------


def default_evidence_path(at: datetime, directory: Path = Path("var")) -> Path:
    """``var/preflight-<UTC stamp>.json``; a second run in the same second gets ``-2``, ``-3`` …"""
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"preflight-{stamp}.json"
    n = 2
    while path.exists():
        path = directory / f"preflight-{stamp}-{n}.json"
        n += 1
    return path


def write_evidence(report: Report, path: Path, redactor: Redactor) -> None:
    """Write the evidence file atomically, readable by its owner only; raises ``OSError``."""
    text = json.dumps(redactor.deep(report.to_json()), indent=2, ensure_ascii=False) + "\n"
    if redactor.leaks(text):  # cannot happen after deep(); refuse rather than write a secret
        raise OSError("refusing to write evidence that still contains a secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


_MARK = {Status.PASS: "pass", Status.WARN: "WARN", Status.FAIL: "FAIL"}


def print_table(report: Report, out: TextIO, redactor: Redactor, evidence: Path | None) -> None:
    """The readable report: one row per check, its fix under every warning and failure."""
    lines = [f"preflight {_iso(report.started_at)}  env file: {report.env_file or '(none: environment only)'}", ""]
    width = max(len(c.name) for c in report.checks)
    lines.append(f" #  {'CHECK':<{width}}  STATUS  {'CLASS':<20}  {'TIME':>7}  DETAIL")
    for number, c in enumerate(report.checks, 1):
        first, *rest = c.detail.splitlines() or [""]
        kind = "-" if c.kind is None else c.kind.value
        lines.append(f"{number:>2}  {c.name:<{width}}  {_MARK[c.status]:<6}  {kind:<20}  "
                     f"{c.duration_ms:>5.0f}ms  {first}")
        indent = " " * (width + 45)
        lines.extend(f"{indent}{line}" for line in rest)
        if c.fix is not None and c.status is not Status.PASS:
            lines.append(f"{indent}fix: {c.fix}")
    verdict = "PASS" if report.passed else "FAIL"
    lines += ["", f"result: {verdict} — {report.count(Status.PASS)} passed, {report.count(Status.WARN)} warned, "
                  f"{report.count(Status.FAIL)} failed (exit {report.exit_code})"]
    if evidence is not None:
        lines.append(f"evidence: {evidence}")
    print(redactor.redact("\n".join(lines)), file=out)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

