#!/usr/bin/env bash
# The web UI's two JavaScript libraries, fetched from the npm registry with npm (pinned versions, checked
# against the registry's integrity by npm itself) into tork_ray/ui/static/vendor/ (gitignored). The engine
# serves them itself: nothing comes from a CDN at run time, the UI works offline. Run by `make venv`.
set -euo pipefail

HTMX=htmx.org@2.0.11          # htmx 2: server-rendered fragments swapped into the page
HTMX_SSE=htmx-ext-sse@2.2.4   # its server-sent-events extension (peer: htmx.org ^2.0.2)
DEST="$(cd "$(dirname "$0")/.." && pwd)/tork_ray/ui/static/vendor"
STAMP="$DEST/.versions"

[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HTMX $HTMX_SSE" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: npm is needed to fetch the web UI's assets: apt-get install npm (as root)" >&2
    exit 1
  fi
  echo "installing Debian's npm ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q npm >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q npm >/dev/null; }
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "$HTMX" "$HTMX_SSE" >/dev/null)
mkdir -p "$DEST"
tar -xzf "$WORK"/htmx.org-*.tgz -C "$WORK" package/dist/htmx.min.js package/LICENSE
cp "$WORK/package/dist/htmx.min.js" "$DEST/htmx.min.js"
cp "$WORK/package/LICENSE" "$DEST/htmx.LICENSE"
rm -rf "$WORK/package"
tar -xzf "$WORK"/htmx-ext-sse-*.tgz -C "$WORK" package/dist/sse.min.js
cp "$WORK/package/dist/sse.min.js" "$DEST/sse.min.js"
echo "$HTMX $HTMX_SSE" >"$STAMP"
echo "web UI assets: $HTMX $HTMX_SSE in $DEST"
