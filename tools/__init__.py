"""``tools``: the operator's tools, each a ``python -m supervisor`` subcommand.

``ctl`` (status and durable control commands), ``drill`` (resilience drills), ``preflight`` (the
checks before real money), ``smoke`` (did every paper trade get its order attempt?),
``watchdog`` (the alert a dead process cannot send) and ``record`` (a capture of the live stream).
"""
