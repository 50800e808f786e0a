#!/usr/bin/env bash
# On the device machine (docs/gpu.md), from the repo root, with .gpu/ carried: run pomological rows of
# bench/learn_pomological.py (default: row n, MobileNetV2 fine-tuned end to end, device = "auto" -> CUDA) with the
# checkout on PYTHONPATH (nothing installed: the machine has no network; its image has torch and the rest).
# Results: $OUT/learn_pomological.json and the log. Usage: bash scripts/gpu_run.sh [ROWS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROWS="${1:-genera_mnv2_finetune_full}"
OUT="${OUT:-/tmp/gpu-out}"
WORK="${WORK:-/tmp/iconoscope-learn-pom}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
if ! "$PY" -c 'import pyoxigraph' 2>/dev/null; then  # the carried wheel, where the image lacks it
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
fi
export PYTHONPATH="/tmp/site:$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# 16 cores there: decoding, augmentation on the CPU side and scoring may use several threads
export ICONOSCOPE_THREADS="${ICONOSCOPE_THREADS:-8}"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
set -o pipefail
"$PY" bench/learn_pomological.py --data .gpu/data --work "$WORK" --rows "$ROWS" \
  --out "$OUT/learn_pomological.json" 2>&1 | grep -v -i "quantiz" | tee "$OUT/log.txt"
