#!/usr/bin/env bash
# The main job on a fresh machine: set up, then build, learn, enrich and explore a generated demo collection.
# Usage: bash scripts/demo.sh [DIR] [--serve]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh" base
DIR="${1:-$ROOT/demo-workspace}"
shift || true
exec iconoscope demo "$DIR" "$@"
