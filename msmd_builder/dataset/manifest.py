"""The shard format's constants, per-piece content checksums and the split manifest."""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from msmd_builder.core.cache import read_json, stable_key
from msmd_builder.core.errors import ConfigError, FormatError
from msmd_builder.core.records import PieceRecord

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_FORMAT_NAME",
    "MANIFEST_FILE",
    "DEFAULT_MAX_SHARD_BYTES",
    "ROLES",
    "LIBVER",
    "GZIP_LEVEL",
    "PAGE_CHUNK_ROWS",
    "SPECTROGRAM_CHUNK_FRAMES",
    "TABLE_CHUNK_ROWS",
    "PIECE_SLACK_BYTES",
    "array_sha256",
    "piece_checksum",
    "Counts",
    "ShardFile",
    "PieceSummary",
    "MissingPiece",
    "PartManifest",
    "Manifest",
]


#: ``format_name`` attribute of every shard file.
FORMAT_NAME = "msmd-builder/shard"


#: ``format_version`` attribute of every shard file and of the manifest; bump on layout changes.
FORMAT_VERSION = 2


#: ``format_name`` of ``manifest.json``.
MANIFEST_FORMAT_NAME = "msmd-builder/shard-manifest"


#: File name of a split's manifest.
MANIFEST_FILE = "manifest.json"


#: Default bound on a shard's size (1 GiB).
DEFAULT_MAX_SHARD_BYTES = 1 << 30


#: Split roles: which performances of a piece a part carries.
ROLES = ("train", "valid", "test")


#: HDF5 object versions, pinned low and high: files readable by HDF5 >= 1.10,
#: and no layout change when the library would otherwise pick newer objects.
LIBVER = ("v110", "v110")


#: gzip (deflate) level of every compressed dataset.  Measured on the example
#: pages: level 4 gives 28x, lzf 18x, level 9 31x at 7x the write time.
GZIP_LEVEL = 4


#: Page chunks: this many pixel rows by the full width (~53 kB at 835 px), so
#: a system's crop decompresses a few chunks, not the page.
PAGE_CHUNK_ROWS = 64


#: Spectrogram chunks: all 92 bins by this many frames (12.8 s, ~94 kB).
SPECTROGRAM_CHUNK_FRAMES = 256


#: Chunk length of the 1-d tables (noteheads, events, onsets).
TABLE_CHUNK_ROWS = 4096


#: Added to a piece's measured size when deciding whether it fits the current
#: file: covers its link and id in the file and HDF5's 4 KiB size granularity,
#: so a file of several pieces stays within the bound.
PIECE_SLACK_BYTES = 16 << 10


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


_SHARD_FILE = re.compile(r"^(?P<part>.+)-(?P<index>\d{5})\.h5$")


_METADATA_ATTRS = (
    "role",
    "title",
    "composer",
    "opus",
    "license",
    "style",
    "source_file",
    "source_sha256",
)


def _check_name(kind: str, name: str) -> None:
    if not _SAFE_NAME.match(name):
        raise ConfigError(
            f"{kind} {name!r} must start with a letter or digit and contain only "
            "letters, digits, '.', '_' and '-'"
        )


def array_sha256(array: np.ndarray) -> str:
    """Return the hex SHA-256 of an array's C-order bytes (what each dataset's ``sha256`` holds)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _array_entry(name: str, array: np.ndarray) -> list[Any]:
    return [name, np.lib.format.dtype_to_descr(array.dtype), list(array.shape), array_sha256(array)]


def _record_arrays(record: PieceRecord) -> list[tuple[str, np.ndarray]]:
    """Return the record's arrays under their dataset paths, in the one fixed order."""
    arrays = [("page_keys", record.page_keys)]
    arrays += [(f"pages/{i:04d}", page) for i, page in enumerate(record.pages)]
    arrays += [
        ("systems", record.systems),
        ("noteheads", record.noteheads),
        ("performed", record.performed),
        ("measures", record.measures),
        ("performed_measures", record.performed_measures),
    ]
    for perf in record.performances:
        base = f"performances/{perf.performance_id}"
        arrays += [
            (f"{base}/spectrogram", perf.spectrogram),
            (f"{base}/events", perf.events),
            (f"{base}/onset_frame", perf.onset_frame),
            (f"{base}/measures", perf.measures),
        ]
        if perf.confidence is not None:
            arrays.append((f"{base}/confidence", perf.confidence))
    return arrays


