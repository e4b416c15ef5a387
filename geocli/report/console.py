"""Rich consoles: data to stdout, everything else (logs, warnings, progress) to stderr."""
from __future__ import annotations

import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def stdout_console():
    from rich.console import Console

    return Console(file=sys.stdout, soft_wrap=False)


@lru_cache(maxsize=1)
def stderr_console():
    from rich.console import Console

    return Console(file=sys.stderr, soft_wrap=True)


def log(message: str) -> None:
    """One line for the user on stderr."""
    print(f"geocli: {message}", file=sys.stderr, flush=True)
