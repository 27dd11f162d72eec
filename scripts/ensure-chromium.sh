#!/usr/bin/env bash
# Makes sure Debian's chromium is installed: the web UI's browser tests (tests/ui/) drive it headless through
# Playwright (from PyPI, pointed at /usr/bin/chromium: Playwright's own browser download is never used).
set -euo pipefail

have() { [ -x /usr/bin/chromium ]; }

have && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "error: chromium is needed for the web UI's browser tests: apt-get install chromium (as root)" >&2
  exit 1
fi
echo "installing Debian's chromium ..."
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium >/dev/null 2>&1 ||
  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
have || { echo "error: chromium did not install" >&2; exit 1; }
