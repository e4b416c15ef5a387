"""The ``geocli`` command: a click group whose subcommands are imported only when run,
so ``geocli --help`` stays fast.

Exit codes: 0 all went well; 1 some items failed (each has an error record); 2 usage or input
error (a one-line message on stderr, no traceback); 70 an internal error (a bug: one line, and
``GEOCLI_DEBUG=1`` shows its traceback); 130 / 143 interrupted by Ctrl-C / SIGTERM; 141 the
reader of stdout went away (``| head``).
"""
from __future__ import annotations

import importlib
import io
import os
import sys

import click

from geocli.version import __version__
from geocli.errors import GeocliError
from geocli.report.output_file import FULL_DISK_ERRNOS

EXIT_OK, EXIT_ITEMS_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL = 70  # EX_SOFTWARE
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
DEBUG_ENV = "GEOCLI_DEBUG"

# name -> (module, function, one-line help)
COMMANDS = {
    "predict": ("geocli.cli.predict", "predict", "Guess where photos were taken (table, JSON, JSONL, CSV, map)."),
    "train": ("geocli.cli.train", "train", "Train a geolocation model from a manifest or benchmark."),
    "eval": ("geocli.cli.eval", "eval_command", "Score predictions or a model on a benchmark or manifest."),
    "shards": ("geocli.cli.shards", "shards", "Write a dataset as webdataset tar shards (manifest, benchmark, MP-16 msgpack)."),
    "models": ("geocli.cli.models", "models", "List models and recipes, and whether their weights are here."),
    "serve": ("geocli.cli.serve", "serve", "A local web viewer and JSON API: drop photos, see guesses and evidence."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geocli")
def cli():
    """Where was this photo taken? Predict, train and evaluate photo geolocation models."""


class ClosedStdout(io.TextIOBase):
    """Stands in for a closed stdout (``>&-``): writing results there is a usage error, not a crash."""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        from geocli.errors import UsageError

        raise UsageError("stdout is closed: nowhere to write results (name a file with -o)")


def _prepare_streams() -> None:
    """A closed stdout raises a usage error when written; a closed stderr swallows logs (so they
    never land in stdout, which ``print(file=None)`` would do); bytes of non-UTF-8 file names go
    out as they came in."""
    if sys.stdout is None:
        sys.stdout = ClosedStdout()
    elif hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")


def _say(message: str) -> None:
    from geocli.report.terminal import printable

    try:
        print(f"geocli: {printable(' '.join(str(message).split()))}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # stderr itself is gone: the exit code is all that is left


def _show_click_error(exc: click.ClickException) -> None:
    """Click's usage message and hint, with what the user typed escaped like every other output."""
    from geocli.report.terminal import printable

    buf = io.StringIO()
    exc.show(file=buf)
    try:
        for line in buf.getvalue().rstrip("\n").split("\n"):
            print(printable(line), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After a broken pipe: point fd 1 at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def _internal_error(exc: BaseException) -> None:
    where = exc.__traceback__
    while where is not None and where.tb_next is not None:
        where = where.tb_next
    place = f" at {os.path.basename(where.tb_frame.f_code.co_filename)}:{where.tb_lineno}" if where else ""
    _say(f"internal error: {type(exc).__name__}: {exc}{place}; this is a bug in geocli -- "
         f"rerun with {DEBUG_ENV}=1 for the traceback and report it")


def run(argv=None) -> int:
    """Run the CLI and return its exit code; every failure becomes one line on stderr."""
    from geocli.interrupt import interrupted_exit_code

    try:
        code = cli.main(args=argv, prog_name="geocli", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _say("interrupted")
        return interrupted_exit_code()
    except click.ClickException as exc:
        _show_click_error(exc)
        return EXIT_USAGE
    except GeocliError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in FULL_DISK_ERRNOS:
            _say(f"error: cannot write the results: {exc.strerror or exc}")
            return EXIT_USAGE
        if os.environ.get(DEBUG_ENV):
            raise
        _internal_error(exc)
        return EXIT_INTERNAL
    return code if isinstance(code, int) else EXIT_OK


def main(argv=None) -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    _prepare_streams()
    try:
        code = run(argv)
    except SystemExit as exc:  # a command's own sys.exit(...), or click's after a broken pipe
        code = exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
        if isinstance(sys.stdout, click.utils.PacifyFlushWrapper):
            code = EXIT_BROKEN_PIPE
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_BROKEN_PIPE
    except (OSError, ValueError):
        pass
    sys.exit(code)
