"""Who may read the dashboard: exact loopback Host names without a token, the token with one.

Review finding 9: a ``Host`` starting with ``127.`` passed the DNS-rebinding check, so a page on
``127.attacker.example`` could read balances and orders; and a non-loopback bind address served
everything to the network with no authentication at all.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from config import Secret
from dashboard import DashboardServer
from dashboard.server import COOKIE, loopback_host_header
from tests.dashboard import rows
from tests.helpers import MS

Start = Callable[..., DashboardServer]
TOKEN = "Zq3-dashboard-token_0123456789"
PROTECTED = ("/", "/index.html", "/api/status", "/api/series?limit=5", "/metrics", "/static/app.js")


def _request(port: int, path: str, headers: dict[str, str] | None = None,
             method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


# --- the Host rule (no token) -------------------------------------------------------------------


@pytest.mark.parametrize("host", [
    "", "localhost", "LOCALHOST", "localhost:8765", "127.0.0.1", "127.0.0.1:8765", "127.1.2.3:1", "[::1]",
    "[::1]:8765", "::1", "127.0.0.1:65535",
])
def test_exact_loopback_host_headers_are_loopback(host: str) -> None:
    assert loopback_host_header(host)


@pytest.mark.parametrize("host", [
    "127.attacker.example", "127.attacker.example:8765", "127.0.0.1.attacker.example", "localhost.attacker.example",
    "attacker.example", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:+80", "127.0.0.1:８０", "127.0.0.1:",
    "127.0.0.1:80:80", "[::1", "[::1]x", "[::1]:", "[127.0.0.1]", "127.1", "0x7f.0.0.1", "0177.0.0.1",
    "[::ffff:7f00:1]", "::", "0.0.0.0", "192.168.1.5", "１２７.0.0.1", "127.0.0.1 evil",
])
def test_anything_else_is_not(host: str) -> None:
    assert not loopback_host_header(host)


def test_a_host_named_like_loopback_is_refused_and_real_loopback_names_are_served(db_url: str,
                                                                                  start_dashboard: Start) -> None:
    server = start_dashboard(db_url)
    port = server.port
    for host in ("127.attacker.example", f"127.attacker.example:{port}", "127.0.0.1.nip.io"):
        status, _headers, body = _request(port, "/api/status", {"Host": host})
        assert status == 421, host
        assert b"balances" not in body and b"system" not in body
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1"):
        assert _request(port, "/api/status", {"Host": host})[0] == 200, host
    assert _request(port, "/api/status", {"Host": "127.0.0.1:99999"})[0] == 421


def test_two_host_headers_are_a_bad_request(db_url: str, start_dashboard: Start) -> None:
    server = start_dashboard(db_url)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("GET", "/api/status", skip_host=True)
        conn.putheader("Host", f"127.0.0.1:{server.port}")
        conn.putheader("Host", "attacker.example")
        conn.endheaders()
        assert conn.getresponse().status == 400
    finally:
        conn.close()


def test_a_non_loopback_bind_address_without_a_token_is_refused(db_url: str) -> None:
    for host in ("0.0.0.0", "192.168.1.5", "127.attacker.example"):
        with pytest.raises(ValueError, match="needs a token"):
            DashboardServer(db_url, host=host, port=0)


# --- the token ---------------------------------------------------------------------------------------


@pytest.fixture
def guarded(db: psycopg.Connection, db_url: str, start_dashboard: Start) -> DashboardServer:
    rows.running_system(db)
    return start_dashboard(db_url, token=Secret(TOKEN))


def test_without_the_token_only_healthz_answers(guarded: DashboardServer) -> None:
    for path in PROTECTED:
        status, headers, body = _request(guarded.port, path)
        assert status == 401, path
        assert headers["www-authenticate"].startswith("Bearer")
        assert b"DASHBOARD_TOKEN" in body and b"KRW" not in body
    assert _request(guarded.port, "/healthz")[0] == 503  # answered: the system is not running
    for wrong in ("Bearer " + TOKEN[:-1], "Bearer " + TOKEN + "x", "Basic " + TOKEN, TOKEN, "Bearer",
                  "Bearer tökén"):
        assert _request(guarded.port, "/api/status", {"Authorization": wrong})[0] == 401, wrong
    assert _request(guarded.port, "/api/status?token=nope")[0] == 401
    assert _request(guarded.port, "/api/status", {"Cookie": f"{COOKIE}={TOKEN}"})[0] == 401  # not the token itself
    assert _request(guarded.port, "/api/status", {"Cookie": "garbage=\"unterminated"})[0] == 401


def test_the_bearer_header_or_the_query_opens_every_route(guarded: DashboardServer) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for path in PROTECTED:
        assert _request(guarded.port, path, bearer)[0] == 200, path
    assert _request(guarded.port, f"/api/status?token={TOKEN}")[0] == 200
    assert _request(guarded.port, f"/metrics?token={TOKEN}")[0] == 200
    # with a token the Host rule is replaced by it: a LAN name or address is fine
    assert _request(guarded.port, "/api/status", {**bearer, "Host": "trader.lan:8765"})[0] == 200
    assert _request(guarded.port, "/api/status", {"Host": "trader.lan:8765"})[0] == 401


def test_the_page_turns_the_query_token_into_a_cookie_and_drops_it_from_the_address(
        guarded: DashboardServer) -> None:
    status, headers, body = _request(guarded.port, f"/?token={TOKEN}&market=KRW-ETH")
    assert status == 303 and body == b""
    assert headers["location"] == "/?market=KRW-ETH"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    value = cookie.split(";", 1)[0]
    for path in PROTECTED:
        assert _request(guarded.port, path, {"Cookie": f"other=1; {value}"})[0] == 200, path


def test_a_token_never_reaches_the_log(guarded: DashboardServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="dashboard.server"):
        _request(guarded.port, f"/?token={TOKEN}")
        _request(guarded.port, f"/api/status?token={TOKEN}")
        _request(guarded.port, "/api/status?token=wrong-guess")
    assert caplog.records, "requests are logged at DEBUG"
    assert TOKEN not in caplog.text and "wrong-guess" not in caplog.text


def test_a_dashboard_bound_to_every_interface_serves_only_with_the_token(db_url: str) -> None:
    server = DashboardServer(db_url, host="0.0.0.0", port=0, token=Secret(TOKEN))  # noqa: S104 - the point
    try:
        server.start()
        assert _request(server.port, "/api/status", {"Host": "192.168.1.5"})[0] == 401
        assert _request(server.port, "/api/status", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    finally:
        server.stop()


def test_in_a_browser_the_token_link_opens_the_page_and_its_fetches(guarded: DashboardServer, page: Any) -> None:
    page.goto(guarded.url)
    assert "needs its token" in page.content()
    page.goto(f"{guarded.url}?token={TOKEN}")
    assert page.url == guarded.url  # the token is gone from the address bar
    page.wait_for_function("() => Number(document.body.dataset.polls) >= 2", timeout=10_000 * MS * 1000)
    assert page.locator("#tree tr[data-node='market']").count() == 1  # /api/status answered the page
    assert TOKEN not in page.content()
