"""LISTEN/NOTIFY channel names: a cross-process nudge that new rows are waiting.

A notification is only a wake-up call. Consumers always read the table itself (by cursor or by
status), so a notification that is lost while a process is down loses nothing.
"""

PAPER_TRADES = "paper_trades"
ALERTS = "alerts"
CONTROL = "control"
