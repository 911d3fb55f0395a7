#!/usr/bin/env bash
# The "latest" check: install the NEWEST versions pyproject.toml's ranges allow (ignoring the lock)
# into .venv-latest/, list how they differ from requirements.lock, and run a fast subset of the
# suite against them. It warns, it never fails: a release that breaks us shows up here, in CI,
# before it breaks a fresh `pip install .` — and the lock keeps README's commands on tested versions.
#
#   bash scripts/latest-check.sh            # exit 0 always; "WARNING: drift …" lines when it found any
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-latest"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
# the subset: the packages whose tests exercise every third-party library at its API surface
SUBSET=(tests/persistence tests/market/test_bar_storage.py tests/market/test_upbit_ws.py tests/exchange
        tests/config tests/actors/test_base.py tests/upbit_sim/test_ccxt_fidelity.py)

warn() { echo "WARNING: latest check: $*" >&2; }

rm -rf "$VENV"
if ! "$PY" -m venv "$VENV"; then warn "could not create $VENV"; exit 0; fi
mapfile -t specs < <("$VENV/bin/python" - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(*project["dependencies"], *project["optional-dependencies"]["test"], sep="\n")
PY
)
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "${specs[@]}" >/dev/null 2>&1; then
  warn "pip could not install the newest versions the ranges allow (offline? a release without wheels?)"
  exit 0
fi
"$VENV/bin/python" -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "upbit_trader.pth").write_text(sys.argv[1])' "$ROOT"

drift="$("$VENV/bin/python" - "$ROOT/requirements.lock" <<'PY'
import re, sys
from importlib import metadata
locked = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", open(sys.argv[1]).read(), re.M))
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
locked = {norm(k): v for k, v in locked.items()}
for dist in sorted(metadata.distributions(), key=lambda d: norm(d.metadata["Name"])):
    name = norm(dist.metadata["Name"])
    if name in locked and locked[name] != dist.version:
        print(f"  {name}: locked {locked[name]}, newest allowed {dist.version}")
PY
)"
if [ -n "$drift" ]; then
  echo "latest check: the newest versions the ranges allow differ from the lock:" >&2
  echo "$drift" >&2
else
  echo "latest check: the lock is at the newest versions the ranges allow" >&2
fi
cd "$ROOT"
if "$VENV/bin/python" -m pytest -q -x -p no:cacheprovider "${SUBSET[@]}" > "$VENV/pytest.log" 2>&1; then
  echo "latest check: the subset passes on the newest versions ($(tail -1 "$VENV/pytest.log"))" >&2
else
  warn "drift: the subset FAILS on the newest versions the ranges allow — a fresh 'pip install .' would"
  warn "get a broken system; pin the range in pyproject.toml or fix the code, then bash scripts/lock.sh."
  tail -40 "$VENV/pytest.log" | sed 's/^/  | /' >&2
fi
exit 0
