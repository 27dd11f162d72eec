#!/usr/bin/env bash
# `ray up` for real on this one machine: an sshd per "host" on loopback (head 127.0.0.1, worker 127.0.0.2), key
# auth with a key made here, a PostgreSQL server of its own on the head's address as the store, `ray up -y` with a
# cluster yaml made from cluster.yaml, a job over HTTP to the head's API that runs on the worker (its result read
# back from PostgreSQL), `ray down -y`. Everything runs in new network and PID namespaces (as root), so the
# `ray stop` that cluster.yaml and `ray down` run sees and kills only this cluster's processes, never another Ray
# on this host, and its ports are its own (each "host" also has a PID namespace of its own, inside). Prints the steps with times; the last line is a JSON report.
#   scripts/ray-up-check.sh [VENV]     (VENV: default ./.venv; TORK_TEST_IMAGE: the task's image)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$(cd "${1:-$ROOT/.venv}" && pwd)"
[ "$(id -u)" = 0 ] || { echo "error: the ray up check needs root (namespaces, sshd on port 22)" >&2; exit 1; }
"$ROOT/scripts/ensure-sshd.sh"
WORK="$(mktemp -d /tmp/tork-rayup.XXXXXX)"
ssh-keygen -q -t ed25519 -N '' -C tork-ray-check -f "$WORK/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C tork-ray-check-host -f "$WORK/host_key"
cp "$WORK/id_ed25519.pub" "$WORK/authorized_keys"
status=0
# --kill-child: if this script is killed, the namespace's first process goes too, and with it all the rest.
unshare --net --pid --fork --mount-proc --kill-child \
  "$VENV/bin/python" "$ROOT/scripts/ray_up_check.py" "$WORK" "$VENV" || status=$?
[ "$status" = 0 ] && rm -rf "$WORK" || echo "logs kept in $WORK (sshd-*.log, */t/ray/session_latest/logs)" >&2
exit "$status"
