#!/usr/bin/env bash
# Refresh requirements.lock from the ranges in pyproject.toml (the project's dependencies and its
# `test` extra), with the sha256 of every file PyPI serves for each pinned version.
#
#   bash scripts/lock.sh                      # add what pyproject.toml gained; keep every other pin
#   bash scripts/lock.sh --upgrade            # move every pin to the newest version the ranges allow
#   bash scripts/lock.sh --upgrade-package psycopg   # move one
#
# Extra arguments go to pip-compile. The index is PyPI unless LOCK_INDEX_URL names a mirror.
# pip-tools runs from its own throwaway venv (.venv-lock/), pinned here so the lock's format does
# not change with whatever pip-tools is newest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK_VENV="$ROOT/.venv-lock"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x "$LOCK_VENV/bin/pip-compile" ]; then
  "$PY" -m venv "$LOCK_VENV"
  "$LOCK_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "pip==26.3" "pip-tools==7.7.0"
fi
cd "$ROOT"
# no local find-links or extra indexes: the hashes must be the ones any machine will download
PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= \
  "$LOCK_VENV/bin/pip-compile" --quiet --extra test --generate-hashes --allow-unsafe --strip-extras \
  --no-emit-index-url --index-url "${LOCK_INDEX_URL:-https://pypi.org/simple}" \
  --output-file requirements.lock "$@" pyproject.toml
echo "requirements.lock refreshed; run bash scripts/test.sh to install and test it" >&2
