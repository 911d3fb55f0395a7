"""The checks that need no exchange: configuration, keys, secret masking, database, git.

Each function returns a :class:`~tools.preflight.report.CheckResult`; none of them writes
anything (the database session is read-only, git is only asked questions).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from config import SETTINGS_SPEC, ConfigError, Secret, Settings, load_settings
from config.logging_setup import SecretFilter
from exchange.errors import ErrorKind
from persistence import embedded
from persistence.db import connect
from persistence.errors import DatabaseError, DatabaseUnavailable, translated
from persistence.migrate import available
from tools.preflight.report import CheckResult, PreflightKind

__all__ = ["Loaded", "check_database", "check_env_file_git", "check_keys", "check_secrets", "load"]

SECRET_NAMES = tuple(spec.name for spec in SETTINGS_SPEC if spec.secret)
_UPBIT_KEYS = ("UPBIT_ACCESS_KEY", "UPBIT_SECRET_KEY")
_TELEGRAM = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "TELEGRAM_API_URL")
_SHORT_PASSWORD = 4  # DatabaseUrl does not redact a shorter password on its own (config/secret.py)


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """The outcome of loading the configuration."""

    settings: Settings | None
    problems: tuple[tuple[str, str], ...] = ()
    env_file: Path | None = None  # the file actually read (explicit, or ./.env when present)
    raw_secrets: Mapping[str, str] = field(default_factory=dict)  # secret settings' raw values, even unloadable


def effective_env_file(env_file: Path | None) -> Path | None:
    """The file :func:`config.load_settings` reads: the given one, else ``./.env`` if it exists."""
    if env_file is not None:
        return env_file
    default = Path(".env")
    return default if default.is_file() else None


def load(env_file: Path | None, env: Mapping[str, str] | None) -> tuple[CheckResult, Loaded]:
    """Check 1: the configuration loads and validates; every bad setting is reported."""
    title = "configuration loads and validates"
    source = effective_env_file(env_file)
    raw = _raw_secrets(source, os.environ if env is None else env)
    where = f"env file {source}" if source is not None else "the environment only (no env file)"
    try:
        settings = load_settings(env=env, env_file=env_file)
    except ConfigError as exc:
        count = len(exc.problems)
        detail = "\n".join([f"{count} bad setting{'s' if count != 1 else ''} ({where}):",
                            *(f"{name}: {problem}" for name, problem in exc.problems)])
        fix = "correct every setting named above (allowed values are in .env.example), then run preflight again"
        result = CheckResult.failed("config", title, ErrorKind.CONFIG, detail, fix,
                                    bad_settings=[name for name, _ in exc.problems])
        return result, Loaded(settings=None, problems=exc.problems, env_file=source, raw_secrets=raw)
    return (CheckResult.passed("config", title, f"every setting valid; read from {where}"),
            Loaded(settings=settings, env_file=source, raw_secrets=raw))


def _raw_secrets(env_file: Path | None, env: Mapping[str, str]) -> dict[str, str]:
    """Raw values of the secret settings as written in the environment and the env file.

    Used only to mask them in the outputs when the configuration could not be loaded.
    """
    found = {name: env[name].strip() for name in SECRET_NAMES if env.get(name, "").strip()}
    if env_file is not None and env_file.is_file():
        try:
            values = dotenv_values(env_file, interpolate=False)
        except (OSError, UnicodeDecodeError):
            values = {}
        for name in SECRET_NAMES:
            value = (values.get(name) or "").strip()
            if value and name not in found:
                found[name] = value
    return found


def check_keys(loaded: Loaded) -> CheckResult:
    """Check 2: Upbit keys present and real (required: this is for going live); Telegram checked when set."""
    title = "credentials present, not placeholders"
    bad = [(name, problem) for name, problem in loaded.problems if name in (*_UPBIT_KEYS, *_TELEGRAM)]
    if bad:
        detail = "\n".join(f"{name}: {problem}" for name, problem in bad)
        fix = "put the real values from upbit.com (Open API management) and @BotFather into the env file"
        return CheckResult.failed("credentials", title, ErrorKind.CONFIG, detail, fix,
                                  bad_settings=[name for name, _ in bad])
    settings = loaded.settings
    if settings is None:
        missing = [name for name in _UPBIT_KEYS if name not in loaded.raw_secrets]
        if missing:
            return _keys_missing(title, missing)
        return CheckResult.passed("credentials", title, "Upbit keys are set (the rest of the configuration did "
                                  "not load, see check 1)")
    exchange = settings.exchange
    if exchange.access_key is None or exchange.secret_key is None:
        return _keys_missing(title, list(_UPBIT_KEYS))
    parts = [f"UPBIT_ACCESS_KEY {exchange.access_key.masked}", f"UPBIT_SECRET_KEY {exchange.secret_key.masked}"]
    telegram = settings.telegram
    if telegram.bot_token is not None:
        parts.append(f"TELEGRAM_BOT_TOKEN {telegram.bot_token.masked}, TELEGRAM_CHAT_ID {telegram.chat_id}")
    else:
        parts.append("Telegram not set (optional)")
    return CheckResult.passed("credentials", title, "; ".join(parts))


def _keys_missing(title: str, missing: list[str]) -> CheckResult:
    detail = f"{' and '.join(missing)} not set: going live needs Upbit API keys"
    fix = ("create an Open API key on upbit.com (asset and order viewing, ordering; this machine's IP allowed) "
           "and set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY in the env file")
    return CheckResult.failed("credentials", title, ErrorKind.CONFIG, detail, fix, missing=missing)


def check_secrets(loaded: Loaded, *, caught: int, caught_in: list[str]) -> CheckResult:
    """Check 3: secrets are masked in the settings summary, the logs and this report.

    ``caught`` is how many secret values the report's redactor had to replace in other checks'
    text (``caught_in`` names them): masked before output, but a sign of a leak upstream.
    """
    title = "secrets masked in every output"
    name = "secrets"
    settings = loaded.settings
    if settings is None:
        shown = ", ".join(sorted(loaded.raw_secrets)) or "none"
        return CheckResult.passed(name, title, f"configuration did not load; raw values of secret settings found "
                                  f"({shown}) are masked in this report and the evidence file")
    configured = {n: secret for n, secret in _secret_settings(settings).items() if secret is not None}
    names = list(configured)
    summary = settings.masked_summary()
    in_summary = [n for n, secret in configured.items()
                  if secret.reveal() != secret.masked and secret.reveal() in summary.get(n, "")]
    if in_summary:
        return CheckResult.failed(name, title, PreflightKind.SECRET_EXPOSED,
                                  f"the settings summary shows {', '.join(in_summary)} unmasked",
                                  "a masking bug: do not go live; report it", exposed=in_summary)
    secret_filter = SecretFilter(settings)
    in_logs = [n for n, secret in configured.items() if secret.reveal() != secret.masked
               and secret.reveal() in secret_filter.redact(f"probe {secret.reveal()} probe")]
    if in_logs:
        return CheckResult.failed(name, title, PreflightKind.SECRET_EXPOSED,
                                  f"the log filter does not mask {', '.join(in_logs)}",
                                  "a masking bug: do not go live; report it", exposed=in_logs)
    base = (f"{len(names)} configured ({', '.join(names) or 'none'}): masked in the settings summary and by "
            "the log filter; this report and the evidence file are scanned and masked before output")
    url = settings.database.url
    password = _url_password(url.reveal()) if url is not None else None
    if password is not None and 0 < len(password) < _SHORT_PASSWORD:
        return CheckResult.warned(name, title, PreflightKind.SECRET_EXPOSED,
                                  f"{base}; but the DATABASE_URL password is shorter than {_SHORT_PASSWORD} "
                                  "characters, so it is masked only as part of the whole URL",
                                  "use a long random database password")
    if caught:
        return CheckResult.warned(name, title, PreflightKind.SECRET_EXPOSED,
                                  f"{base}; a secret value turned up {caught} time(s) in the text of "
                                  f"{', '.join(caught_in)} and was masked before output",
                                  "nothing leaked; but either a secret is a common word (use long random "
                                  "secrets) or a component puts secrets into its messages (report it)",
                                  caught_in=caught_in)
    return CheckResult.passed(name, title, base, configured=names)


def _secret_settings(settings: Settings) -> dict[str, Secret | None]:
    return {"DATABASE_URL": settings.database.url, "UPBIT_ACCESS_KEY": settings.exchange.access_key,
            "UPBIT_SECRET_KEY": settings.exchange.secret_key, "TELEGRAM_BOT_TOKEN": settings.telegram.bot_token}


def _url_password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return None if password is None else unquote(password)


def check_database(settings: Settings) -> CheckResult:
    """Check 4: the database answers and every shipped migration is applied (never starts a server)."""
    name, title = "database", "database reachable and migrated"
    if settings.database.url is not None:
        url, where = settings.database.url.reveal(), f"DATABASE_URL {settings.database.url.masked}"
    else:
        pg_dir = settings.database.embedded_pg_dir
        running = embedded.running_url(pg_dir)
        if running is None:
            return CheckResult.failed(
                name, title, PreflightKind.DATABASE_UNREACHABLE,
                f"no DATABASE_URL, and the embedded PostgreSQL in {pg_dir} is not running (preflight never "
                "starts one)",
                "set DATABASE_URL to the live database, or start the system once (bash scripts/run.sh) so the "
                "embedded server runs and is migrated, then run preflight again")
        url, where = running, f"embedded PostgreSQL in {pg_dir}"
    try:
        with connect(url, autocommit=True, application_name="preflight") as conn, translated():
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL, version()").fetchone()
            has_table, server = bool(row and row[0]), str(row[1]).split(" on ")[0] if row else "?"
            applied: dict[int, str] = (
                dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()) if has_table else {}
            )
    except DatabaseUnavailable as exc:
        return CheckResult.failed(name, title, PreflightKind.DATABASE_UNREACHABLE, f"{where}: {_one_line(exc)}",
                                  "check that the database server runs and DATABASE_URL (host, port, user, "
                                  "password, database) is right")
    except DatabaseError as exc:
        return CheckResult.failed(name, title, ErrorKind.UNKNOWN, f"{where}: {_one_line(exc)}",
                                  "see the message; check the database user's rights")
    return _migrations(name, title, where, server, applied)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _migrations(name: str, title: str, where: str, server: str, applied: Mapping[int, str]) -> CheckResult:
    shipped = {m.version: m for m in available()}
    missing = [f"{v:04d}_{m.name}" for v, m in shipped.items() if v not in applied]
    changed = [f"{v:04d}_{m.name}" for v, m in shipped.items() if v in applied and applied[v] != m.checksum]
    unknown = [f"{v:04d}" for v in sorted(applied) if v not in shipped]
    data = {"applied": sorted(applied), "shipped": sorted(shipped)}
    if missing:
        return CheckResult.failed(
            name, title, PreflightKind.NOT_MIGRATED,
            f"{where} ({server}) lacks {len(missing)} of {len(shipped)} migrations: {', '.join(missing)}",
            "start the system once against this database (python -m supervisor applies migrations at start), "
            "or point DATABASE_URL at the migrated database", missing=missing, **data)
    if changed or unknown:
        what = ([f"changed since applied: {', '.join(changed)}"] if changed else []) + (
            [f"applied but unknown to this build: {', '.join(unknown)}"] if unknown else [])
        return CheckResult.failed(name, title, PreflightKind.NOT_MIGRATED, f"{where}: {'; '.join(what)}",
                                  "run the build that matches this database (the schema and the code disagree)",
                                  **data)
    return CheckResult.passed(name, title, f"{where} ({server}): all {len(shipped)} migrations applied", **data)


def check_env_file_git(env_file: Path | None) -> CheckResult:
    """Check 9: the env file holding the secrets is not tracked by git (tracked fails, ignored passes)."""
    name, title = "env_file_git", "env file not tracked by git"
    if env_file is None:
        return CheckResult.passed(name, title, "no env file: settings come from the environment")
    path = env_file.resolve()
    holds = sorted(k for k, v in _dotenv(path).items() if k in SECRET_NAMES and (v or "").strip())
    try:
        inside = _git(path.parent, "rev-parse", "--is-inside-work-tree")
    except FileNotFoundError:
        if any((parent / ".git").exists() for parent in (path.parent, *path.parents)):
            return CheckResult.warned(name, title, PreflightKind.SECRET_EXPOSED,
                                      f"{path} is inside a git checkout but git is not installed: cannot tell "
                                      "whether it is tracked", "install git, or check by hand: git ls-files "
                                      f"--error-unmatch {path.name}")
        return CheckResult.passed(name, title, f"{path} is not in a git checkout (git not installed)")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return CheckResult.passed(name, title, f"{path} is not in a git checkout")
    tracked = _git(path.parent, "ls-files", "--error-unmatch", "--", path.name).returncode == 0
    if tracked:
        fix = (f"git rm --cached {path.name}; add it to .gitignore; commit; then rotate every secret it held "
               "(they are in the history)")
        if holds:
            return CheckResult.failed(name, title, PreflightKind.SECRET_EXPOSED,
                                      f"{path} is tracked by git and holds {', '.join(holds)}", fix, holds=holds)
        return CheckResult.warned(name, title, PreflightKind.SECRET_EXPOSED,
                                  f"{path} is tracked by git (it holds no secret now; one added later would be "
                                  "committed)", fix)
    if _git(path.parent, "check-ignore", "-q", "--", path.name).returncode == 0:
        return CheckResult.passed(name, title, f"{path} is ignored by git", holds=holds)
    return CheckResult.warned(name, title, PreflightKind.SECRET_EXPOSED,
                              f"{path} is not tracked but not ignored either: 'git add -A' would commit it",
                              f"add {path.name} to .gitignore", holds=holds)


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # no inherited GIT_DIR & co.
    argv = ["git", *args]  # a fixed program and fixed flags; only the file name varies
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603


def _dotenv(path: Path) -> dict[str, str | None]:
    try:
        return dict(dotenv_values(path, interpolate=False))
    except (OSError, UnicodeDecodeError):
        return {}
