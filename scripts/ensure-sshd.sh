#!/usr/bin/env bash
# Makes sure the pieces `ray up` needs over SSH are installed: Debian's openssh-server (sshd), the ssh client and
# rsync (Ray copies its bootstrap files with it). Installs only: no system sshd is started or enabled here —
# scripts/ray-up-check.sh runs its own sshd, with its own config and keys, inside its own namespaces.
set -euo pipefail

have() { [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null 2>&1 && command -v rsync >/dev/null 2>&1; }

have && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "error: sshd, ssh and rsync are needed for the ray up check: apt-get install openssh-server rsync (as root)" >&2
  exit 1
fi
echo "installing Debian's openssh-server and rsync ..."
export DEBIAN_FRONTEND=noninteractive
# The package's scripts must not start a system-wide sshd (listening on every address): deny service starts
# for the duration of the install, unless a policy is in place already.
POLICY=/usr/sbin/policy-rc.d
OURS=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod +x "$POLICY" && OURS=1
fi
trap '[ -n "$OURS" ] && rm -f "$POLICY"' EXIT
apt-get install -y -q openssh-server openssh-client rsync >/dev/null 2>&1 ||
  { apt-get update -q >/dev/null && apt-get install -y -q openssh-server openssh-client rsync >/dev/null; }
have || { echo "error: openssh-server/rsync did not install" >&2; exit 1; }
