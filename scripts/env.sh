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
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-${1:-base}"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
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
