"""One training per run folder at a time: ``.OUT.lock`` beside the folder.

The lock is an ``flock`` on that file, which the kernel drops when its process dies however it
dies (SIGKILL, power loss of a local disk), so a stale lock never blocks a new run. The file also
records who holds it (pid, host, start time) for the refusal message. Where ``flock`` is not
supported (some network file systems) the record decides: a lock from a pid no longer running on
this host is stale and taken over; one from another host is refused, naming it and the file to
delete once that run is known to be gone.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path

from geocli.errors import GeocliError

try:
    import fcntl
except ImportError:  # Windows: the pid/host record alone
    fcntl = None


def lock_path(out: Path) -> Path:
    return Path(out).with_name(f".{Path(out).name}.lock")


class RunLock:
    """Context manager holding the lock of run folder ``out`` (refuses when another run holds it)."""

    def __init__(self, out: Path):
        self.out, self.path = Path(out), lock_path(out)
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            self._acquire()
        except OSError as exc:
            raise GeocliError(f"cannot create the lock {self.path}: {exc.strerror or exc}; "
                              "--out must be in a folder you can write") from None

    def _acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not self._locked(fd):
                os.close(fd)
                raise GeocliError(self._held_message())
            if self._still_the_file(fd):  # not unlinked by a finishing run meanwhile
                self.fd = fd
                self._record()
                return
            os.close(fd)
        raise GeocliError(f"{self.path}: cannot take the lock (it keeps changing)")

    def _locked(self, fd: int) -> bool:
        """Take the flock; without flock support, judge the holder's record instead."""
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
        holder = self._holder()
        return holder is None or _is_stale(holder)

    def _still_the_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _record(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "out": str(self.out)}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, (json.dumps(info, allow_nan=False) + "\n").encode(), 0)

    def _holder(self) -> dict | None:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _held_message(self) -> str:
        holder = self._holder() or {}
        who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('started', '?')}"
        return (f"{self.out} is being written by another training ({who}); wait for it to finish, "
                f"or train into another --out (if that run is gone, delete {self.path})")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()  # while still holding it: a waiting run re-checks the file it locked
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _is_stale(holder: dict) -> bool:
    """A record of a process that no longer runs on this host; another host's is never stale."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return holder["pid"] == os.getpid()
