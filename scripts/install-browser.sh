#!/usr/bin/env bash
# The browser tests drive the machine's Chromium (Debian's `chromium` package); no browser is ever downloaded by
# a test tool. Installs the package when it is missing. CHROMIUM_PATH names another Chromium binary.
# They also run axe-core (the accessibility engine, from npm, at the version pinned here) in each page they
# check: installed under .local/axe-core when missing, with Debian's `npm` if npm itself is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
browser="${CHROMIUM_PATH:-/usr/bin/chromium}"
AXE_CORE_VERSION=4.11.0
axe_dir=.local/axe-core
axe="$axe_dir/node_modules/axe-core/axe.min.js"

as_root=()
need_root() {
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo)
  else
    echo "[rems] $1 is missing: install it with 'sudo apt-get install $2' (the browser tests need it)" >&2
    exit 1
  fi
}
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

if [ ! -x "$browser" ]; then
  need_root "$browser" chromium
  echo "[rems] installing Chromium from the system packages (for the browser tests)"
  apt_install chromium
  [ -x "$browser" ] || { echo "[rems] Chromium did not install at $browser" >&2; exit 1; }
fi

installed=$(node -p "require('./$axe_dir/node_modules/axe-core/package.json').version" 2>/dev/null || true)
if [ ! -f "$axe" ] || [ "$installed" != "$AXE_CORE_VERSION" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    need_root npm npm
    echo "[rems] installing npm from the system packages (for axe-core)"
    apt_install npm
  fi
  echo "[rems] installing axe-core $AXE_CORE_VERSION from npm into $axe_dir (for the accessibility checks)"
  mkdir -p "$axe_dir"
  npm install --prefix "$axe_dir" --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
    "axe-core@$AXE_CORE_VERSION" >/dev/null
  [ -f "$axe" ] || { echo "[rems] axe-core did not install at $axe" >&2; exit 1; }
fi
