"""Running the real system (``python -m supervisor``) as a child process, and reading its log.

Each run gets its own working directory (no developer ``.env`` leaks in), its own database
through ``DATABASE_URL`` and a log file. The bench's own checkout is put first on ``PYTHONPATH``,
so a copy of the repository benchmarks its own code. Every process started here is killed at the
end, whatever happened (its whole process group: the root and its node processes).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from config.settings import SETTINGS_SPEC

REPO = Path(__file__).resolve().parents[1]
_SETTINGS = frozenset(spec.name for spec in SETTINGS_SPEC)
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (\w+)\s+(\S+)/(\S+) (\S+): (.*)$")


def child_env(**extra: str) -> dict[str, str]:
    """The bench's environment without any of the system's settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS and not k.startswith("BENCH_")}
    inherited = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *inherited])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def system_env(db_url: str, workdir: Path, **settings: str) -> dict[str, str]:
    """Settings of a benchmarked run: the defaults, this database, no dashboard, INFO log lines."""
    return child_env(DATABASE_URL=db_url, DASHBOARD_PORT="0", LOG_LEVEL="INFO",
                     EMBEDDED_PG_DIR=str(workdir / "unused-pgdata"), **settings)


@dataclass(frozen=True, slots=True)
class LogLine:
    at: float  # epoch seconds (the log's UTC millisecond stamp)
    level: str
    process: str
    thread: str
    logger: str
    message: str


@dataclass(slots=True, kw_only=True)
class SystemProcess:
    """One ``python -m supervisor`` run."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    spawned_at: float  # time.time() just before the process was created
    exited_at: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float) -> int:
        """The exit code; raises ``subprocess.TimeoutExpired`` if it is still running then."""
        code = self.proc.wait(timeout)
        if self.exited_at is None:
            self.exited_at = time.time()
        return code

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the root stops its nodes in reverse start order), then SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (the root and its nodes)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def log(self) -> list[LogLine]:
        return parse_log(self.log_path.read_text(errors="replace"))

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(slots=True)
class Launcher:
    """Starts system runs and guarantees they are gone at ``close``."""

    workdir: Path
    started: list[SystemProcess] = field(default_factory=list)

    def start(self, args: list[str], env: dict[str, str], name: str) -> SystemProcess:
        run_dir = self.workdir / f"{name}-{len(self.started)}"
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = run_dir / "system.log"
        with log_path.open("wb") as log:
            spawned_at = time.time()
            proc = subprocess.Popen([sys.executable, "-m", "supervisor", *args], cwd=run_dir, env=env,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        run = SystemProcess(proc=proc, log_path=log_path, spawned_at=spawned_at)
        self.started.append(run)
        return run

    def close(self) -> None:
        for run in self.started:
            run.kill()


def parse_log(text: str) -> list[LogLine]:
    out = []
    for raw in text.splitlines():
        m = _LOG_LINE.match(raw)
        if m is None:
            continue
        stamp = datetime.fromisoformat(m[1]).replace(tzinfo=UTC).timestamp()
        out.append(LogLine(at=stamp, level=m[2], process=m[3], thread=m[4], logger=m[5], message=m[6]))
    return out


def first(lines: list[LogLine], logger: str, prefix: str) -> LogLine | None:
    """The first line of ``logger`` whose message starts with ``prefix``."""
    return next((ln for ln in lines if ln.logger == logger and ln.message.startswith(prefix)), None)


class BenchError(RuntimeError):
    """A benchmark could not measure what it should (the system failed, a fact never appeared)."""
