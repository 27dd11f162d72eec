#!/usr/bin/env bash
# Makes sure a Docker engine answers. As root on Debian with none answering: installs Debian's docker.io
# and starts dockerd in the background. Otherwise says what to do.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: no Docker engine answers. Start one (e.g. 'sudo systemctl start docker')," >&2
  echo "       and make sure this user may use it (e.g. 'sudo usermod -aG docker $USER')." >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no Docker engine and no apt-get to install one: install Docker, then retry." >&2
    exit 1
  fi
  echo "installing Debian's docker.io ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd in the background (log: /var/log/tork-ray-dockerd.log) ..."
  nohup dockerd >/var/log/tork-ray-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 0.5
  done
  echo "error: dockerd did not answer within 30 s; see /var/log/tork-ray-dockerd.log" >&2
  exit 1
fi
