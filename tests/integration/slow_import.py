"""A module interrupted half-way through its own import, as Ray's cancel interrupts a worker (see
test_cancel_flag.py): `_thread.interrupt_main` is what Ray calls, and it runs the SIGINT handler in the main thread
whatever the process's signal mask."""

import _thread
import time

_thread.interrupt_main()
time.sleep(0.05)  # the handler runs at the next bytecode boundary: within the import
COMPLETED = True
