#!/usr/bin/env bash
# Run the test suite: creates .venv if missing, installs, then pytest (embedded PostgreSQL unless
# TEST_DATABASE_URL is set). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
