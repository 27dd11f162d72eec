#!/usr/bin/env bash
# Builds the test image from Debian's busybox-static with `docker import` (no registry is reachable here),
# and gives it the local tags the examples use (ubuntu:mantic, alpine:latest, ...), unless those exist.
set -euo pipefail
IMAGE="${TORK_TEST_IMAGE:-tork-ray-test:latest}"
ALIASES=(ubuntu:mantic ubuntu:latest alpine:latest alpine:3.18 busybox:latest)

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  # Debian's busybox-static provides /bin/busybox linked statically, so it runs in an empty image.
  if ! dpkg -s busybox-static >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
    else
      echo "error: a static busybox is needed: install Debian's busybox-static (apt-get install busybox-static)" >&2
      exit 1
    fi
  fi
  busybox=/bin/busybox
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,root,var/tmp,proc,sys,dev}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cp "$busybox" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf /bin/busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
  echo "built $IMAGE"
fi
for alias in "${ALIASES[@]}"; do
  docker image inspect "$alias" >/dev/null 2>&1 || docker tag "$IMAGE" "$alias"
done
