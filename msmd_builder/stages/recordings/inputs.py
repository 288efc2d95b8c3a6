"""Which recordings a dataset build aligns: a folder of files named by piece id, or a CSV.

A folder: every audio file (see :data:`AUDIO_SUFFIXES`) whose name is a piece
id (``BachJS__BWV846__wtk1-prelude1.flac``), or a piece id, ``__`` and a take
name (``BachJS__BWV846__wtk1-prelude1__gould.mp3``); the longest piece id that
fits wins.  Files that name no piece of the index are reported, not guessed.

A CSV (UTF-8, header row): ``piece_id``, ``path`` (relative to the CSV's
folder, or absolute) and optionally ``role`` (``train``, ``valid`` or
``test``; default ``test``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from msmd_builder.core.errors import ConfigError

__all__ = ["AUDIO_SUFFIXES", "RecordingRequest", "read_recordings"]

#: File name endings of recordings in a folder.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"})

_ROLES = ("train", "valid", "test")


@dataclass(frozen=True)
class RecordingRequest:
    """One recording to align.

    Attributes
    ----------
    piece_id : str
        The piece it records ("" when its file names no known piece).
    path : Path
        The audio file.
    role : str
        Split role it joins.
    """

    piece_id: str
    path: Path
    role: str = "test"


def _piece_of(stem: str, piece_ids: Collection[str]) -> str:
    """Return the longest piece id that ``stem`` is, or starts with followed by ``__``."""
    matches = [p for p in piece_ids if stem == p or stem.startswith(p + "__")]
    return max(matches, key=len) if matches else ""


def read_recordings(
    source: str | os.PathLike[str], piece_ids: Collection[str]
) -> list[RecordingRequest]:
    """Read a folder or CSV of recordings (see the module docstring).

    Parameters
    ----------
    source : path-like
        A folder of audio files, or a CSV file.
    piece_ids : collection of str
        The pieces of the index (to read file names by).

    Returns
    -------
    list of RecordingRequest
        In file-name (folder) or row (CSV) order; a file of no known piece has
        ``piece_id == ""``.

    Raises
    ------
    ConfigError
        The source does not exist, the CSV lacks a column, names an unknown
        role or lists a file twice.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        return [RecordingRequest(_piece_of(p.stem, piece_ids), p.resolve()) for p in files]
    if not source.is_file():
        raise ConfigError(f"--recordings {source}: no such folder or CSV file")
    try:
        with open(source, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read the recordings list {source}: {exc}") from exc
    requests = []
    seen: set[Path] = set()
    for number, row in enumerate(rows, start=2):
        piece_id = (row.get("piece_id") or "").strip()
        path_text = (row.get("path") or "").strip()
        if not piece_id or not path_text:
            raise ConfigError(f"{source}, line {number}: needs a piece_id and a path")
        role = (row.get("role") or "test").strip() or "test"
        if role not in _ROLES:
            raise ConfigError(f"{source}, line {number}: role must be one of {_ROLES}")
        path = Path(path_text)
        path = (path if path.is_absolute() else source.parent / path).resolve()
        if path in seen:
            raise ConfigError(f"{source}, line {number}: {path_text} is listed twice")
        seen.add(path)
        requests.append(RecordingRequest(piece_id, path, role))
    return requests
