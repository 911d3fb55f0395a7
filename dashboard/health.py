"""``/healthz``: healthy means the root and every node run and the feed delivers.

Pure: it judges the tree (``dashboard.tree``) and the feed (``dashboard.market``) already read
from one database snapshot. Healthy (HTTP 200) requires all of:

- the system lock is held and the root's heartbeat is fresh (root ``running``);
- at least one node is registered and every node is ``running`` (not down, restarting,
  unresponsive or unknown);
- the feed stored a bar within ``feed_stale_s``, or it is a replay that reached the end of its
  recording — then the answer is still 200 and says so in ``feed``.

Anything else is 503 with ``reason`` (the first problem) and ``reasons`` (all of them). When the
root is not running, node and feed problems follow from that and are not listed again.
"""

from __future__ import annotations

from typing import Any


def evaluate(tree: dict[str, Any], feed: dict[str, Any]) -> dict[str, Any]:
    """The health verdict for one snapshot."""
    root = tree["root"]
    reasons: list[str] = []
    if root["state"] != "running":
        reasons.append(f"root {root['state']}: {root['why']}")
    else:
        if not tree["nodes"]:
            reasons.append("no node is registered yet")
        reasons.extend(f"node {n['node']} {n['state']}: {n['why']}" for n in tree["nodes"] if n["state"] != "running")
        if feed["state"] not in {"flowing", "finished"}:
            reasons.append(f"feed {feed['state']}: {feed['why']}")
    ok = not reasons
    if ok:
        summary = ("healthy; " + feed["why"]) if feed["state"] == "finished" else "healthy"
    else:
        summary = reasons[0]
    return {
        "ok": ok,
        "status": 200 if ok else 503,
        "reason": summary,
        "reasons": reasons,
        "checks": {
            "database": "ok",
            "system_lock": root["lock_held"],
            "root": root["state"],
            "nodes": {n["node"]: n["state"] for n in tree["nodes"]},
            "feed": {"state": feed["state"], "kind": feed["kind"], "why": feed["why"],
                     "last_write_age_s": feed["last_write_age_s"]},
        },
    }


def database_down(error: str) -> dict[str, Any]:
    """The verdict when the dashboard cannot read the database at all."""
    reason = f"database unreachable: {error}"
    return {"ok": False, "status": 503, "reason": reason, "reasons": [reason],
            "checks": {"database": error}}
