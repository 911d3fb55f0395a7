"""``python -m supervisor drill``: orchestration — two runs of the real system, faults, checks.

1. A PostgreSQL for the drill (:mod:`.database`) and two fresh, migrated databases.
2. The **reference run**: ``python -m supervisor run --speed max --exit-at-end`` on the window of
   the shipped candle recording, shadow execution, no faults.
3. The **drill run**: the same system, same window and strategy, at ``--speed`` (so there is
   time to hurt it), alerts going to a stub Telegram (:mod:`.telegram_stub`), orders — with
   ``--orders test|live`` — to an in-process simulated Upbit; the plan's faults (:mod:`.plan`)
   are injected one after another as the run reaches each fault's point (:mod:`.faults`).
   Before a fault that costs the root a node restart the drill waits, if need be, until the
   root's restart window has room for it: a drill tests recovery, not the give-up.
4. The checks (:mod:`.invariants`) and the report (:mod:`.report`).

The runs use the process environment minus every setting the drill controls (database, mode,
keys, Telegram, replay, strategy, failpoints, dashboard), in a scratch working directory (so no
``.env`` is read by them); the restart intensities and timeouts are the drill's own configuration
(``.env`` included), passed on explicitly.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import psycopg

from config import LIVE_CONFIRM_PHRASE, Settings, load_settings
from persistence.db import one_row
from persistence.embedded import EmbeddedPostgresError
from tools.drill import report as report_mod
from tools.drill.database import DrillDatabase
from tools.drill.faults import Context, FaultResult, Observer, crash_with_ctl, ctl_command, inject, skip_reason
from tools.drill.invariants import Check, Intensity, check_adoption, check_alerts, check_bars, check_exits, check_ledger, check_orders, check_paper, check_recovery, check_supervision, notifier_crashes
from tools.drill.plan import DISRUPTIVE, Plan, PlanError, default_kinds, make_plan, parse_kinds
from tools.drill.telegram_stub import CHAT_ID, TelegramStub

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

SLICE_FROM = "2024-08-24T22:28:00"
SLICE_UNTIL = "2024-08-25T00:28:00"
DEFAULT_STRATEGY = "trading.builtin:SmaMomentum"
BUSY_PARAMS = '{"window": 5, "entry_bps": 0, "exit_bps": 0}'  # trades often on the slice
DEFAULT_SPEED = 20.0  # the two-hour slice in about two minutes (gaps over REPLAY_MAX_GAP_S=5 s are shortened)
DEFAULT_FAULTS = 6
SIM_ACCESS, SIM_SECRET = "DRILLACCESS" * 3, "DRILLSECRET" * 5
SIM_BALANCES = {"KRW": Decimal(50_000_000), "BTC": Decimal(1)}
REFERENCE_TIMEOUT_S = 300.0
RESTART_STOP_S = 60.0
LIVE_MARKET = "KRW-BTC"
POLL_S = 0.1

_CONTROLLED = ("UPBIT_", "TELEGRAM_", "REPLAY_", "DATABASE_", "LIVE_", "FAILPOINTS", "TRADE_MODE", "FEED_SOURCE",
               "MARKETS", "STRATEGY", "DASHBOARD_", "EMBEDDED_PG_DIR", "ALERT", "READ_ONLY", "TEST_ORDERS",
               "AUTO_TEST", "ROOT_", "NODE_", "SHUTDOWN_TIMEOUT_S", "STATUS_INTERVAL_S", "EXEC_MAX_DATA_LAG_S")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``drill`` and its flags."""
    p = sub.add_parser("drill", help="kill-and-restart resilience drill: a reference run, a run with injected "
                                     "faults, the two compared; writes a report")
    p.add_argument("--faults", type=_non_negative_int, default=DEFAULT_FAULTS, metavar="N",
                   help=f"how many faults to inject (default {DEFAULT_FAULTS})")
    p.add_argument("--kinds", default=None, metavar="K,K",
                   help="fault kinds among kill,crash,hang,db,ws,exchange,telegram (default: every kind that "
                        "applies: kill,crash,hang,db,telegram; plus exchange with --orders test|live)")
    p.add_argument("--seed", type=int, default=None, help="plan seed: the same seed gives the same plan "
                                                         "(default: a random one, printed)")
    p.add_argument("--report", dest="drill_report", type=Path, default=None, metavar="DIR",
                   help="where report.txt, report.json and the runs' logs go (default var/drills/<UTC stamp>)")
    p.add_argument("--speed", dest="drill_speed", type=_positive_float, default=DEFAULT_SPEED, metavar="X",
                   help=f"replay speed of the drill run, x real time (default {DEFAULT_SPEED:g}: the default window "
                        "in about two minutes, as the replay shortens gaps longer than 5 s; 40: one minute)")
    p.add_argument("--from", dest="drill_from", type=_iso_time, default=SLICE_FROM, metavar="TIME",
                   help=f"start of the recording window, UTC (default {SLICE_FROM})")
    p.add_argument("--until", dest="drill_until", type=_iso_time, default=SLICE_UNTIL, metavar="TIME",
                   help=f"end of the recording window, UTC (default {SLICE_UNTIL})")
    p.add_argument("--orders", choices=["shadow", "test", "live"], default="shadow",
                   help="execution of the drill run: shadow (default), or test/live orders to a simulated Upbit")
    p.add_argument("--strategy", dest="drill_strategy", default=DEFAULT_STRATEGY, metavar="MODULE:CLASS",
                   help=f"strategy of both runs (default {DEFAULT_STRATEGY})")
    p.add_argument("--params", dest="drill_params", default=BUSY_PARAMS, metavar="JSON",
                   help=f"its parameters (default {BUSY_PARAMS}: trades often)")
    p.add_argument("--hang-timeout", type=_positive_float, default=15.0, metavar="SECONDS",
                   help="how long a SIGSTOPped node may go unnoticed before the drill resumes it and reports the "
                        "hang as not detected (default 15)")
    p.add_argument("--timeout", dest="drill_timeout", type=_positive_float, default=None, metavar="SECONDS",
                   help="give up on the drill run after this long (default: twice its expected length + 3 min)")
    p.add_argument("--reference-params", default=None, metavar="JSON",
                   help="checks the checker: run the reference with other strategy parameters, so the drill "
                        "must FAIL (bars equal, paper trades not)")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _iso_time(text: str) -> str:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an ISO 8601 time such as {SLICE_FROM}, got {text!r}") from None
    return text


