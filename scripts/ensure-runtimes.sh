#!/usr/bin/env bash
# What the runtime tests need beside Docker: Podman (with runc: crun refuses hybrid cgroup hosts), a local
# registry server and htpasswd (private-registry tests), and the test image in Podman's store too.
# As root on Debian: installs what is missing with apt-get. Otherwise says what to do.
set -euo pipefail
IMAGE="${TORK_TEST_IMAGE:-tork-ray-test:latest}"

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman runc)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: install ${missing[*]} (Debian packages) for the runtime tests" >&2
    exit 1
  fi
  echo "installing ${missing[*]} ..."
  # policy-rc.d: a package's service (docker-registry) must not start on install; tests start their own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null || {
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  }
fi
# Podman keeps its own image store: copy the test image over from Docker's once.
if ! podman image exists "$IMAGE" 2>/dev/null; then
  docker save "$IMAGE" | podman load -q >/dev/null
  echo "loaded $IMAGE into podman"
fi
