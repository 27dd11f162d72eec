"""A finished task's host workspace, removed off the task's clock by one background thread per worker process."""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

# Removing a few files and directories took 2 to 9 ms on an ext4 with online discard: time the result waited
# for although nothing reads the directory any more (the task's processes are dead by then).
BATCH_PAUSE_SECONDS = 0.02


class Discarder:
    """Removes directories in the order given, then calls each one's `then` (the runtime untracks it there: until
    then the worker's reaper still knows it, so a worker that dies first leaves nothing behind either)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Path, Callable[[], None], tuple[str, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def discard(self, path: Path, then: Callable[[], None], likely: tuple[str, ...] = ()) -> None:
        """`likely`: the names the directory most often holds alone (see remove_now)."""
        self._queue.put((path, then, likely))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="tork-discard", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            remove_now(*self._queue.get())
            with contextlib.suppress(queue.Empty):
                while True:
                    remove_now(*self._queue.get_nowait())
            # A busy worker's directories are then removed in batches, the thread woken once a batch: a thread
            # blocked in get() is woken by every put, one switch per task.
            time.sleep(BATCH_PAUSE_SECONDS)


def remove_now(path: Path, then: Callable[[], None], likely: tuple[str, ...] = ()) -> None:
    """Removes `path` and all below it. When it holds only the `likely` names (a shell step's directory holds
    its script alone unless the script wrote output), they are unlinked and the directory removed: two system
    calls, where rmtree's safe walk makes about eight. Unlinking a name never follows it, so whatever the task
    put there is safe to name; anything else there makes rmdir fail, and rmtree removes the rest."""
    try:
        for name in likely:
            with contextlib.suppress(OSError):
                os.unlink(path / name)
        try:
            os.rmdir(path)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
    finally:
        then()


@functools.cache
def discarder() -> Discarder:
    """One per process, started with the first directory it is given."""
    return Discarder()
