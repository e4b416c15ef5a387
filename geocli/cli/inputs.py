"""Turning what the user typed (files, folders, globs, ``-`` for stdin) into image paths.

A path named on the command line must exist (else a usage error, raised before any work);
existing files are always attempted (a broken one becomes an error record), as are paths read
from stdin, present or not; inside folders only names with image extensions are taken. Symlink
loops are not followed, duplicates are dropped (first occurrence kept) and every skip is
reported through ``log``. A glob's ``**`` matches any number of folders, the top one included,
as bash's ``globstar`` does, with or without ``--recursive`` (which is about named folders).
"""
from __future__ import annotations

import glob
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator

from geocli.errors import UsageError
from geocli.images import is_image_path

Log = Callable[[str], None]


def _stdin_paths(stream) -> Iterator[str]:
    for line in stream:
        line = line.rstrip("\r\n")
        if line:
            yield line


def _not_a_folder(entry: os.DirEntry) -> bool:
    """Files, and links that lead nowhere (loops, dangling): the image loader says what is wrong."""
    try:
        return not entry.is_dir()
    except OSError:
        return True


def _walk_folder(folder: Path, recursive: bool, log: Log) -> Iterator[str]:
    if not recursive:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
        yield from (e.path for e in entries if is_image_path(e.name) and _not_a_folder(e))
        return
    seen_dirs = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen_dirs:
            log(f"skipped {root}: a symlink loop back to {real}")
            dirs[:] = []
            continue
        seen_dirs.add(real)
        dirs.sort()
        yield from (os.path.join(root, f) for f in sorted(files) if is_image_path(f))


def _expand_one(arg: str, recursive: bool, log: Log) -> Iterator[str]:
    from geocli.datasets.shards import is_shard_spec, shard_images

    path = Path(arg)
    if is_shard_spec(arg):  # webdataset shards: their photos, named as when they were written
        yield from shard_images(arg)
    elif os.path.isdir(path):
        found = list(_walk_folder(path, recursive, log))
        if not found:
            hint = "" if recursive else " (use --recursive for subfolders)"
            log(f"no images in folder {arg}{hint}")
        yield from found
    elif not os.path.lexists(path) and glob.has_magic(arg):
        matches = sorted(glob.glob(arg, recursive=True))
        if not matches:
            log(f"no files match {arg}")
        for m in matches:
            yield from _expand_one(m, recursive, log) if os.path.isdir(m) else [m]
    else:
        yield arg  # a file, or a missing path that becomes an error record


def expand_inputs(args: Iterable[str], recursive: bool = False, log: Log = print, stdin=None) -> Iterator[str]:
    """Image paths from command-line arguments, in order, without duplicates."""
    seen: set[str] = set()
    for arg in args:
        sources = _stdin_paths(_stdin(stdin)) if arg == "-" else [arg]
        for source in sources:
            for path in _expand_one(source, recursive, log):
                if not isinstance(path, str):  # a photo inside a shard: keys are unique there
                    yield path
                    continue
                key = os.path.normpath(os.path.abspath(path))
                if key in seen:
                    log(f"skipped duplicate path {path}")
                    continue
                seen.add(key)
                yield path


def _stdin(stream=None):
    stream = stream or sys.stdin
    if stream is None:
        raise UsageError("- reads image paths from stdin, but stdin is closed")
    return stream


def first_and_rest(paths: Iterator[str]) -> Iterator[str]:
    """``paths`` again, after making sure there is at least one (else a usage error, before any
    model is loaded). Only the first path is taken early: stdin still streams."""
    import itertools

    for first in paths:
        return itertools.chain([first], paths)
    raise UsageError("no images to process in the given inputs")


def require_inputs(args: tuple[str, ...]) -> None:
    """Refuse an empty command line, a named path that does not exist (globs may match nothing),
    or ``-`` with stdin closed."""
    if not args:
        raise UsageError("no inputs: give image files, folders, globs, or - to read paths from stdin")
    if "-" in args:
        _stdin()
    missing = [a for a in args if a != "-" and not os.path.lexists(a) and not glob.has_magic(a) and "{" not in a]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(f"no such file or folder: {missing[0]}{more}")
