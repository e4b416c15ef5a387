"""Ctrl-C (SIGINT) or SIGTERM that lets the current item finish: the first signal sets a flag
that the loop checks between items (so no record is cut in half and a JSON array is closed); a
second one interrupts at once. ``exit_code`` is what a shell expects: 128 + the signal's number."""
from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: The last signal a ``GracefulInterrupt`` caught in this process (the CLI's exit code reads it).
last_signal: int | None = None


def interrupted_exit_code() -> int:
    """128 + the signal that stopped the run (SIGINT when none was caught: a plain Ctrl-C)."""
    return 128 + (last_signal or signal.SIGINT)


class GracefulInterrupt:
    def __init__(self):
        self.requested = False
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal_number or signal.SIGINT)

    def _handler(self, signum, frame):
        global last_signal
        last_signal = signum
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_number = signum

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handler) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        self._previous = {}
