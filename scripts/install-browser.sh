#!/usr/bin/env bash
# The browser tests drive the machine's Chromium (Debian's `chromium` package); no browser is ever downloaded by
# a test tool. Installs the package when it is missing. CHROMIUM_PATH names another Chromium binary.
set -euo pipefail
browser="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$browser" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  echo "[rems] $browser is missing: install Chromium with 'sudo apt-get install chromium' (the browser tests need it)" >&2
  exit 1
fi
echo "[rems] installing Chromium from the system packages (for the browser tests)"
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
[ -x "$browser" ] || { echo "[rems] Chromium did not install at $browser" >&2; exit 1; }