def piece_checksum(record: PieceRecord) -> str:
    """Content checksum of a piece, independent of how HDF5 lays the bytes out.

    The SHA-256 (:func:`msmd_builder.core.cache.stable_key`) of a canonical JSON
    document holding the piece id, the metadata, every array as ``[path,
    numpy dtype descr, shape, array_sha256]`` in the order of
    ``docs/format.md``, and each performance's id, plan and duration.  Equal
    checksums mean equal records.
    """
    return stable_key(
        {
            "piece_id": record.piece_id,
            "metadata": record.metadata,
            "arrays": [_array_entry(name, array) for name, array in _record_arrays(record)],
            "performances": [
                {"performance_id": p.performance_id, "plan": p.plan, "duration_sec": p.duration_sec}
                for p in record.performances
            ],
        }
    )


@dataclass(frozen=True)
class Counts:
    """Sizes of a piece or a part (MSMD's Table 1 and more).

    Attributes
    ----------
    pieces, pages, systems, noteheads : int
        Table sizes.
    performed_events : int
        Notes played at the score's tempo (repeats unrolled).
    aligned_pairs : int
        Performed events linked to a notehead (``notehead_id >= 0``).
    performances : int
        Performances stored (those of the part's role).
    spectrogram_frames : int
        Frames over all stored performances.
    audio_sec : float
        Seconds of audio over all stored performances.
    measures : int
        Measures as printed (a measure over two systems counts once).
    measure_occurrences : int
        Measures played at the score's tempo (repeats and jumps unrolled).
    """

    pieces: int = 0
    pages: int = 0
    systems: int = 0
    noteheads: int = 0
    performed_events: int = 0
    aligned_pairs: int = 0
    performances: int = 0
    spectrogram_frames: int = 0
    audio_sec: float = 0.0
    measures: int = 0
    measure_occurrences: int = 0

    @classmethod
    def of(cls, record: PieceRecord) -> Counts:
        """Count one piece."""
        return cls(
            pieces=1,
            pages=len(record.pages),
            systems=len(record.systems),
            noteheads=len(record.noteheads),
            performed_events=len(record.performed),
            aligned_pairs=int(np.count_nonzero(record.performed["notehead_id"] >= 0)),
            performances=len(record.performances),
            spectrogram_frames=sum(int(p.spectrogram.shape[1]) for p in record.performances),
            audio_sec=math.fsum(p.duration_sec for p in record.performances),
            measures=len(np.unique(record.measures["measure"])),
            measure_occurrences=len(record.performed_measures),
        )

    @classmethod
    def total(cls, counts: Sequence[Counts]) -> Counts:
        """Sum counts (audio seconds with :func:`math.fsum`, so the order does not matter)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            items = [getattr(c, f.name) for c in counts]
            values[f.name] = math.fsum(items) if f.name == "audio_sec" else sum(items)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Return the counts as a JSON-friendly dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counts:
        """Inverse of :meth:`to_dict`."""
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class ShardFile:
    """One ``<part>-NNNNN.h5`` file: name, size in bytes, SHA-256 and pieces in order."""

    file: str
    size: int
    sha256: str
    piece_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as a JSON-friendly dict."""
        return {
            "file": self.file,
            "size": self.size,
            "sha256": self.sha256,
            "piece_ids": list(self.piece_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardFile:
        """Inverse of :meth:`to_dict`."""
        return cls(data["file"], int(data["size"]), data["sha256"], tuple(data["piece_ids"]))


@dataclass(frozen=True)
class PieceSummary:
    """A written piece: the file it is in, its content checksum and its counts."""

    piece_id: str
    file: str
    content_sha256: str
    counts: Counts

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as a JSON-friendly dict."""
        return {
            "piece_id": self.piece_id,
            "file": self.file,
            "content_sha256": self.content_sha256,
            "counts": self.counts.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PieceSummary:
        """Inverse of :meth:`to_dict`."""
        return cls(
            data["piece_id"], data["file"], data["content_sha256"], Counts.from_dict(data["counts"])
        )


@dataclass(frozen=True)
class MissingPiece:
    """A piece of the split that is not in the shards, and why."""

    piece_id: str
    error_class: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as a JSON-friendly dict."""
        return {"piece_id": self.piece_id, "error_class": self.error_class, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MissingPiece:
        """Inverse of :meth:`to_dict`."""
        return cls(data["piece_id"], data["error_class"], data["reason"])


@dataclass(frozen=True)
class PartManifest:
    """One part of a split (``train``, ``valid``, ``test``, ...).

    Attributes
    ----------
    name : str
        Part name (file prefix).
    role : str
        Split role whose performances the pieces carry.
    files : tuple of ShardFile
        The shard files in order.
    pieces : tuple of PieceSummary
        Written pieces in split order.
    missing : tuple of MissingPiece
        Pieces of the split that were not written.
    """

    name: str
    role: str
    files: tuple[ShardFile, ...]
    pieces: tuple[PieceSummary, ...]
    missing: tuple[MissingPiece, ...]

    @property
    def counts(self) -> Counts:
        """Totals over the written pieces."""
        return Counts.total([p.counts for p in self.pieces])

    def piece(self, piece_id: str) -> PieceSummary:
        """Return the summary of a written piece."""
        for summary in self.pieces:
            if summary.piece_id == piece_id:
                return summary
        raise KeyError(f"part {self.name!r} has no piece {piece_id!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the part as a JSON-friendly dict (with its totals)."""
        return {
            "name": self.name,
            "role": self.role,
            "counts": self.counts.to_dict(),
            "files": [f.to_dict() for f in self.files],
            "pieces": [p.to_dict() for p in self.pieces],
            "missing": [m.to_dict() for m in self.missing],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartManifest:
        """Inverse of :meth:`to_dict` (the totals are recomputed)."""
        return cls(
            data["name"],
            data["role"],
            tuple(ShardFile.from_dict(f) for f in data["files"]),
            tuple(PieceSummary.from_dict(p) for p in data["pieces"]),
            tuple(MissingPiece.from_dict(m) for m in data["missing"]),
        )


@dataclass(frozen=True)
class Manifest:
    """``<out_dir>/<split>/manifest.json``: what a split's shards hold.

    Attributes
    ----------
    split : str
        Split name (directory name).
    key : str
        Hash of the split's content, its inputs' cache keys, the settings and
        the format version; an unchanged key means nothing to rewrite.
    max_shard_bytes : int
        The size bound the shards were cut with.
    build_info : dict
        Tool versions and settings, as stored in every shard.
    parts : tuple of PartManifest
        In the order given to :func:`write_shards` (``part_order`` in the
        JSON document, whose ``parts`` maps name to part).
    format_version : int
        :data:`FORMAT_VERSION`.
    """

    split: str
    key: str
    max_shard_bytes: int
    build_info: dict[str, Any]
    parts: tuple[PartManifest, ...]
    format_version: int = FORMAT_VERSION

    def part(self, name: str) -> PartManifest:
        """Return the part called ``name``."""
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(f"split {self.split!r} has no part {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as the JSON document written to ``manifest.json``."""
        return {
            "format_name": MANIFEST_FORMAT_NAME,
            "format_version": self.format_version,
            "shard_format": {"format_name": FORMAT_NAME, "format_version": FORMAT_VERSION},
            "split": self.split,
            "key": self.key,
            "max_shard_bytes": self.max_shard_bytes,
            "build_info": self.build_info,
            "part_order": [p.name for p in self.parts],
            "parts": {p.name: p.to_dict() for p in self.parts},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Read a manifest document; raise :class:`FormatError` on another format."""
        if data.get("format_name") != MANIFEST_FORMAT_NAME:
            raise FormatError(f"not a {MANIFEST_FORMAT_NAME} document")
        if data.get("format_version") != FORMAT_VERSION:
            raise FormatError(
                f"manifest format_version {data.get('format_version')}, expected {FORMAT_VERSION}"
            )
        return cls(
            split=data["split"],
            key=data["key"],
            max_shard_bytes=int(data["max_shard_bytes"]),
            build_info=dict(data["build_info"]),
            parts=tuple(PartManifest.from_dict(data["parts"][name]) for name in data["part_order"]),
            format_version=int(data["format_version"]),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read ``manifest.json``."""
        return cls.from_dict(read_json(path))
