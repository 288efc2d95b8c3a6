"""Recordings listed in ``perform/perform.json`` beside the synthesized performances.

An aligned recording (:mod:`msmd_builder.stages.recordings`) is stored as a
performance file in the piece's ``perform/`` folder and listed in
``perform.json`` under ``"recordings"``: one entry like a synthesized
performance's (``performance_id``, ``file``, ``audio``, ``plan``,
``cache_key``, ``duration_sec``, ``n_frames``) plus ``roles`` (the split
roles that use it), ``align`` (the cache key of the performed notes it was
aligned to) and ``recording`` (file, playing order, cost, confidence).  The
built-piece reader, the shards and the viewer then take it as one more
performance of its roles.

The perform stage keeps the listed recordings when it renders the piece
again, as long as the performed notes they were aligned to are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from msmd_builder.core.cache import atomic_write_json, read_json
from msmd_builder.core.errors import NotBuiltError
from msmd_builder.core.workdir import PieceDir

__all__ = ["RECORDINGS_KEY", "listed_recordings", "carried_recordings", "list_recordings"]

#: Key of the recordings' list in ``perform.json``.
RECORDINGS_KEY = "recordings"


def listed_recordings(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the recordings a ``perform.json`` document lists (none for older records)."""
    return [dict(entry) for entry in record.get(RECORDINGS_KEY, [])]


def carried_recordings(record_path: Path, align_key: str) -> list[dict[str, Any]]:
    """Return the listed recordings still valid for a new ``perform.json``.

    Those aligned to the performed notes of ``align_key`` whose files are
    still there; the rest are dropped (their notes changed).
    """
    try:
        record = read_json(record_path)
    except (OSError, ValueError):
        return []
    folder = record_path.parent
    return [
        entry
        for entry in listed_recordings(record)
        if entry.get("align") == align_key
        and all((folder / name).is_file() for name in (entry["file"], entry["audio"]) if name)
    ]


def list_recordings(
    piece_dir: PieceDir, entries: Sequence[Mapping[str, Any]], *, replace: bool
) -> list[dict[str, Any]]:
    """List recordings in a piece's ``perform.json``.

    Parameters
    ----------
    piece_dir : PieceDir
        The piece (its perform stage must have run).
    entries : sequence of mapping
        The recordings' entries (see the module docstring).
    replace : bool
        Replace every listed recording (a dataset build lists exactly its
        own); else add these, replacing entries of the same id only.

    Returns
    -------
    list of dict
        The recordings now listed.

    Raises
    ------
    NotBuiltError
        If the piece has no ``perform/perform.json``.
    """
    path = piece_dir.perform_record
    if not path.is_file():
        raise NotBuiltError(piece_dir.piece_id, f"{piece_dir.relative(path)} is missing")
    record = read_json(path)
    new_ids = {entry["performance_id"] for entry in entries}
    kept = (
        []
        if replace
        else [e for e in listed_recordings(record) if e["performance_id"] not in new_ids]
    )
    listed = kept + [dict(entry) for entry in entries]
    # Written only when the list changes: a rebuild with the same recordings
    # leaves the file (and its modification time) alone.
    if listed != listed_recordings(record) or (listed and RECORDINGS_KEY not in record):
        record[RECORDINGS_KEY] = listed
        atomic_write_json(path, record)
    return listed
