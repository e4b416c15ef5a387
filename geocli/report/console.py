"""Rich consoles: data to stdout, everything else (logs, warnings, progress) to stderr."""
from __future__ import annotations

import sys
from functools import lru_cache


def stdout_console():
    """The console for data, on whatever ``sys.stdout`` is now (tests and embedders swap it)."""
    return _console(sys.stdout, soft_wrap=False)


def stderr_console():
    return _console(sys.stderr, soft_wrap=True)


@lru_cache(maxsize=8)
def _console(stream, soft_wrap: bool):
    from rich.console import Console

    return Console(file=stream, soft_wrap=soft_wrap)


def log(message: str) -> None:
    """One line for the user on stderr, whatever ``message`` carries from file names or EXIF."""
    from geocli.report.terminal import printable

    print(f"geocli: {printable(message)}", file=sys.stderr, flush=True)
