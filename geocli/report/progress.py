"""Progress for long runs (predict, eval, shards): a live bar on stderr, and a one-line summary.

The bar shows only where a person watches: when stderr is a terminal, or when the user asks
(``--progress``); ``--no-progress`` turns it off. The summary line (items, failures, time) is a
log line and is always written, so a script's stderr also says what happened.

    with RunProgress("photos", total=len(paths), enabled=progress) as progress:
        for record in records:
            progress.advance(ok=record["ok"])
"""
from __future__ import annotations

import sys
import time
from typing import IO

import click

#: The ``--progress/--no-progress`` flag every long-running command takes (None: only on a terminal).
progress_option = click.option(
    "--progress/--no-progress", "progress", default=None,
    help="Show a progress bar on stderr (default: only when stderr is a terminal).",
)


def progress_wanted(flag: bool | None, stream: IO[str] | None = None) -> bool:
    """The user's ``--progress/--no-progress`` choice, else whether ``stream`` (stderr) is a terminal."""
    if flag is not None:
        return flag
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or file-like without isatty
        return False


def summary_line(noun: str, done: int, failed: int, seconds: float) -> str:
    """``12 photos, 1 failed, 4.2 s (2.9/s)``: what a run did, for the log."""
    rate = f" ({done / seconds:.1f}/s)" if seconds > 0 and done else ""
    return f"{done} {noun}, {failed} failed, {seconds:.1f} s{rate}"


class RunProgress:
    """Counts finished items (and failures) of a run; draws a rich bar on stderr when enabled."""

    def __init__(self, noun: str, total: int | None = None, enabled: bool | None = None,
                 stream: IO[str] | None = None, summary: bool = True) -> None:
        self.noun, self.total, self.summary = noun, total, summary
        self.stream = stream or sys.stderr
        self.enabled = progress_wanted(enabled, self.stream)
        self.done = self.failed = 0
        self._bar = self._task = None
        self._start = time.perf_counter()

    def __enter__(self) -> "RunProgress":
        self._start = time.perf_counter()
        if self.enabled:
            self._bar = _rich_bar(self.stream)
            self._bar.start()
            self._task = self._bar.add_task(self.noun, total=self.total, failed=0)
        return self

    def advance(self, n: int = 1, ok: bool = True) -> None:
        """``n`` more items finished; ``ok=False`` counts them as failures."""
        self.done += n
        self.failed += 0 if ok else n
        if self._bar is not None:
            self._bar.update(self._task, advance=n, failed=self.failed)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self.summary and self.done:
            print(f"geocli: {summary_line(self.noun, self.done, self.failed, self.seconds)}",
                  file=self.stream, flush=True)


def _rich_bar(stream: IO[str]):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    console = Console(file=stream, force_terminal=True if not _isatty(stream) else None)
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    )


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
