"""Ctrl-C that lets the current item finish: the first SIGINT sets a flag that the loop checks
between items (so no record is cut in half); a second one interrupts at once."""
from __future__ import annotations

import signal
import threading


class GracefulInterrupt:
    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
