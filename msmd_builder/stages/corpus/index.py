"""The corpus index (``<work>/index.csv``).

One :class:`PieceEntry` per piece, written once by the scan; later stages read it
back and never re-parse Mutopia paths.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from msmd_builder.core.cache import atomic_path, atomic_write_json, read_json
from msmd_builder.core.errors import ConfigError
from msmd_builder.core.workdir import WorkDir

__all__ = [
    "INDEX_FORMAT_NAME",
    "INDEX_FORMAT_VERSION",
    "PieceEntry",
    "INDEX_COLUMNS",
    "write_index",
    "read_index",
    "select_keyboard",
    "find_piece",
    "select_pieces",
    "write_corpus",
    "corpus_root",
    "index_entries",
]


INDEX_FORMAT_NAME = "msmd-corpus-index"
"""Name of the index format (documented in ``docs/corpus.md``)."""


INDEX_FORMAT_VERSION = 1
"""Version of the index format; bump it when the columns change."""


@dataclass(frozen=True)
class PieceEntry:
    """One piece of the corpus: a main LilyPond file, its includes and its header.

    All paths are POSIX paths relative to the Mutopia root (the directory that
    contains ``ftp/``). Header fields are plain text, ``""`` when absent.
    """

    piece_id: str
    """MSMD id ``<ComposerDir>__<OpusDir>__<main file stem>`` (unique in a scan)."""

    main_file: str
    """Main ``.ly`` file, e.g. ``ftp/BachJS/BWV772/bach-invention-01/bach-invention-01.ly``."""

    composer_dir: str
    """First path component below ``ftp/`` (Mutopia's composer directory)."""

    opus_dir: str
    """Second path component below ``ftp/`` (Mutopia's opus directory)."""

    includes: tuple[str, ...]
    """Files the main file includes, recursively, in order of first inclusion."""

    include_sha256: tuple[str, ...]
    """Hex SHA-256 of each file of :attr:`includes`, in the same order."""

    source_sha256: str
    """Hex SHA-256 over main file and includes; see :func:`scan_corpus`."""

    title: str
    """``title`` header field as LilyPond prints it, else ``mutopiatitle``."""

    composer: str
    """``composer`` header field as LilyPond prints it, else ``mutopiacomposer``."""

    opus: str
    """``opus`` header field as LilyPond prints it, else ``mutopiaopus``."""

    instrument: str
    """``mutopiainstrument`` of the Mutopia header, else ``instrument``."""

    style: str
    """``style`` of the Mutopia header, else ``mutopiastyle``."""

    license: str
    """``license`` header field, else ``copyright``, ``mutopialicense``, ``mutopiacopyright``."""

    lilypond_version: str
    r"""``\version`` string of the main file, else of the first include that has one."""

    encoding_ok: bool
    """True when the main file and every include are valid UTF-8."""

    is_keyboard: bool
    """True for solo keyboard pieces (the MSMD selection, extended; see ``classify_instrument``)."""

    selection_reason: str
    """Why the piece is or is not selected, e.g. ``msmd-rule`` or ``rejected:four-hands``."""

    problems: tuple[str, ...]
    """Problems found while scanning, each ``<kind>:<detail>`` (e.g. ``missing-include:x.ly``)."""


INDEX_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(PieceEntry))
"""Columns of ``index.csv``, in order (the field names of :class:`PieceEntry`)."""


_LIST_COLUMNS = frozenset({"includes", "include_sha256", "problems"})


_BOOL_COLUMNS = frozenset({"encoding_ok", "is_keyboard"})


def _cell(entry: PieceEntry, column: str) -> str:
    value = getattr(entry, column)
    if column in _LIST_COLUMNS:
        return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))
    if column in _BOOL_COLUMNS:
        return "true" if value else "false"
    return str(value)


