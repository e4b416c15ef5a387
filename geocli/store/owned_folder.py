"""Folders geocli writes as a whole (checkpoints, training runs) and may therefore replace.

geocli replaces or removes only what it made and can show it made: every such folder carries
``geocli-folder.json`` (the marker), and holds nothing but the files geocli writes there
(``OWN_NAMES``). An existing folder is replaceable when it is empty, or marked and holding only
geocli's files; anything else (a photo folder, a run a user has added notes to) is refused with
one line naming what is in the way. Folders written before the marker existed are recognised by
their ``config.json`` (``"format": "geocli-model"``).

``swap_in`` renames a fully written temporary folder into place, and removes the old one file by
file (only geocli's names, then ``rmdir``): something a user drops in meanwhile survives.
"""
from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

from geocli.errors import GeocliError

MARKER = "geocli-folder.json"
CHECKPOINT_NAMES = ("config.json", "model.safetensors", "references.safetensors")
RUN_STATE_NAMES = ("train_state.json", "train_state.safetensors")
#: Every name geocli writes in a checkpoint or run folder; anything else there is the user's.
OWN_NAMES = frozenset((MARKER, *CHECKPOINT_NAMES, *RUN_STATE_NAMES))


def write_marker(folder: Path, kind: str) -> None:
    """Mark ``folder`` (being written) as geocli's: ``kind`` is "checkpoint" or "run"."""
    from geocli.version import __version__

    document = {"made_by": "geocli", "kind": kind, "geocli_version": __version__}
    (Path(folder) / MARKER).write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def is_marked(folder: Path) -> bool:
    """Whether ``folder`` says geocli made it (its marker, or an older geocli's ``config.json``)."""
    for name, key, value in ((MARKER, "made_by", "geocli"), ("config.json", "format", "geocli-model")):
        try:
            document = json.loads((Path(folder) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(document, dict) and document.get(key) == value:
            return True
    return False


def foreign_entries(folder: Path) -> list[str]:
    """Names in ``folder`` that geocli does not write there."""
    return sorted(name for name in os.listdir(folder) if name not in OWN_NAMES)


def replace_problem(folder: Path) -> str | None:
    """Why geocli may not replace ``folder``; None when it may (absent, empty, or geocli's own)."""
    folder = Path(folder)
    if not os.path.lexists(folder):
        return None
    if folder.is_symlink():
        return f"{folder} is a symbolic link; name the folder itself"
    if not folder.is_dir():
        return f"{folder} exists and is not a folder"
    try:
        if not os.listdir(folder):
            return None
        if not is_marked(folder):
            return (f"{folder} exists, is not empty and is not a geocli folder (no {MARKER}); "
                    "geocli replaces only folders it made: name a new or empty folder")
        foreign = foreign_entries(folder)
    except OSError as exc:
        return f"{folder}: cannot read it ({exc.strerror or exc})"
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        return (f"{folder} holds files geocli did not write ({', '.join(foreign[:3])}{more}); "
                "move them out or name another folder")
    return None


def check_replaceable(folder: Path) -> None:
    problem = replace_problem(folder)
    if problem:
        raise GeocliError(problem)


def has_content(folder: Path) -> bool:
    """An existing, non-empty folder."""
    try:
        return Path(folder).is_dir() and bool(os.listdir(folder))
    except OSError:
        return False


def swap_in(tmp: Path, target: Path) -> None:
    """Rename the written folder ``tmp`` to ``target``; an existing ``target`` must be geocli's
    (checked now, not at the start: it may have changed since), is moved aside, then removed."""
    if not os.path.lexists(target):
        tmp.rename(target)
        return
    check_replaceable(target)
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    target.rename(old)
    tmp.rename(target)
    remove_own(old)


@contextmanager
def saving(target: Path):
    """A failed write while saving (full disk, read-only folder) becomes one line; what was at
    ``target`` before is untouched, as every save is staged beside it."""
    from safetensors import SafetensorError

    try:
        yield
    except OSError as exc:
        raise GeocliError(f"cannot save {target}: {exc.strerror or exc}; {_kept(target)}") from None
    except SafetensorError as exc:
        if "I/O error" not in str(exc):
            raise
        reason = str(exc).split("I/O error:", 1)[-1].strip()
        raise GeocliError(f"cannot save {target}: {reason}; {_kept(target)}") from None


def _kept(target: Path) -> str:
    return "the previous save there is intact" if has_content(target) else "nothing was written"


def remove_own(folder: Path) -> None:
    """Delete geocli's files in ``folder``, then the folder if nothing else is left in it."""
    for name in OWN_NAMES:
        try:
            (Path(folder) / name).unlink()
        except OSError:
            pass
    try:
        Path(folder).rmdir()
    except OSError:
        pass  # something that is not geocli's is in there: it stays
