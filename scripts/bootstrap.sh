#!/usr/bin/env bash
# Sourced by run.sh and test.sh: make sure .venv exists with the locked dependencies installed.
#
# Installs exactly what requirements.lock pins (every direct and transitive dependency, each with
# its sha256 hashes), so every fresh machine gets the versions CI tested. pyproject.toml keeps the
# compatible ranges; `bash scripts/lock.sh` turns them into the lock. Re-installs only when the
# lock changed since the last install (a stamp file remembers). The project itself is not built:
# a .pth file puts the repository root on the venv's sys.path, so no build backend is fetched and
# packages added later need no reinstall.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
LOCK="$ROOT/requirements.lock"
STAMP="$VENV/.installed-lock.sha256"

find_python() {
  # 3.11 first: the lock was resolved and tested on it
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PY="$(find_python)"
  echo "creating virtualenv in .venv with $PY" >&2
  "$PY" -m venv "$VENV"
fi
want="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "installing the locked dependencies (requirements.lock) into .venv" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r "$LOCK" >&2
  "$VENV/bin/python" - "$ROOT" <<'PY'
import pathlib, sys, sysconfig
pathlib.Path(sysconfig.get_paths()["purelib"], "upbit_trader.pth").write_text(sys.argv[1] + "\n")
PY
  echo "$want" > "$STAMP"
fi