def write_index(entries: Iterable[PieceEntry], path: str | os.PathLike[str]) -> None:
    r"""Write entries to a CSV index, atomically.

    Parameters
    ----------
    entries : iterable of PieceEntry
        The entries, written in the given order.
    path : path-like
        Destination, conventionally ``<work>/index.csv``.

    Notes
    -----
    UTF-8, comma-separated, RFC 4180 quoting and ``\r\n`` line ends, one header row
    with :data:`INDEX_COLUMNS`. Booleans are ``true``/``false``; the list
    columns (``includes``, ``include_sha256``, ``problems``) are compact JSON
    arrays of strings (``[]`` when empty).
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)  # RFC 4180: CRLF, so a lone CR in a value is quoted
            writer.writerow(INDEX_COLUMNS)
            for entry in entries:
                writer.writerow([_cell(entry, column) for column in INDEX_COLUMNS])


def read_index(path: str | os.PathLike[str]) -> list[PieceEntry]:
    """Read an index written by :func:`write_index`.

    Parameters
    ----------
    path : path-like
        The CSV file.

    Returns
    -------
    list of PieceEntry
        The entries in file order.

    Raises
    ------
    ConfigError
        If the header row is not :data:`INDEX_COLUMNS` or a cell cannot be read.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header) != INDEX_COLUMNS:
            raise ConfigError(
                f"{path}: not a corpus index (format {INDEX_FORMAT_NAME} "
                f"v{INDEX_FORMAT_VERSION}); header row is {header!r}"
            )
        entries = []
        for line_no, row in enumerate(reader, start=2):
            if len(row) != len(INDEX_COLUMNS):
                raise ConfigError(f"{path}:{line_no}: expected {len(INDEX_COLUMNS)} cells")
            values: dict[str, object] = {}
            for column, cell in zip(INDEX_COLUMNS, row, strict=True):
                if column in _LIST_COLUMNS:
                    try:
                        items = json.loads(cell)
                    except json.JSONDecodeError as exc:
                        raise ConfigError(f"{path}:{line_no}: bad {column} cell") from exc
                    values[column] = tuple(str(x) for x in items)
                elif column in _BOOL_COLUMNS:
                    if cell not in ("true", "false"):
                        raise ConfigError(f"{path}:{line_no}: bad {column} cell {cell!r}")
                    values[column] = cell == "true"
                else:
                    values[column] = cell
            entries.append(PieceEntry(**values))  # type: ignore[arg-type]
    return entries


def select_keyboard(entries: Iterable[PieceEntry]) -> list[PieceEntry]:
    """Return the entries with ``is_keyboard``, in the given order."""
    return [entry for entry in entries if entry.is_keyboard]


def select_pieces(
    entries: Sequence[PieceEntry],
    piece_ids: Iterable[str] = (),
    *,
    limit: int | None = None,
    all_pieces: bool = False,
) -> list[PieceEntry]:
    """Choose the pieces of a run: the given ids, else the keyboard pieces (or all of them).

    Parameters
    ----------
    entries : sequence of PieceEntry
        The index.
    piece_ids : iterable of str
        Only these pieces, in index order.
    limit : int, optional
        Only the first ``limit`` chosen pieces.
    all_pieces : bool
        Without ids: also pieces that are not solo keyboard.

    Raises
    ------
    ConfigError
        If an id is not in the index.
    """
    wanted = set(piece_ids)
    if wanted:
        chosen = [e for e in entries if e.piece_id in wanted]
        missing = wanted - {e.piece_id for e in chosen}
        if missing:
            raise ConfigError(f"not in the index: {', '.join(sorted(missing))}")
    else:
        chosen = [e for e in entries if all_pieces or e.is_keyboard]
    return chosen[:limit] if limit else chosen


def find_piece(entries: Iterable[PieceEntry], piece_id: str) -> PieceEntry | None:
    """Return the entry with ``piece_id``, or None."""
    for entry in entries:
        if entry.piece_id == piece_id:
            return entry
    return None


def write_corpus(
    work: WorkDir, mutopia_root: str | os.PathLike[str], entries: Iterable[PieceEntry]
) -> None:
    """Write a scan's index and the Mutopia root it was made from into a work directory."""
    write_index(entries, work.index)
    atomic_write_json(work.corpus_record, {"mutopia_root": str(Path(mutopia_root).resolve())})


def corpus_root(work: WorkDir) -> Path:
    """Return the Mutopia root the work directory's index was made from."""
    if not work.corpus_record.exists():
        raise ConfigError(
            f"{work.corpus_record} not found: run `msmd-build corpus scan ROOT "
            f"--work-dir {work.root}` first"
        )
    return Path(read_json(work.corpus_record)["mutopia_root"])


def index_entries(work: WorkDir) -> list[PieceEntry]:
    """Return the pieces of the work directory's index."""
    if not work.index.exists():
        raise ConfigError(
            f"{work.index} not found: run `msmd-build corpus scan ROOT --work-dir {work.root}`"
        )
    return read_index(work.index)
