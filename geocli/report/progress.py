"""Progress for long runs (predict, eval, shards): a live bar on stderr, and a one-line summary.

The bar (tqdm) shows only where a person watches: when stderr is a terminal, or when the user asks
(``--progress``); ``--no-progress`` turns it off. The summary line (items, failures, time) is a
log line and is always written, so a script's stderr also says what happened.

    with RunProgress("photos", total=len(paths), enabled=progress) as progress:
        for record in records:
            progress.advance(ok=record["ok"])
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import IO, Iterator

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
    """Counts finished items (and failures) of a run; draws a tqdm bar on stderr when enabled."""

    def __init__(self, noun: str, total: int | None = None, enabled: bool | None = None,
                 stream: IO[str] | None = None, summary: bool = True) -> None:
        self.noun, self.total, self.summary = noun, total, summary
        self.stream = stream or sys.stderr
        self.enabled = progress_wanted(enabled, self.stream)
        self.done = self.failed = 0
        self._bar = None
        self._start = time.perf_counter()

    def __enter__(self) -> "RunProgress":
        self._start = time.perf_counter()
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.noun, unit="", file=self.stream, leave=False,
                             dynamic_ncols=True, postfix={"failed": 0}, mininterval=0.2)
        return self

    def advance(self, n: int = 1, ok: bool = True) -> None:
        """``n`` more items finished; ``ok=False`` counts them as failures."""
        self.done += n
        self.failed += 0 if ok else n
        if self._bar is not None:
            self._bar.set_postfix(failed=self.failed, refresh=False)
            self._bar.update(n)

    def log(self, message: str) -> None:
        """A log line on stderr that leaves the bar whole (the bar redraws below it)."""
        line = f"geocli: {message}"
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    @contextlib.contextmanager
    def writing(self, out: IO[str] | None = None) -> Iterator[None]:
        """Around a write of results to ``out`` (stdout): where it shares the terminal with the bar,
        the bar steps aside so the results stay whole; the results still go to ``out``."""
        out = out or sys.stdout
        if self._bar is None or not _isatty(out):
            yield
            return
        from tqdm import tqdm

        with tqdm.external_write_mode(file=out):
            yield

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        if self.summary and self.done:
            print(f"geocli: {summary_line(self.noun, self.done, self.failed, self.seconds)}",
                  file=self.stream, flush=True)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def step_bar(enabled: bool, total: int, desc: str):
    """A plain tqdm bar on stderr for one stage of a training run (an epoch, encoding a cache);
    drawn only when ``enabled`` and there is something to count, gone once the stage ends."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not enabled or total == 0, leave=False)
