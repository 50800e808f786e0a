#!/usr/bin/env bash
# Creates (or reuses) ./.venv and installs Iconoscope with everything it needs.
# Sourced by scripts/demo.sh and scripts/test.sh; re-installs only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ICONOSCOPE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtualenv $VENV" >&2
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.install-stamp"
HASH="$(sha256sum < "$ROOT/pyproject.toml" | cut -c1-16)"
WANT="$HASH-${1:-base}"
HAVE="$(cat "$STAMP" 2>/dev/null || true)"
# a dev install (tests) holds everything the base one (demo) needs: only install when something is missing
if [ "$HAVE" != "$WANT" ] && [ "$HAVE" != "$HASH-dev" ]; then
  echo "[setup] installing iconoscope and its dependencies into $VENV (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip wheel
  # torch==2.13.0 is pinned in pyproject.toml: pip takes the CPU build from the local wheel folder.
  EXTRAS=""
  [ "${1:-base}" = "dev" ] && EXTRAS="[dev]"
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT$EXTRAS"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