def drill(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """The command; its exit code (0 every invariant held, 1 one failed or a run failed, 2 bad usage)."""
    start, until = datetime.fromisoformat(args.drill_from), datetime.fromisoformat(args.drill_until)
    if until <= start:
        print(f"error: --until ({args.drill_until}) must be after --from ({args.drill_from})", file=out)
        return EXIT_USAGE
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    try:
        kinds = parse_kinds(args.kinds) if args.kinds else default_kinds(args.orders)
        plan = make_plan(seed=seed, count=args.faults, kinds=kinds, orders=args.orders)
    except PlanError as exc:
        print(f"error: {exc}", file=out)
        return EXIT_USAGE
    for name in ("persistence.migrate", "persistence.embedded"):  # the drill narrates its own steps
        logging.getLogger(name).setLevel(logging.WARNING)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report_dir = (args.drill_report or Path("var") / "drills" / stamp).expanduser()
    report_dir.mkdir(parents=True, exist_ok=True)
    drill_run = _Drill(settings, args, plan, report_dir, out)
    try:
        return drill_run.run()
    except KeyboardInterrupt:
        print("drill interrupted: the system, the stubs and the drill's database are being cleaned up", file=out)
        return EXIT_FAILED
    except (EmbeddedPostgresError, psycopg.Error) as exc:
        print(f"error: the drill's database failed: {exc}", file=out)
        return EXIT_FAILED
    finally:
        drill_run.close()


class _Drill:
    def __init__(self, settings: Settings, args: argparse.Namespace, plan: Plan, report_dir: Path,
                 out: TextIO) -> None:
        self.settings = settings
        self.args = args
        self.plan = plan
        self.dir = report_dir
        self.out = out
        self.workdir = Path(tempfile.mkdtemp(prefix="upbit-drill-"))
        (self.workdir / "drill.env").write_text("")  # the runs read no .env: every setting is explicit
        external = settings.database.url.reveal() if settings.database.url is not None else None
        self.db = DrillDatabase(external)
        self.stub: TelegramStub | None = None
        self.sim: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.report = report_mod.DrillReport(plan=plan, window=(args.drill_from, args.drill_until),
                                             strategy=args.drill_strategy, params=args.drill_params, database="")
        self._t0 = time.monotonic()
        self._progress = 0.0
        self._unrecorded: list[tuple[float, int]] = []  # (monotonic time, root restarts missing from the events)

    # --- the whole drill ---------------------------------------------------------------------

    def run(self) -> int:
        self.report.started_at = datetime.now(UTC).isoformat()
        self._say(f"drill: seed {self.plan.seed}; plan:")
        for fault in self.plan.faults:
            self._say(f"  {fault.describe()}")
        if self.plan.failpoints:
            self._say(f"  FAILPOINTS={self.plan.failpoints}")
        self.db.start()
        self.report.database = self.db.where
        ref_url, run_url = self.db.create("ref"), self.db.create("run")
        params = self.args.reference_params or self.args.drill_params
        if self.args.reference_params:
            self.report.notes.append(f"the reference run used other parameters ({params}): this drill must fail")
        self._say("reference run (no faults, shadow, speed max) …")
        ref = self._run_reference(ref_url, params)
        self.report.runs.append(ref)
        if ref.exit_code != 0:
            self.report.checks.append(Check(name="reference", ok=False,
                                            summary=f"the reference run failed (exit {ref.exit_code}); see {ref.log}"))
            return self._finish()
        with psycopg.connect(ref_url) as conn:
            ref_bars = int(one_row(conn, "SELECT count(*) FROM market_1s")[0])
        if ref_bars == 0:
            self.report.checks.append(Check(name="reference", ok=False, summary="the reference run stored no bars: "
                                                                                 "is the window inside the recording?"))
            return self._finish()
        self._say(f"reference run: exit 0 in {ref.duration_s:.1f} s, {ref_bars} bars")
        self._say(f"drill run ({self.plan.orders}, speed {self.args.drill_speed:g}) with "
                  f"{len(self.plan.faults)} faults …")
        results, run = self._run_drill(run_url, ref_bars)
        self.report.runs.append(run)
        self.report.faults = results
        self._check(ref_url, run_url, run.exit_code, results)
        return self._finish()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc)
        if self.stub is not None:
            self.stub.stop()
        if self.sim is not None:
            self.sim.stop()
        self.db.close()
        for path in self.workdir.iterdir():
            path.unlink(missing_ok=True)
        self.workdir.rmdir()

    # --- runs --------------------------------------------------------------------------------

    def _env(self, url: str, *, mode: str, params: str, telegram: TelegramStub | None = None,
             failpoints: str = "") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_CONTROLLED)}
        sup = self.settings.supervision
        env.update({
            "DATABASE_URL": url, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO", "STATUS_INTERVAL_S": "1",
            "DASHBOARD_PORT": "0", "FEED_SOURCE": "replay", "REPLAY_SOURCE": "candles",
            "STRATEGY": self.args.drill_strategy, "STRATEGY_PARAMS": params, "TRADE_MODE": mode,
            "ROOT_INTENSITY": str(sup.root_intensity), "ROOT_PERIOD_S": f"{sup.root_period_s:g}",
            "NODE_INTENSITY": str(sup.node_intensity), "NODE_PERIOD_S": f"{sup.node_period_s:g}",
            "SHUTDOWN_TIMEOUT_S": f"{sup.shutdown_timeout_s:g}", "NODE_START_TIMEOUT_S": f"{sup.node_start_timeout_s:g}",
        })
        if failpoints:
            env["FAILPOINTS"] = failpoints
        if telegram is not None:
            env.update(TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_CHAT_ID=str(CHAT_ID), TELEGRAM_API_URL=telegram.url)
        if mode != "shadow" and self.sim is not None:
            env.update(UPBIT_ACCESS_KEY=SIM_ACCESS, UPBIT_SECRET_KEY=SIM_SECRET, UPBIT_REST_URL=self.sim.rest_url,
                       EXEC_MAX_DATA_LAG_S="600")
            if mode == "live":
                env.update(LIVE_TRADING="true", LIVE_CONFIRM=LIVE_CONFIRM_PHRASE, LIVE_MARKETS=LIVE_MARKET)
        return env

    def _argv(self, speed: str) -> list[str]:
        return [sys.executable, "-m", "supervisor", "run", "--speed", speed, "--from", self.args.drill_from,
                "--until", self.args.drill_until, "--exit-at-end"]

    def _start(self, argv: list[str], env: dict[str, str], log_path: Path, *,
               append: bool = False) -> subprocess.Popen[bytes]:
        with log_path.open("ab" if append else "wb") as log_file:
            return subprocess.Popen(argv, cwd=self.workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def _run_reference(self, url: str, params: str) -> report_mod.RunFacts:
        argv = self._argv("max")
        log_path = self.dir / "reference.log"
        t0 = time.monotonic()
        proc = self.proc = self._start(argv, self._env(url, mode="shadow", params=params), log_path)
        code = _wait(proc, REFERENCE_TIMEOUT_S)
        self.proc = None
        return report_mod.RunFacts(label="reference", exit_code=code, duration_s=time.monotonic() - t0,
                                   log=str(log_path), command=shlex.join(argv[1:]), mode="shadow", speed="max")

    def _run_drill(self, url: str, ref_bars: int) -> tuple[list[FaultResult], report_mod.RunFacts]:
        self.stub = TelegramStub().start()
        if self.plan.orders != "shadow":
            self.sim = _start_sim(self.args.drill_speed)
        env = self._env(url, mode=self.plan.orders, params=self.args.drill_params, telegram=self.stub,
                        failpoints=self.plan.failpoints)
        ctl_settings = load_settings(env=env, env_file=self.workdir / "drill.env")
        argv = self._argv(f"{self.args.drill_speed:g}")
        log_path = self.dir / "drill.log"
        window_s = (datetime.fromisoformat(self.args.drill_until)
                    - datetime.fromisoformat(self.args.drill_from)).total_seconds()
        timeout = self.args.drill_timeout or 2 * window_s / self.args.drill_speed + 180
        observer = Observer(url)
        stub = self.stub

        def restart_system(mode: str) -> None:
            """The operator stops the system (SIGTERM: an orderly stop) and starts it with TRADE_MODE=mode."""
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                if _wait(self.proc, RESTART_STOP_S) is None:
                    self.report.notes.append(f"the system did not stop within {RESTART_STOP_S:g} s of SIGTERM")
            self._say(f"  restarting the system with TRADE_MODE={mode}")
            self.proc = self._start(argv, {**env, "TRADE_MODE": mode}, log_path, append=True)

        ctx = Context(
            observer=observer, alive=lambda: self.proc is not None and self.proc.poll() is None,
            crash_actor=crash_with_ctl(ctl_settings),
            stop_database=self.db.stop_server if self.db.can_stop else None,
            start_database=self.db.start_server if self.db.can_stop else None,
            telegram_down=stub.down, telegram_up=stub.up,
            telegram_received_after=lambda t: next((m.at for m in stub.messages() if m.at > t), None),
            sim_faults=self.sim.faults if self.sim is not None else None, hang_bound_s=self.args.hang_timeout,
            ctl=ctl_command(ctl_settings), restart_system=restart_system, drill_mode=self.plan.orders)
        t0 = time.monotonic()
        self.proc = self._start(argv, env, log_path)
        results = []
        try:
            for fault in self.plan.faults:
                result = FaultResult(fault=fault)
                results.append(result)
                self._one_fault(result, ctx, ref_bars)
            code = _wait(self.proc, max(1.0, timeout - (time.monotonic() - t0)))
        finally:
            observer.close()
        if code is None:
            self.report.notes.append(f"the drill run did not end within {timeout:.0f} s and was killed")
        facts = report_mod.RunFacts(label="drill", exit_code=code, duration_s=time.monotonic() - t0,
                                    log=str(log_path), command=shlex.join(argv[1:]), mode=self.plan.orders,
                                    speed=f"{self.args.drill_speed:g}")
        self._say(f"drill run: exit {code} in {facts.duration_s:.1f} s")
        return results, facts

    def _one_fault(self, result: FaultResult, ctx: Context, ref_bars: int) -> None:
        fault = result.fault
        reason = skip_reason(fault, orders=self.plan.orders, owns_database=self.db.can_stop)
        if reason is not None:
            result.status, result.reason = "skipped", reason
            self._say(f"  {fault.describe()}: SKIPPED ({reason})")
            return
        progress = self._progress
        while True:
            if not ctx.alive():
                result.status = "not_reached"
                result.reason = f"the run ended (at {progress:.0%}) before this point"
                self._say(f"  {fault.describe()}: NOT REACHED ({result.reason})")
                return
            bars = ctx.observer.bars()
            if bars is not None:
                progress = self._progress = bars / ref_bars
                if progress >= fault.at:
                    break
            time.sleep(POLL_S)
        if fault.kind in DISRUPTIVE:
            result.held_s = self._hold_for_intensity(ctx, db=fault.kind == "db")
            if not ctx.alive():
                result.status, result.reason = "not_reached", "the run ended while the drill held this fault back"
                self._say(f"  {fault.describe()}: NOT REACHED ({result.reason})")
                return
        bars = ctx.observer.bars()
        result.progress = (bars / ref_bars) if bars is not None else progress
        before = ctx.observer.incarnations()
        inject(fault, ctx, result)
        if fault.kind == "db" and result.injected_at is not None:
            self._note_unrecorded_restarts(ctx, before, result.injected_at)
        for line in report_mod.fault_lines([result]):
            self._say(line)

    def _note_unrecorded_restarts(self, ctx: Context, before: int | None, injected_at: datetime) -> None:
        """Restarts the root made while the database was down are missing from ``supervisor_events``;
        the nodes' incarnations (``runtime_nodes``) still count them: keep them in the drill's own tally."""
        after = ctx.observer.incarnations()
        recorded = ctx.observer.restarts_since(injected_at)
        if before is None or after is None or recorded is None:
            self._unrecorded.append((time.monotonic(), self.settings.supervision.root_intensity))
            return
        if after - before > recorded:
            self._unrecorded.append((time.monotonic(), after - before - recorded))

    def _hold_for_intensity(self, ctx: Context, *, db: bool) -> float:
        """Wait until the root's restart window has room for this fault; how long it waited.

        A node kill or hang costs the root one restart (two with failpoints armed, which may kill
        the execution node at any time). A database outage can cost the whole budget — every
        node's actors fail at once, the nodes give up, and restarting a node fails while the
        database is still down — so a ``db`` fault waits for a window with no restart in it.
        Restarts made during an outage are not in ``supervisor_events``: they come from the tally
        of :meth:`_note_unrecorded_restarts`.
        """
        sup = self.settings.supervision
        cost = 1 + (1 if self.plan.failpoints else 0)  # a db outage parks restarts (held, not counted)
        t0 = time.monotonic()
        while ctx.alive() and time.monotonic() - t0 < 2 * sup.root_period_s:
            since = datetime.now(UTC).timestamp() - sup.root_period_s
            recorded = ctx.observer.restarts_since(datetime.fromtimestamp(since, UTC))
            unrecorded = sum(n for t, n in self._unrecorded if time.monotonic() - t < sup.root_period_s)
            if recorded is not None and recorded + unrecorded + cost <= sup.root_intensity:
                break
            time.sleep(0.2)
        return time.monotonic() - t0

    # --- checks and report -------------------------------------------------------------------

    def _check(self, ref_url: str, run_url: str, exit_code: int | None, results: list[FaultResult]) -> None:
        sim_orders = every = None
        foreign: set[str] = set()
        if self.plan.orders == "live" and self.sim is not None:
            foreign = set(self.sim.faults.foreign_orders)  # identifier_taken's: never ours
            every = [o for o in self.sim.venue.every_order(SIM_ACCESS) if o["uuid"] not in foreign]
            sim_orders = every
        received = [m.text for m in self.stub.messages()] if self.stub is not None else []
        sup = self.settings.supervision
        with psycopg.connect(ref_url, autocommit=True) as ref, psycopg.connect(run_url, autocommit=True) as run:
            if self.plan.failpoints:
                self.report.failpoint_kills = _failpoint_kills(run, results)
            self.report.checks = [
                check_orders(run, orders=self.plan.orders, sim_orders=sim_orders),
                check_bars(ref, run),
                check_paper(ref, run),
                check_alerts(run, received, crashes=notifier_crashes(results)),
                check_supervision(run, exit_code=exit_code,
                                  root=Intensity(intensity=sup.root_intensity, period_s=sup.root_period_s),
                                  node=Intensity(intensity=sup.node_intensity, period_s=sup.node_period_s),
                                  results=results, failpoints=bool(self.plan.failpoints)),
                check_recovery(results),
            ]
            if every is not None:
                self.report.checks += [
                    check_ledger(run, every, live_markets=(LIVE_MARKET,), cap=self.settings.risk.max_order_krw),
                    check_exits(run),
                    check_adoption(run, every, foreign=foreign),
                ]

    def _finish(self) -> int:
        self.report.duration_s = time.monotonic() - self._t0
        text_path, json_path = report_mod.write(self.report, self.dir)
        self.out.write("\n" + report_mod.render_text(self.report))
        self.out.write(f"report: {text_path} and {json_path}\n")
        self.out.flush()
        return EXIT_OK if self.report.ok else EXIT_FAILED

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _failpoint_kills(run: psycopg.Connection, results: list[FaultResult]) -> list[dict[str, Any]]:
    """The execution node's SIGKILLs that no drill fault explains (its failpoints), with restart times."""
    drill_kills = [r.injected_at for r in results if r.injected_at is not None and r.fault.target == "execution"
                   and r.fault.kind in ("kill", "hang")]
    exits = run.execute("SELECT at FROM supervisor_events WHERE supervisor = 'root' AND kind = 'exited'"
                        " AND child_id = 'execution' AND reason LIKE 'killed%' ORDER BY at").fetchall()
    kills = []
    for (at,) in exits:
        if any(0 <= (at - t).total_seconds() <= 3 for t in drill_kills):
            continue
        row = run.execute("SELECT min(at) FROM supervisor_events WHERE supervisor = 'root' AND kind = 'started'"
                          " AND child_id = 'execution' AND at > %s", (at,)).fetchone()
        started = row[0] if row else None
        kills.append({"at": at.isoformat(),
                      "restart_s": None if started is None else round((started - at).total_seconds(), 3)})
    return kills


def _start_sim(speed: float) -> Any:
    from market.recording import CANDLES_KRW_BTC_1M, Recording
    from upbit_sim import SimConfig, SimServer

    config = SimConfig(keys={SIM_ACCESS: SIM_SECRET}, balances={SIM_ACCESS: dict(SIM_BALANCES)},
                       recording=Recording.open(CANDLES_KRW_BTC_1M), speed=2 * speed, max_gap_s=1.0)
    return SimServer(config).start()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        log.warning("the system process %s did not end after SIGKILL", proc.pid)
