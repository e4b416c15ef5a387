"""What may reach a terminal: text from files (names, EXIF fields, OCR reads) shown, never obeyed.

A file name can hold an escape sequence that clears the screen, recolours what follows, sets the
window title (OSC) or reorders a line (bidi overrides); rich would also read ``[red]`` in it as
markup. Every human-readable output passes such text through ``printable`` (or ``text`` for rich),
which writes each control character as a visible escape: ``\\x1b``, ``\\n``, ``\\u202e``. Bytes that
are not UTF-8 (file names decoded with surrogate escapes) are shown as ``\\xff``. JSON, JSONL and
CSV outputs carry the data as it is: their formats escape what they must.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

#: Format characters that join letters in Persian, Arabic and Indic scripts, and emoji sequences.
_JOINERS = {"\u200c", "\u200d"}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SUSPECT = re.compile(r"[^\x20-\x7e]")


@lru_cache(maxsize=4096)
def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogate escape)
        return f"\\x{code - 0xDC00:02x}"
    category = unicodedata.category(ch)
    if category in ("Cc", "Cs", "Zl", "Zp") or (category == "Cf" and ch not in _JOINERS):
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return ch


def printable(value: object) -> str:
    """``str(value)`` with every control, format, line-separator and lone-surrogate character
    written as a visible escape; everything else (any script, emoji) as it is."""
    s = str(value)
    if not _SUSPECT.search(s):
        return s
    return "".join(_escape_char(ch) if _SUSPECT.match(ch) else ch for ch in s)


def text(value: object, style: str | None = None):
    """A rich ``Text`` of ``printable(value)``: shown literally, never read as markup or emoji."""
    from rich.text import Text

    return Text(printable(value), style=style or "")
