"""The status dashboard: a local, read-only web page, ``/healthz`` and ``/metrics``, served from the database.

Stack, chosen deliberately:

- **Server: the standard library's ``http.server.ThreadingHTTPServer``** — no new dependency and
  nothing to keep patched for a page that serves a handful of GET routes to one operator on
  127.0.0.1. No framework, no ASGI loop next to the actor threads; one background thread accepts,
  one short-lived thread per request. ``prometheus_client`` (already a dependency) renders
  ``/metrics`` from a custom collector in a registry of our own.
- **Reads only PostgreSQL, on its own connections** (read-only transactions, short statement
  timeouts): the page keeps working while nodes are down or restarting, and cannot change
  anything. It never talks to the actors.
- **Page: one static HTML file, hand-written CSS and plain JavaScript, no build step.** It polls
  ``/api/status`` and ``/api/series`` every couple of seconds and builds the DOM with
  ``textContent`` only (no HTML from data). Charts use **uPlot 1.6.32** (MIT, ~50 kB, canvas,
  fetched with ``npm pack uplot`` and committed under ``static/vendor/`` with its licence):
  fast with thousands of 1-second bars, and small enough to read. Nothing is loaded from a CDN;
  the machine may have no internet. The blocked-reasons chart is plain HTML bars.

Use::

    server = DashboardServer(db_url, host="127.0.0.1", port=8765)
    port = server.start()      # background threads; port=0 picks a free port
    ...                        # server.url is http://127.0.0.1:8765/
    server.stop()

Any bind address other than loopback needs ``token=Secret(...)`` (``DASHBOARD_TOKEN``); who may
read what is in ``dashboard.server``'s docstring.
"""

from dashboard.server import DashboardServer

__all__ = ["DashboardServer"]
