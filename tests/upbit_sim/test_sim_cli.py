"""upbit_sim.cli: argument errors, and a real ``python -m upbit_sim`` process stopped by SIGINT."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers import MS
from tests.upbit_sim.sim_client import SignedClient
from upbit_sim import sim_main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "http"], "a port must be a number"),
        (["--port", "70000"], "a port must be 0..65535"),
        (["--speed", "0"], "--speed must be a positive number"),
        (["--fault", "explode"], "unknown fault 'explode'"),
        (["--fault", "fail_next:lots"], "fault 'fail_next': n must be int"),
        (["--access-key", "A"], "--access-key and --secret-key go together"),
        (["--balance", "KRW=10"], "--balance needs --access-key"),
        (["--access-key", "A", "--secret-key", "S", "--balance", "krw=1"], "--balance must look like KRW=1000000"),
        (["--data", "/no/such/file.capture"], "--data: no such file"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sim_main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(["--help"]) == 0
    assert "--fault" in capsys.readouterr().out


def test_a_taken_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert sim_main(["--port", str(port)], out=io.StringIO()) == 1
    assert "cannot start" in capsys.readouterr().err


def test_runs_until_sigint_and_prints_the_urls() -> None:
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "upbit_sim", "--access-key", "CLI", "--secret-key", "cli-secret" * 7,
         "--balance", "KRW=5000000", "--data", "capture", "--speed", "max", "--fault", "fail_next:1,503"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        rest = process.stdout.readline().split()
        ws = process.stdout.readline().split()
        assert rest[0] == "REST" and rest[1].startswith("http://127.0.0.1:")
        assert ws[0] == "WS" and ws[1].startswith("ws://127.0.0.1:") and ws[1].endswith("/websocket/v1")
        client = SignedClient(rest[1], "CLI", "cli-secret" * 7)
        assert client.get("/v1/accounts").status_code == 503  # the --fault
        assert client.accounts()["KRW"]["balance"] == "5000000"
        status = requests.get(rest[1] + "/_sim/status", timeout=5).json()
        assert status["status"] == "UP"
        client.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10_000 * MS) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(("name", "content", "message"), [
    ("t.csv", "market,ts_ms,price,volume,side\nKRW-BTC,1724538480000,1E+400000,1,BID\n",
     "--data: {path}:2: column 'price': 1E+400000 is too large"),
    ("t.csv", "market,ts_ms,price,volume,side\nKRW-BTC,1724538480,85533000,1,BID\n", "looks like seconds"),
    ("t.csv", "market,ts_ms,price,volume\nKRW-BTC,1724538480000,85533000,1\n", "missing column(s) 'side'"),
    ("krw-btc-1m.csv.gz", "not gzip", "--data {path}: cannot be read as candles"),
])
def test_a_bad_data_file_is_named_with_its_line_and_exits_2(tmp_path: Path, name: str, content: str, message: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert sim_main(["--data", str(path)]) == 2  # review finding 11: was a traceback (or a dead replay thread)
    err = capsys.readouterr().err
    assert message.format(path=path) in err
    assert "Traceback" not in err
