"""Poems as texts: the offline default (the Debian package `fortunes`' songs-poems) or the user's file.

The note trained on 264 poems of its own; songs-poems holds 720 poem and song excerpts. Its
attributions (a line starting with whitespace then `--`, and the more-indented lines continuing it)
are removed, as are overstrikes (a character, a backspace: the old way to write accents).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from lightning_modules.poetry_ae.data.errors import DataFileError, file_error

__all__ = ["DEFAULT_FORTUNES", "fortunes_poems", "read_poems_text", "read_poems_json", "load_poems"]

DEFAULT_FORTUNES = "/usr/share/games/fortunes/songs-poems"
_FORTUNES_ALLOWED = "a fortune file: entries separated by lines holding only %"
_TEXT_ALLOWED = "a UTF-8 text file of poems separated by blank lines, or by lines holding only % if it has any"
_JSON_ALLOWED = ('a JSON list of strings, a list of objects each with a "text" or "poem" string, '
                 'or {"poems": [...]} of either')
_PERCENT = re.compile(r"^%[ \t]*$", re.M)
_BLANK = re.compile(r"\n(?:[ \t]*\n)+")
_LEADING_BLANK_LINES = re.compile(r"^(?:[ \t]*\n)+")
_OVERSTRIKE = re.compile(r".\x08")
_ATTRIBUTION = re.compile(r"^([ \t]+)--")


def _read_text(path: Path, allowed: str) -> str:
    if not path.is_file():
        raise file_error(path, "no such file", allowed)
    try:
        return path.read_text(encoding="utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        raise file_error(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})", allowed) from None
    except OSError as exc:
        raise file_error(path, f"cannot be read ({exc.strerror})", allowed) from None


def _indent(line: str) -> int:
    expanded = line.expandtabs(8)
    return len(expanded) - len(expanded.lstrip())


def _strip_attributions(text: str) -> str:
    """`text` without its attribution lines and the more-indented lines that continue them."""
    kept, attribution_indent = [], None
    for line in text.split("\n"):
        if attribution_indent is not None and line.strip() and _indent(line) > attribution_indent:
            continue  # the attribution goes on
        attribution_indent = None
        match = _ATTRIBUTION.match(line)
        if match:
            attribution_indent = _indent(line)
            continue
        kept.append(line)
    return "\n".join(kept)


def _clean(texts: list[str]) -> list[str]:
    """Poems without leading blank lines and trailing whitespace; blank ones dropped."""
    return [t for t in (_LEADING_BLANK_LINES.sub("", t).rstrip() for t in texts) if t.strip()]


def _no_poems(path: Path, allowed: str) -> DataFileError:
    return file_error(path, "holds no poems (no entry with any non-blank text)", allowed)


def fortunes_poems(path: str | os.PathLike = DEFAULT_FORTUNES) -> list[str]:
    """The poems of a fortune file (default: songs-poems), attributions and overstrikes removed.

    Raises:
        DataFileError: the file is missing (install the Debian package `fortunes`, or pass a poems
            file), unreadable, or holds no poems.
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "no such file (install the Debian package `fortunes`, or pass a poems file)",
                         _FORTUNES_ALLOWED)
    text = _OVERSTRIKE.sub("", _read_text(path, _FORTUNES_ALLOWED))
    poems = _clean([_strip_attributions(entry) for entry in _PERCENT.split(text)])
    if not poems:
        raise _no_poems(path, _FORTUNES_ALLOWED)
    return poems


def read_poems_text(path: str | os.PathLike) -> list[str]:
    """The poems of a text file: separated by lines holding only `%` if there are any, else by blank lines.

    Raises:
        DataFileError: missing, not UTF-8, or no poems.
    """
    path = Path(path)
    text = _read_text(path, _TEXT_ALLOWED)
    parts = _PERCENT.split(text) if _PERCENT.search(text) else _BLANK.split(text)
    poems = _clean(parts)
    if not poems:
        raise _no_poems(path, _TEXT_ALLOWED)
    return poems


def _poem_text(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for field in ("text", "poem"):
            if isinstance(item.get(field), str):
                return item[field]
    return None


def read_poems_json(path: str | os.PathLike) -> list[str]:
    """The poems of a JSON file: a list of strings, a list of objects with a "text" or "poem" string,
    or an object whose "poems" holds either list.

    Raises:
        DataFileError: missing, not JSON, another layout (naming the first item that does not fit), or no poems.
    """
    path = Path(path)
    text = _read_text(path, _JSON_ALLOWED)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise file_error(path, f"is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                         _JSON_ALLOWED) from None
    if isinstance(data, dict):
        if "poems" not in data:
            raise file_error(path, f"is an object with keys {sorted(data)[:5]} but no \"poems\"", _JSON_ALLOWED)
        data = data["poems"]
    if not isinstance(data, list):
        raise file_error(path, f"holds a JSON {type(data).__name__}, not a list", _JSON_ALLOWED)
    texts = []
    for number, item in enumerate(data):
        poem = _poem_text(item)
        if poem is None:
            raise file_error(path, f"item {number} is {json.dumps(item)[:60]}", _JSON_ALLOWED)
        texts.append(poem)
    poems = _clean(texts)
    if not poems:
        raise _no_poems(path, _JSON_ALLOWED)
    return poems


def load_poems(path: str | os.PathLike | None = None) -> list[str]:
    """The poems of `path` (`.json`: `read_poems_json`, any other name: `read_poems_text`), or of
    fortunes' songs-poems when `path` is None.

    Raises:
        DataFileError: see the readers; with no `path` and no `fortunes` package, says to install it.
    """
    if path is None:
        return fortunes_poems()
    if Path(path).suffix.lower() == ".json":
        return read_poems_json(path)
    return read_poems_text(path)
