"""The ``geocli`` command: a click group whose subcommands are imported only when run,
so ``geocli --help`` stays fast.

Exit codes: 0 all went well; 1 some items failed (each has an error record); 2 usage or input
error (a one-line message on stderr, no traceback).
"""
from __future__ import annotations

import importlib
import sys

import click

from geocli import __version__
from geocli.errors import GeocliError
from geocli.report.output_file import FULL_DISK_ERRNOS

EXIT_OK, EXIT_ITEMS_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

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


def main(argv=None) -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        code = cli.main(args=argv, prog_name="geocli", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("geocli: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE
    except GeocliError as exc:
        click.echo(f"geocli: error: {' '.join(str(exc).split())}", err=True)  # one line, always
        code = EXIT_USAGE
    except KeyboardInterrupt:
        click.echo("geocli: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno not in FULL_DISK_ERRNOS:
            raise
        click.echo(f"geocli: error: cannot write the results: {exc.strerror or exc}", err=True)
        code = EXIT_USAGE
    sys.exit(code if isinstance(code, int) else EXIT_OK)
