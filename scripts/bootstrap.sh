#!/usr/bin/env bash
# Sourced by run.sh and test.sh: make sure .venv exists with the project installed.
# Re-installs only when pyproject.toml changed since the last install (a stamp file remembers).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.installed-pyproject.sha256"

find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
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
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "installing the project and its dependencies into .venv" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  # compat mode: the repository root goes on sys.path, so packages added later need no reinstall
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --config-settings editable_mode=compat \
    -e "$ROOT[test]" >&2
  echo "$want" > "$STAMP"
fi
