"""``python -m supervisor preflight``: is this machine, with these settings, ready to go live?

Run it before switching a deployment to real keys::

    python -m supervisor preflight [--env-file PATH] [--evidence FILE]

It checks, in this order, and **places no order**: only ``GET`` requests leave the process — the
HTTP session refuses any other method before a connection is opened (:mod:`.guard`) — and the
database session is read-only.

==  ==================  ==========================================================================
 1  config              the settings load and validate; every bad setting is named
 2  credentials         Upbit keys set (required) and not placeholders; Telegram checked when set
 3  secrets             secrets are masked in the settings summary, the logs, this table and the
                        evidence file (both outputs are scanned and masked before they are written)
 4  database            ``DATABASE_URL``, or the embedded server *if it is running* (never started),
                        answers and has every shipped migration applied
 5  upbit_accounts,     ``GET /v1/accounts`` and ``GET /v1/orders/chance?market=KRW-BTC`` with the
    upbit_order_chance  keys, against ``UPBIT_REST_URL``
 6  clock_skew          our clock against Upbit's ``Date`` header; fails beyond 1 s (fix: NTP)
 7  rate_limit          ``Remaining-Req``: fails on 429/418 or no budget left, warns when low
 8  telegram            ``getMe`` and ``getChat`` for ``TELEGRAM_CHAT_ID`` (a warning when unset)
 9  env_file_git        the env file is not tracked by git (tracked fails, ignored passes,
                        not a checkout passes and says so)
==  ==================  ==========================================================================

Every warning and failure carries a classification — ``exchange.errors.ErrorKind`` where it fits
(``invalid_key``, ``ip_not_allowed``, ``permission``, ``rate_limited``, ``blocked``, ``network``,
``config``, ``unknown`` …), else one of :class:`~.report.PreflightKind` (``clock_skew``,
``not_migrated``, ``database_unreachable``, ``secret_exposed``, ``not_run``) — and a fix a person can
apply. The table goes to stdout; the JSON evidence (every check with status, classification, detail,
fix and timing, Upbit's answers, the masked settings) to ``--evidence`` or
``var/preflight-<UTC stamp>.json``.

Exit status: 0 every check passed (warnings allowed); 1 a check failed (or the evidence could not be
written); 2 bad usage (unknown flag, missing ``--env-file``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

__all__ = ["add_parser", "preflight"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``preflight`` and its flags."""
    p = sub.add_parser("preflight", help="check read-only that everything is ready to go live; writes evidence")
    p.add_argument("--env-file", dest="preflight_env_file", type=Path, default=None, metavar="PATH",
                   help="settings file to check (default: ./.env if present)")
    p.add_argument("--evidence", type=Path, default=None, metavar="FILE",
                   help="where to write the JSON evidence (default: var/preflight-<UTC stamp>.json)")


def preflight(args: argparse.Namespace, out: TextIO) -> int:
    """The command: runs before settings are loaded, since loading them is its first check."""
    from config import configure_logging
    from tools.preflight.runner import Collaborators, run

    env_file = args.preflight_env_file or args.env_file
    return run(env_file=env_file, evidence=args.evidence, out=out,
               deps=Collaborators(on_settings=configure_logging))
