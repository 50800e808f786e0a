#!/usr/bin/env bash
# Here, before a GPU run (docs/gpu.md): copy what the device machine needs into .gpu/ (ignored by git, carried by
# the device tool): the pomological sheets, the Iconclass files and the MobileNetV2 weights from ../shared/data, and
# the one package its image lacks (pyoxigraph) as a Python 3.12 wheel. About 54 MB: with the repo (about 5 MB), under
# the tool's 64 MiB.
# Usage: bash scripts/gpu_prepare.sh [DATA_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${1:-${ICONOSCOPE_DATA:-$ROOT/../shared/data}}"
cd "$ROOT"
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
[ -f "$DATA/pomological/records.csv" ] || { echo "no pomological data at $DATA" >&2; exit 1; }
mkdir -p .gpu/data/weights .gpu/whl
rm -rf .gpu/data/pomological .gpu/data/iconclass .gpu/data/weights/mobilenet_v2_quantized_torchscript
cp -r "$DATA/pomological" .gpu/data/pomological
cp -r "$DATA/iconclass" .gpu/data/iconclass  # the example config loads it as a vocabulary
cp -r "$DATA/weights/mobilenet_v2_quantized_torchscript" .gpu/data/weights/
PY="${PYTHON:-$ROOT/.venv/bin/python}"
VERSION="$("$PY" -c 'import importlib.metadata as m; print(m.version("pyoxigraph"))')"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/whl "pyoxigraph==$VERSION"
du -sh .gpu
