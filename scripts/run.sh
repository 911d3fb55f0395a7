#!/usr/bin/env bash
# Run the system: creates .venv if missing, installs, then `python -m supervisor "$@"`.
# With no arguments and no configuration this is the sandbox (recorded Upbit data, paper, shadow).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m supervisor "$@"
