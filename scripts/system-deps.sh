#!/usr/bin/env bash
# Debian packages the browser and scale-out tests need: Chromium (+driver) and Virtuoso.
# Installs only what is missing; needs root (as on CI and the dev machines).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
command -v virtuoso-t >/dev/null 2>&1 || need+=(virtuoso-opensource)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ]; then echo "[setup] not root: cannot install ${need[*]}" >&2; exit 1; fi
echo "[setup] apt-get install ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
