#!/usr/bin/env bash
# The test suite on a fresh machine: set up (Python deps, Chromium, Virtuoso), lint, then pytest.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh" dev
bash "$ROOT/scripts/system-deps.sh" || echo "[setup] system packages unavailable: browser/Virtuoso tests will skip" >&2
cd "$ROOT"
ruff check src tests bench examples
set +e
python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when no test ran: that is a failure for us.
if [ "$rc" -eq 5 ]; then echo "no test ran" >&2; exit 1; fi
exit "$rc"
