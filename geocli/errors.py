"""Errors a user can act on. Each carries a one-line message; the CLI prints it without a traceback."""
from __future__ import annotations


class GeocliError(Exception):
    """Base class: a problem the user can fix (bad input, missing file, missing weights)."""


class UsageError(GeocliError):
    """Arguments that cannot work together or values out of range."""


class DatasetNotFoundError(GeocliError):
    """A dataset file or folder is missing; the message names the path and the fix."""


class ManifestError(GeocliError):
    """A manifest or metadata CSV is malformed; the message names the row and the problem."""


class WeightsNotFoundError(GeocliError):
    """Model weights cannot be had (offline, missing file); the message says how to supply them."""


class MissingDependencyError(GeocliError):
    """An optional dependency is not installed; the message carries the install hint."""


def require(module: str, extra: str, package: str | None = None):
    """Import an optional dependency, or raise with the pip command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pkg = package or module
        raise MissingDependencyError(
            f"{pkg} is not installed ({exc}); install it with: pip install 'geocli[{extra}]'"
        ) from None
