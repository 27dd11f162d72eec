"""One lock between writing a file that a process will execute and starting a process, in a worker that runs
several tasks at once on threads (`worker.executor = "node"`).

Linux refuses to execute a file that any process holds open for writing (ETXTBSY, "Text file busy"). A fork
copies every descriptor of the parent, and the child holds them until its exec closes them (they are
close-on-exec). So when one thread forks while another is writing a step's script, the new child briefly holds
that script open for writing, and the script's own exec fails if it comes in that window: the task failed with
exit status 126, about one task in 200 with four threads (a test reproduces it). Writing such a file and
starting a process therefore take this lock: Popen returns once its child has exec'd, so no child started under
the lock still holds a descriptor afterwards."""

from __future__ import annotations

import threading

SPAWN_LOCK = threading.Lock()
