"""``python -m supervisor sim``: the simulated Upbit as a standalone server any client can use."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import requests

from exchange.rest import UpbitClient
from tests.e2e.harness import base_env


def test_sim_command_serves_our_client_until_sigint(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "supervisor", "sim", "--port", "0", "--ws-port", "0",
                             "--access-key", "ACCESSKEY0123456789", "--secret-key", "SECRETKEY0123456789abcdefghijklmnop",
                             "--balance", "KRW=1000000"],
                            cwd=tmp_path, env=base_env(None, tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        rest = None
        for line in proc.stdout:
            if line.startswith("REST "):
                rest = line.split()[1]
            if line.startswith("WS "):
                break
        assert rest is not None
        client = UpbitClient(rest, access_key="ACCESSKEY0123456789", secret_key="SECRETKEY0123456789abcdefghijklmnop")
        krw = {a.currency: a.balance for a in client.accounts()}["KRW"]
        assert str(krw) in {"1000000", "1000000.0"}
        assert requests.get(f"{rest}/v1/market/all", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
