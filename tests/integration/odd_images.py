"""Small images that the test image's layout does not cover, made from the host's static busybox with
`docker import` / `podman import` (no registry is reachable here); made once, kept for later runs."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

# No /bin/sh at all: one static busybox named /bin/echo (busybox picks its applet from argv[0]).
NO_SHELL = "tork-ray-test-nosh:latest"
# /bin is a symlink to usr/bin and /usr/bin/sh a relative one to busybox, as in merged-/usr distributions.
MERGED_USR = "tork-ray-test-usrmerge:latest"


def busybox() -> bytes:
    found = shutil.which("busybox") or "/bin/busybox"
    return Path(found).read_bytes()  # Debian's busybox-static (scripts/build-test-image.sh installs it)


def _tar(files: dict[str, bytes], links: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in sorted({str(Path(path).parent) for path in files} - {"."}):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for path, target in links.items():
            info = tarfile.TarInfo(path)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def layout(image: str) -> bytes:
    box = busybox()
    if image == NO_SHELL:
        return _tar({"bin/echo": box, "tmp/.keep": b""}, {})
    applets = {f"usr/bin/{name}": "busybox" for name in ("sh", "echo", "env")}
    return _tar({"usr/bin/busybox": box, "tmp/.keep": b""}, {"bin": "usr/bin", **applets})


def ensure(engine: str, image: str) -> str:
    """Makes `image` in `engine` ("docker" or "podman") unless it is there; returns its name."""
    if subprocess.run([engine, "image", "inspect", image], capture_output=True, check=False).returncode != 0:
        changes = ["--change", "ENV PATH=/usr/bin:/bin"]
        subprocess.run([engine, "import", *changes, "-", image], input=layout(image), capture_output=True, check=True)
    return image
