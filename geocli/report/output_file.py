"""Results files that never destroy what was there: ``-o FILE`` of every command.

An existing file is replaced only once there is something to put in its place: records go to a
hidden temporary file beside it (``.NAME.geocli-XXXXXXXX.partial``), which takes the name in one
atomic ``os.replace`` when the run ends, or when it is interrupted (the finished records are
kept). A run that fails (an error, a full disk) or has nothing to write removes the temporary file
and leaves the old one exactly as it was. Devices and pipes (``/dev/null``, ``/dev/stdout``, a
FIFO) are written in place: they cannot be replaced, only written to.

``check_output`` refuses, before any work, an ``-o`` that is one of the run's inputs: a file named
on the command line, the file stdin is read from, or an existing image.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

from geocli.errors import GeocliError, UsageError


#: A disk (or quota) that is full: wherever a write meets one, it is one line, not a traceback.
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Errors that mean the results could not be stored (not a bug in the run): one line, old file kept.
WRITE_ERRNOS = FULL_DISK_ERRNOS | {errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM}


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of what ``path`` names, following links; None when nothing is there."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _stdin_identity() -> tuple[int, int] | None:
    try:
        st = os.fstat(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


#: The PNG text geocli's maps carry, so that a later ``--map`` may replace them (and no other image).
MAP_SOFTWARE = "geocli map"


def check_output(path: str, inputs: Iterable[str] = (), reads_stdin: bool = False, option: str = "-o") -> None:
    """Refuse an output (``option``) that names a folder, an existing image (other than a map geocli
    drew), one of ``inputs`` or stdin's file."""
    from geocli.images import is_image_path

    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {path} is a folder; name a file")
    here = _identity(target)
    if here is None:
        if not target.parent.is_dir():
            raise UsageError(f"{option} {path}: the folder {target.parent} does not exist")
        return
    if not _is_regular(target):
        return  # a device or pipe: written in place, nothing to destroy
    if is_image_path(path) and not is_geocli_map(target):
        raise UsageError(f"{option} {path} is an existing image: it would be overwritten; name another file")
    if reads_stdin and _stdin_identity() == here:
        raise UsageError(f"{option} {path} is the file stdin reads the image list from; name another file")
    if any(_identity(i) == here for i in inputs):
        raise UsageError(f"{option} {path} is one of the inputs; it would be replaced; name another file")


def is_geocli_map(path: Path) -> bool:
    """A PNG map an earlier ``--map`` drew (its ``Software`` text says so)."""
    try:
        from PIL import Image

        with Image.open(path) as img:
            return img.format == "PNG" and img.info.get("Software") == MAP_SOFTWARE
    except Exception:  # noqa: BLE001 -- unreadable means "not ours"
        return False


def write_via_temp(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(temp)`` for a temporary file beside ``path`` (same suffix, for writers that go by
    it), then put it in place atomically; a failure leaves ``path`` as it was."""
    target = Path(os.path.realpath(path))
    temp = target.with_name(f".{target.stem}.geocli-{secrets.token_hex(4)}{target.suffix}")
    try:
        write(temp)
        if target.exists():
            os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(temp, target)
    except OSError as exc:
        raise GeocliError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if temp.exists():
            temp.unlink()


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class SafeOutput:
    """A results file written through a temporary twin and swapped in at the end.

    Use as a context manager: the stream is ``self.stream``; leaving the block normally (or by
    ``KeyboardInterrupt``) puts the results in place, any other exception discards them. Call
    ``discard()`` first to leave the old file untouched even on a normal exit.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(os.path.realpath(path))  # a link: the file it names is what the user means
        self.shown = str(path)
        self.identity = _identity(self.path)
        self.in_place = self.identity is not None and not _is_regular(self.path)
        self.temp: Path | None = None
        self.stream: IO[str] | None = None
        self._keep = True

    def __enter__(self) -> "SafeOutput":
        try:
            self.stream = self._open()
        except OSError as exc:
            where = "" if self.in_place else f" (results are written beside it first, in {self.path.parent})"
            raise UsageError(f"cannot write {self.shown}{where}: {exc.strerror or exc}") from None
        return self

    def _open(self) -> IO[str]:
        if self.in_place:
            return open(self.path, "w", encoding="utf-8", errors="surrogateescape", newline="")
        for _ in range(20):
            temp = self.path.with_name(f".{self.path.name}.geocli-{secrets.token_hex(4)}.partial")
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
            except FileExistsError:
                continue
            self.temp = temp
            return os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="")
        raise FileExistsError(f"no free temporary name beside {self.path}")

    def discard(self) -> None:
        """Do not replace the file when the block ends (nothing worth keeping was written)."""
        self._keep = False

    def is_output(self, path: str) -> bool:
        """Whether ``path`` is the file the results will replace."""
        return self.identity is not None and not self.in_place and _identity(path) == self.identity

    def guard(self, paths: Iterable[str]) -> Iterator[str]:
        """``paths``, refusing the results file itself (an image list read from stdin may name it)."""
        for path in paths:
            if self.is_output(path):
                raise UsageError(f"-o {self.shown} is one of the inputs ({path}); results would replace it")
            yield path

    def __exit__(self, kind, exc, tb) -> bool:
        keep = self._keep and (kind is None or issubclass(kind, KeyboardInterrupt))
        try:
            self._close(keep)
        except OSError as err:
            self._remove_temp()
            if kind is None or isinstance(exc, OSError):
                raise self._write_error(err) from None
            return False
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            raise self._write_error(exc) from None
        return False

    def _close(self, keep: bool) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.close()  # flushes: a full disk shows up here too
            except OSError:
                if keep:
                    raise
        if self.temp is None:
            return
        if not keep:
            self._remove_temp()
            return
        if _identity(self.path) != self.identity:  # someone else wrote FILE meanwhile: theirs stays
            kept = self._keep_beside()
            raise GeocliError(f"{self.shown} changed while this run wrote its results; it was left alone "
                              f"and the results are in {kept}")
        if self.identity is not None:
            os.chmod(self.temp, stat.S_IMODE(os.stat(self.path).st_mode))
        os.replace(self.temp, self.path)
        self.temp = None

    def _keep_beside(self) -> Path:
        """Give the finished results a visible name beside the target: FILE.new, FILE.new2, ..."""
        for i in range(1, 100):
            name = self.path.with_name(f"{self.path.name}.new{'' if i == 1 else i}")
            try:
                os.link(self.temp, name)  # fails if the name exists: nothing is overwritten
            except FileExistsError:
                continue
            except OSError:  # no hard links here: the temporary file itself holds them
                break
            self._remove_temp()
            return name
        kept, self.temp = self.temp, None  # not removed: it holds the results
        return kept

    def _remove_temp(self) -> None:
        if self.temp is not None:
            try:
                self.temp.unlink()
            except OSError:
                pass
            self.temp = None

    def _write_error(self, exc: OSError) -> GeocliError:
        kept = " (left as it was)" if self.identity is not None and not self.in_place else ""
        return GeocliError(f"cannot write {self.shown}{kept}: {exc.strerror or exc}")
