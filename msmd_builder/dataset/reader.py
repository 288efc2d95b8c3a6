"""Reading shards: needs only h5py and numpy.

A shard that cannot be read as written -- truncated, changed after it was
written, or not the size the manifest records -- raises
:class:`~msmd_builder.core.errors.FormatError` naming the file, never a bare
h5py error; ``verify=True`` also compares each piece with the manifest's
``content_sha256``.  The files themselves stay plain HDF5 (``docs/format.md``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py

from msmd_builder.core.errors import ConfigError, FormatError
from msmd_builder.core.records import PerformanceRecord, PieceRecord
from msmd_builder.dataset.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    Manifest,
    piece_checksum,
)

__all__ = ["find_split", "ShardReader", "SplitReader", "open_shard", "open_split"]


def _read_piece_group(group: h5py.Group) -> PieceRecord:
    performances = []
    for performance_id in group.attrs["performance_ids"]:
        sub = group["performances"][str(performance_id)]
        performances.append(
            PerformanceRecord(
                performance_id=str(sub.attrs["performance_id"]),
                plan=json.loads(sub.attrs["plan_json"]),
                spectrogram=sub["spectrogram"][()],
                events=sub["events"][()],
                onset_frame=sub["onset_frame"][()],
                duration_sec=float(sub.attrs["duration_sec"]),
                confidence=sub["confidence"][()] if "confidence" in sub else None,
                measures=sub["measures"][()],
            )
        )
    page_keys = group["page_keys"][()]
    return PieceRecord(
        piece_id=str(group.attrs["piece_id"]),
        metadata=json.loads(group.attrs["metadata_json"]),
        page_keys=page_keys,
        pages=[group["pages"][f"{i:04d}"][()] for i in range(len(page_keys))],
        systems=group["systems"][()],
        noteheads=group["noteheads"][()],
        performed=group["performed"][()],
        performances=performances,
        measures=group["measures"][()],
        performed_measures=group["performed_measures"][()],
    )


class ShardReader:
    """One open shard file; use as a context manager or call :meth:`close`.

    Parameters
    ----------
    path : path-like
        A ``<part>-NNNNN.h5`` file.

    Raises
    ------
    ConfigError
        If the file does not exist or is not a shard of a known format version.
    FormatError
        If HDF5 cannot open the file or read its attributes (a damaged file).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path} does not exist")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise FormatError(
                f"{self.path} cannot be opened as HDF5: it is damaged (truncated or "
                f"overwritten) or not a shard ({exc})"
            ) from exc
        try:
            self._read_attributes()
        except (KeyError, TypeError, ValueError, OSError) as exc:
            self._file.close()
            raise FormatError(
                f"{self.path} is damaged: its attributes cannot be read ({exc})"
            ) from exc

    def _read_attributes(self) -> None:
        attrs = self._file.attrs
        if attrs.get("format_name") != FORMAT_NAME:
            self._file.close()
            raise ConfigError(f"{self.path} is not a {FORMAT_NAME} file")
        if int(attrs.get("format_version", -1)) != FORMAT_VERSION:
            version = attrs.get("format_version")
            self._file.close()
            raise ConfigError(
                f"{self.path} has format_version {version}, expected {FORMAT_VERSION}"
            )
        self.split = str(attrs["split"])
        self.part = str(attrs["part"])
        self.role = str(attrs["role"])
        self.shard_index = int(attrs["shard_index"])
        self.build_info: dict[str, Any] = json.loads(attrs["build_info_json"])
        self.piece_ids: tuple[str, ...] = tuple(str(p) for p in attrs["piece_ids"])

    @property
    def file(self) -> h5py.File:
        """The open :class:`h5py.File`, for reading parts of datasets without loading a piece."""
        return self._file

    def read_piece(self, piece_id: str) -> PieceRecord:
        """Return one piece, every array as written.

        Raises
        ------
        KeyError
            If the file does not list the piece.
        FormatError
            If the piece's group or one of its arrays cannot be read (a damaged file).
        """
        if piece_id not in self.piece_ids:
            raise KeyError(f"{self.path.name} has no piece {piece_id!r}")
        try:
            return _read_piece_group(self._file["pieces"][piece_id])
        except (KeyError, TypeError, ValueError, OSError, RuntimeError) as exc:
            raise FormatError(
                f"{self.path} is damaged: piece {piece_id!r} cannot be read ({exc})"
            ) from exc

    def iter_pieces(self) -> Iterator[PieceRecord]:
        """Yield the pieces in stored order."""
        for piece_id in self.piece_ids:
            yield self.read_piece(piece_id)

    def close(self) -> None:
        """Close the file."""
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SplitReader:
    """A written split: its manifest and lazily opened shards.

    Use as a context manager or call :meth:`close`; :func:`open_split` makes one.

    Parameters
    ----------
    split_dir : path-like
        ``<out_dir>/<split>``.
    manifest : Manifest
        Its ``manifest.json``.
    """

    def __init__(self, split_dir: str | os.PathLike[str], manifest: Manifest) -> None:
        self.split_dir = Path(split_dir)
        self.manifest = manifest
        self._shards: dict[str, ShardReader] = {}

    @property
    def parts(self) -> tuple[str, ...]:
        """Part names in manifest order."""
        return tuple(p.name for p in self.manifest.parts)

    def piece_ids(self, part: str) -> tuple[str, ...]:
        """Written pieces of a part, in split order."""
        return tuple(p.piece_id for p in self.manifest.part(part).pieces)

    def shard(self, file_name: str) -> ShardReader:
        """Return the open reader of one of the split's files (opened on first use).

        Raises
        ------
        FormatError
            If the file is missing or not the size the manifest records for it
            (truncated or overwritten), or HDF5 cannot open it.
        """
        if file_name not in self._shards:
            path = self.split_dir / file_name
            listed = {f.file: f.size for part in self.manifest.parts for f in part.files}
            if file_name in listed:
                size = path.stat().st_size if path.is_file() else None
                if size is None:
                    raise FormatError(f"{path} is listed in the manifest but missing")
                if size != listed[file_name]:
                    raise FormatError(
                        f"{path} is damaged: {size} bytes, the manifest records "
                        f"{listed[file_name]} (truncated or overwritten); write the split again"
                    )
            self._shards[file_name] = ShardReader(path)
        return self._shards[file_name]

    def read_piece(self, part: str, piece_id: str, *, verify: bool = False) -> PieceRecord:
        """Return one piece of a part.

        Parameters
        ----------
        part, piece_id : str
            Where and what.
        verify : bool, optional
            Recompute :func:`piece_checksum` and compare it with the manifest.

        Raises
        ------
        KeyError
            If the part or the piece is not in the manifest.
        FormatError
            If the file is damaged (see :meth:`shard`), or ``verify`` and the
            content differs from what the manifest recorded.
        """
        summary = self.manifest.part(part).piece(piece_id)
        record = self.shard(summary.file).read_piece(piece_id)
        if verify and piece_checksum(record) != summary.content_sha256:
            raise FormatError(
                f"{self.split_dir / summary.file}: piece {piece_id!r} differs from the "
                "manifest's content_sha256 (the file was changed after it was written)"
            )
        return record

    def iter_pieces(self, part: str, *, verify: bool = False) -> Iterator[PieceRecord]:
        """Yield the pieces of a part in split order."""
        for piece_id in self.piece_ids(part):
            yield self.read_piece(part, piece_id, verify=verify)

    def close(self) -> None:
        """Close every opened shard."""
        for reader in self._shards.values():
            reader.close()
        self._shards.clear()

    def __enter__(self) -> SplitReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_shard(path: str | os.PathLike[str]) -> ShardReader:
    """Open one shard file for reading."""
    return ShardReader(path)


def open_split(split_dir: str | os.PathLike[str]) -> SplitReader:
    """Open a written split (``<out_dir>/<split>``) by its manifest.

    Raises
    ------
    ConfigError
        If the directory has no manifest -- the split was never written or its
        write did not finish -- or the manifest is of another format.
    """
    folder = Path(split_dir)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist: the split was not written or its writing did not finish"
        )
    return SplitReader(folder, Manifest.load(path))


def find_split(split: str | os.PathLike[str], dataset_dir: str | os.PathLike[str]) -> Path:
    """Return a split's folder, given by path or by name (a folder of ``dataset_dir``).

    Raises
    ------
    ConfigError
        If neither exists.
    """
    candidate = Path(split)
    if candidate.is_dir():
        return candidate
    named = Path(dataset_dir) / split
    if named.is_dir():
        return named
    raise ConfigError(f"no split folder {split!r} and no {named}; run msmd-build dataset first")
