"""The client side of the Upbit exchange layer.

One concept per module: ``rules`` (tick sizes, minimums, fees; pure), ``auth`` (JWT signing;
pure), ``errors`` (our exception types and their classification), ``rate_limit`` (Remaining-Req
parsing and per-group token buckets), ``models`` (typed responses), ``rest`` (``UpbitClient``:
the one place that does HTTP, retries and circuit breaking).
"""
