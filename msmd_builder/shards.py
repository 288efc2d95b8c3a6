"""Stage ``shards``: split-defined HDF5 shards of built pieces, their manifest and reader.

Reads what the earlier stages left in the work directory for each piece of a
split (page PNGs, ``geometry.npz``, ``alignment.npz``, ``perform.json`` and the
performance files), gathers it into a :class:`~msmd_builder.records.PieceRecord`
(:func:`collect_piece`) and writes::

    <out_dir>/<split>/<part>-00000.h5     pieces of the part, in split order
    <out_dir>/<split>/<part>-00001.h5     (a new file when the size bound is reached)
    <out_dir>/<split>/manifest.json       counts and checksums, written last

HDF5 layout of one shard (``format_name = "msmd-builder/shard"``,
``format_version = 1``; every group, dataset and attribute is described in
``docs/format.md``)::

    /                                   attrs: format_name, format_version, split, part,
                                        role, shard_index, piece_ids, build_info_json
    /pieces/<piece_id>/                 attrs: piece_id, role, title, composer, opus,
                                        license, style, source_file, source_sha256,
                                        metadata_json, content_sha256, performance_ids
        page_keys                       int16 (n_pages, 2): (book, page)
        pages/0000, 0001, ...           uint8 (height_px, width_px), 255 = white
        systems                         SYSTEM_DTYPE (n_systems,)
        noteheads                       NOTEHEAD_DTYPE (n_noteheads,)
        performed                       PERFORMED_EVENT_DTYPE (n_events,), score seconds
        performances/<performance_id>/  attrs: performance_id, plan_json, duration_sec
            spectrogram                 float32 (92, n_frames)
            events                      PERFORMED_EVENT_DTYPE (n_events,), performance seconds
            onset_frame                 int64 (n_events,)

Every dataset carries a ``sha256`` attribute (of its C-order bytes) and is
written with ``track_times=False``, fixed chunk shapes and gzip settings, in a
fixed order, with the file format pinned to HDF5 1.10 objects, so the same
inputs give the same bytes.  A piece is first written to an in-memory HDF5
file, which measures its compressed size, and then copied (compressed chunks
as they are) into the shard it fits in; a piece never spans two files.
Each shard is written under a temporary name and renamed, and the manifest is
removed before and written after the shards, so a killed build leaves either
the previous complete split or no manifest at all.

Reading needs only h5py and numpy: :func:`open_split` and :func:`open_shard`.
Training pairs (sheet snippet, spectrogram excerpt) are cut by
:mod:`msmd_builder.pairs` from the records these return.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from msmd_builder.cache import atomic_path, atomic_write_json, read_json, sha256_file, stable_key
from msmd_builder.errors import ConfigError, NotBuiltError, VerificationError
from msmd_builder.records import PerformanceRecord, PieceRecord

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_FORMAT_NAME",
    "MANIFEST_FILE",
    "DEFAULT_MAX_SHARD_BYTES",
    "ROLES",
    "NotBuiltError",
    "collect_piece",
    "array_sha256",
    "piece_checksum",
    "Counts",
    "ShardFile",
    "PieceSummary",
    "MissingPiece",
    "PartManifest",
    "Manifest",
    "write_shards",
    "ShardReader",
    "SplitReader",
    "open_shard",
    "open_split",
]

#: ``format_name`` attribute of every shard file.
FORMAT_NAME = "msmd-builder/shard"
#: ``format_version`` attribute of every shard file and of the manifest; bump on layout changes.
FORMAT_VERSION = 1
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


# --------------------------------------------------------------------------------------
# Collecting a piece from the work directory
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PieceInputs:
    """Where a built piece's files are and the cache keys that identify their content."""

    piece_id: str
    role: str
    metadata: dict[str, Any]
    piece_dir: Path
    pages: tuple[dict[str, Any], ...]
    performances: tuple[tuple[str, str, str], ...]  # (performance_id, file, cache_key)
    score_key: str
    align_key: str

    def key_document(self) -> dict[str, Any]:
        """Return what the shard content of this piece depends on, for the split's key."""
        return {
            "piece_id": self.piece_id,
            "role": self.role,
            "metadata": self.metadata,
            "score": self.score_key,
            "align": self.align_key,
            "performances": [[pid, key] for pid, _, key in self.performances],
        }


def _check_name(kind: str, name: str) -> None:
    if not _SAFE_NAME.match(name):
        raise ConfigError(
            f"{kind} {name!r} must start with a letter or digit and contain only "
            "letters, digits, '.', '_' and '-'"
        )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")


def _read_entries(work_dir: Path) -> dict[str, Any]:
    from msmd_builder.corpus import read_index

    index = work_dir / "index.csv"
    if not index.is_file():
        raise ConfigError(f"{index} does not exist: run `msmd-build corpus scan` first")
    return {entry.piece_id: entry for entry in read_index(index)}


def _metadata(entry: Any, role: str) -> dict[str, Any]:
    return {
        "role": role,
        "title": entry.title,
        "composer": entry.composer,
        "opus": entry.opus,
        "license": entry.license,
        "style": entry.style,
        "instrument": entry.instrument,
        "source_file": entry.main_file,
        "source_sha256": entry.source_sha256,
        "lilypond_version": entry.lilypond_version,
    }


def _locate(work_dir: Path, piece_id: str, role: str, entry: Any) -> _PieceInputs:
    """Find a built piece's files and cache keys; raise :class:`NotBuiltError` if any is missing."""
    piece_dir = work_dir / "pieces" / piece_id

    def need(relative: str) -> Path:
        path = piece_dir / relative
        if not path.is_file():
            raise NotBuiltError(piece_id, f"pieces/{piece_id}/{relative} is missing")
        return path

    score = read_json(need("score/score.json"))
    need("score/geometry.npz")
    for page in score["pages"]:
        need(f"score/{page['path']}")
    align = read_json(need("align/align.json"))
    need("align/alignment.npz")
    perform = read_json(need("perform/perform.json"))
    if role not in perform.get("roles", {}):
        raise NotBuiltError(
            piece_id, f"pieces/{piece_id}/perform/perform.json has no {role} performances"
        )
    listed = {p["performance_id"]: p for p in perform["performances"]}
    performances = []
    for performance_id in perform["roles"][role]:
        if performance_id not in listed:
            raise NotBuiltError(
                piece_id,
                f"pieces/{piece_id}/perform/perform.json names {performance_id} "
                "but does not list it",
            )
        item = listed[performance_id]
        need(f"perform/{item['file']}")
        performances.append((performance_id, str(item["file"]), str(item["cache_key"])))
    return _PieceInputs(
        piece_id=piece_id,
        role=role,
        metadata=_metadata(entry, role),
        piece_dir=piece_dir,
        pages=tuple(score["pages"]),
        performances=tuple(performances),
        score_key=str(score["cache_key"]),
        align_key=str(align["cache_key"]),
    )


def _load(inputs: _PieceInputs) -> PieceRecord:
    from PIL import Image

    from msmd_builder.perform import load_performance

    piece_id, folder = inputs.piece_id, inputs.piece_dir
    pages = []
    for page in inputs.pages:
        with Image.open(folder / "score" / page["path"]) as image:
            pages.append(np.array(image.convert("L"), dtype=np.uint8))
    page_keys = np.array(
        [(page["book"], page["page"]) for page in inputs.pages], dtype=np.int16
    ).reshape(-1, 2)
    with np.load(folder / "score" / "geometry.npz", allow_pickle=False) as data:
        noteheads, systems = data["noteheads"], data["systems"]
    with np.load(folder / "align" / "alignment.npz", allow_pickle=False) as data:
        performed = data["performed"]
    performances = []
    # The file's own performance id is perform.json's: its cache key (checked below)
    # covers the plan that names it.
    for _, file_name, key in inputs.performances:
        relative = f"pieces/{piece_id}/perform/{file_name}"
        try:
            data = load_performance(folder / "perform" / file_name)
        except ConfigError as exc:  # its message names the absolute path; keep ours relative
            raise NotBuiltError(
                piece_id, f"{relative} is not a performance file of a known format version"
            ) from exc
        if data["cache_key"] != key:
            raise NotBuiltError(
                piece_id, f"{relative} is stale (its cache key differs from perform.json's)"
            )
        if len(data["events"]) != len(performed):
            raise NotBuiltError(
                piece_id, f"{relative} is stale (its events do not match align/alignment.npz)"
            )
        performances.append(PerformanceRecord.from_performance(data))
    return PieceRecord(
        piece_id=piece_id,
        metadata=inputs.metadata,
        page_keys=page_keys,
        pages=pages,
        systems=systems,
        noteheads=noteheads,
        performed=performed,
        performances=performances,
    )


def collect_piece(
    work_dir: str | os.PathLike[str],
    piece_id: str,
    *,
    role: str,
    entry: Any = None,
) -> PieceRecord:
    """Gather one built piece from the work directory.

    Parameters
    ----------
    work_dir : path-like
        The build's work directory (``index.csv``, ``pieces/<piece_id>/...``).
    piece_id : str
        The piece.
    role : {'train', 'valid', 'test'}
        Whose performances to take from ``perform/perform.json``.
    entry : PieceEntry, optional
        The piece's corpus-index entry; read from ``<work_dir>/index.csv`` when None.

    Returns
    -------
    PieceRecord
        Pages (grayscale uint8, in the order of ``score.json``), geometry, the
        performed events, the role's performances in ``perform.json`` order and
        the metadata (role, title, composer, opus, license, style, instrument,
        source_file, source_sha256, lilypond_version).

    Raises
    ------
    NotBuiltError
        If the piece is not in the index or a file of an earlier stage is
        missing or stale; the message names it.
    ConfigError
        If ``role`` is unknown or the work directory has no index.
    """
    _check_role(role)
    work = Path(work_dir)
    if entry is None:
        entry = _read_entries(work).get(piece_id)
        if entry is None:
            raise NotBuiltError(piece_id, "not in the corpus index (index.csv)")
    return _load(_locate(work, piece_id, role, entry))


# --------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------


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
    ]
    for perf in record.performances:
        base = f"performances/{perf.performance_id}"
        arrays += [
            (f"{base}/spectrogram", perf.spectrogram),
            (f"{base}/events", perf.events),
            (f"{base}/onset_frame", perf.onset_frame),
        ]
    return arrays


def piece_checksum(record: PieceRecord) -> str:
    """Content checksum of a piece, independent of how HDF5 lays the bytes out.

    The SHA-256 (:func:`msmd_builder.cache.stable_key`) of a canonical JSON
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


# --------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------


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
        """Read a manifest document; raise :class:`ConfigError` on another format."""
        if data.get("format_name") != MANIFEST_FORMAT_NAME:
            raise ConfigError(f"not a {MANIFEST_FORMAT_NAME} document")
        if data.get("format_version") != FORMAT_VERSION:
            raise ConfigError(
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


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _writer_versions() -> dict[str, str]:
    from msmd_builder import __version__

    return {
        "msmd_builder": __version__,
        "h5py": h5py.version.version,
        "hdf5": h5py.version.hdf5_version,
        "numpy": np.__version__,
    }


def _put(
    group: h5py.Group,
    name: str,
    array: np.ndarray,
    *,
    chunks: tuple[int, ...] | None,
    shuffle: bool = True,
) -> None:
    """Write one dataset with the fixed settings of the format and its ``sha256``."""
    data = np.ascontiguousarray(array)
    options: dict[str, Any] = {"track_times": False}
    if chunks is not None and data.size > 0:
        options.update(
            chunks=chunks, compression="gzip", compression_opts=GZIP_LEVEL, shuffle=shuffle
        )
    dataset = group.create_dataset(name, data=data, **options)
    dataset.attrs["sha256"] = array_sha256(data)


def _table_chunks(array: np.ndarray) -> tuple[int, ...]:
    return (max(1, min(len(array), TABLE_CHUNK_ROWS)),)


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array(list(values), dtype=h5py.string_dtype())


def _write_piece(group: h5py.Group, record: PieceRecord, content_sha256: str) -> None:
    """Fill a piece's group; the order of calls is part of the byte-for-byte determinism."""
    metadata = record.metadata
    group.attrs["piece_id"] = record.piece_id
    for name in _METADATA_ATTRS:
        group.attrs[name] = str(metadata.get(name, ""))
    group.attrs["metadata_json"] = json.dumps(metadata, sort_keys=True, ensure_ascii=False)
    group.attrs["content_sha256"] = content_sha256
    group.attrs.create(
        "performance_ids",
        _strings([p.performance_id for p in record.performances]),
        dtype=h5py.string_dtype(),
    )
    _put(group, "page_keys", np.asarray(record.page_keys, dtype=np.int16), chunks=None)
    pages = group.create_group("pages")
    for i, page in enumerate(record.pages):
        height, width = page.shape
        _put(pages, f"{i:04d}", page, chunks=(min(PAGE_CHUNK_ROWS, height), width), shuffle=False)
        pages[f"{i:04d}"].attrs["book"] = int(record.page_keys[i, 0])
        pages[f"{i:04d}"].attrs["page"] = int(record.page_keys[i, 1])
    for name in ("systems", "noteheads", "performed"):
        table = getattr(record, name)
        _put(group, name, table, chunks=_table_chunks(table))
    performances = group.create_group("performances")
    for perf in record.performances:
        sub = performances.create_group(perf.performance_id)
        sub.attrs["performance_id"] = perf.performance_id
        sub.attrs["plan_json"] = json.dumps(perf.plan, sort_keys=True)
        sub.attrs["duration_sec"] = np.float64(perf.duration_sec)
        spectrogram = np.asarray(perf.spectrogram, dtype=np.float32)
        frames = max(1, min(spectrogram.shape[1], SPECTROGRAM_CHUNK_FRAMES))
        _put(sub, "spectrogram", spectrogram, chunks=(spectrogram.shape[0], frames))
        _put(sub, "events", perf.events, chunks=_table_chunks(perf.events))
        onset_frame = np.asarray(perf.onset_frame, dtype=np.int64)
        _put(sub, "onset_frame", onset_frame, chunks=_table_chunks(onset_frame))


_blob_names = itertools.count()


def _memory_file() -> h5py.File:
    """Open an HDF5 file that lives in memory only (core driver, no backing store)."""
    name = f"msmd-shard-piece-{os.getpid()}-{next(_blob_names)}.h5"
    return h5py.File(name, "w", driver="core", backing_store=False, block_size=4096, libver=LIBVER)


def _empty_size() -> int:
    with _memory_file() as handle:
        handle.flush()
        return int(handle.id.get_filesize())


@dataclass
class _Blob:
    """One piece written to memory: its summary and compressed size, ready to copy."""

    counts: Counts
    content_sha256: str
    piece_id: str
    handle: h5py.File
    nbytes: int


def _piece_blob(record: PieceRecord, empty: int) -> _Blob:
    content = piece_checksum(record)
    handle = _memory_file()
    _write_piece(handle.create_group(record.piece_id), record, content)
    handle.flush()
    return _Blob(
        Counts.of(record),
        content,
        record.piece_id,
        handle,
        max(0, int(handle.id.get_filesize()) - empty),
    )


def _part_role(part: str, roles: Mapping[str, str] | None) -> str:
    if roles is not None and part in roles:
        role = roles[part]
    else:
        role = part if part in ROLES else "test"
    _check_role(role)
    return role


def _manifest_is_current(split_dir: Path, key: str) -> Manifest | None:
    path = split_dir / MANIFEST_FILE
    try:
        manifest = Manifest.load(path)
    except (OSError, ValueError, KeyError, ConfigError):
        return None
    if manifest.key != key:
        return None
    for part in manifest.parts:
        for shard in part.files:
            target = split_dir / shard.file
            if not target.is_file() or target.stat().st_size != shard.size:
                return None
    return manifest


def _remove_leftovers(split_dir: Path, keep: set[str]) -> None:
    """Delete shard files no longer listed and temporary files of killed writes."""
    for path in split_dir.iterdir():
        name = path.name
        stale = _SHARD_FILE.match(name) is not None and name not in keep
        temporary = name.endswith(".tmp") and (
            (name.startswith(".") and ".h5." in name) or name.startswith(f".{MANIFEST_FILE}.")
        )
        if (stale or temporary) and path.is_file():
            path.unlink()


def _write_part(
    split: str,
    part: str,
    role: str,
    inputs: Sequence[_PieceInputs | MissingPiece],
    *,
    split_dir: Path,
    max_shard_bytes: int,
    build_info_json: str,
) -> PartManifest:
    missing: list[MissingPiece] = []
    summaries: list[PieceSummary] = []
    files: list[ShardFile] = []
    empty = _empty_size()

    def blobs() -> Iterator[_Blob]:
        for item in inputs:
            if isinstance(item, MissingPiece):
                missing.append(item)
                continue
            try:
                record = _load(item)
            except NotBuiltError as exc:
                missing.append(MissingPiece(item.piece_id, exc.error_class, exc.reason))
                continue
            yield _piece_blob(record, empty)

    pending = blobs()
    blob = next(pending, None)
    index = 0
    while blob is not None:
        name = f"{part}-{index:05d}.h5"
        piece_ids: list[str] = []
        with atomic_path(split_dir / name) as tmp:
            with h5py.File(tmp, "w", libver=LIBVER) as shard:
                shard.attrs["format_name"] = FORMAT_NAME
                shard.attrs["format_version"] = np.int64(FORMAT_VERSION)
                shard.attrs["split"] = split
                shard.attrs["part"] = part
                shard.attrs["role"] = role
                shard.attrs["shard_index"] = np.int64(index)
                shard.attrs["build_info_json"] = build_info_json
                group = shard.create_group("pieces")
                while blob is not None:
                    shard.flush()
                    need = blob.nbytes + PIECE_SLACK_BYTES
                    if piece_ids and shard.id.get_filesize() + need > max_shard_bytes:
                        break
                    shard.copy(blob.handle[blob.piece_id], group, name=blob.piece_id)
                    blob.handle.close()
                    piece_ids.append(blob.piece_id)
                    summaries.append(
                        PieceSummary(blob.piece_id, name, blob.content_sha256, blob.counts)
                    )
                    blob = next(pending, None)
                shard.attrs.create("piece_ids", _strings(piece_ids), dtype=h5py.string_dtype())
        path = split_dir / name
        files.append(ShardFile(name, path.stat().st_size, sha256_file(path), tuple(piece_ids)))
        index += 1
    return PartManifest(part, role, tuple(files), tuple(summaries), tuple(missing))


def write_shards(
    split_name: str,
    parts: Mapping[str, Sequence[str]],
    *,
    work_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    build_info: Mapping[str, Any] | None = None,
    roles: Mapping[str, str] | None = None,
) -> Manifest:
    """Write a split's pieces into HDF5 shards and its manifest.

    Parameters
    ----------
    split_name : str
        Name of the split; the files go to ``<out_dir>/<split_name>/``.
    parts : mapping of str to sequence of str
        Part name (``train``, ``valid``, ``test``, ...) to piece ids, in the
        order the shards store them.
    work_dir : path-like
        The build's work directory.
    out_dir : path-like
        Where split directories go.
    max_shard_bytes : int, optional
        Start a new file when the next piece would take the current one past
        this size (a piece larger than the bound gets a file to itself).
    build_info : mapping, optional
        Tool versions, settings and seed of the build (JSON-friendly); stored
        in every shard and the manifest beside the writer's own versions.
    roles : mapping of str to str, optional
        Split role of parts not named train, valid or test (default ``test``);
        the role decides which performances a piece carries.

    Returns
    -------
    Manifest
        What was written, or the existing manifest when its key is unchanged
        and its files are present with their recorded sizes (nothing is
        rewritten then).

    Raises
    ------
    ConfigError
        Bad names, a piece listed twice in a part, a non-positive size bound,
        or a work directory without an index.
    """
    _check_name("split name", split_name)
    for part, ids in parts.items():
        _check_name("part name", part)
        if len(set(ids)) != len(ids):
            raise ConfigError(f"part {part!r} lists a piece more than once")
    if max_shard_bytes <= 0:
        raise ConfigError(f"max_shard_bytes must be > 0, got {max_shard_bytes}")
    work = Path(work_dir)
    split_dir = Path(out_dir) / split_name
    info = {"shard_writer": _writer_versions(), **dict(build_info or {})}
    entries = _read_entries(work)

    plan: list[tuple[str, str, list[_PieceInputs | MissingPiece]]] = []
    for part, ids in parts.items():
        role = _part_role(part, roles)
        items: list[_PieceInputs | MissingPiece] = []
        for piece_id in ids:
            try:
                entry = entries.get(piece_id)
                if entry is None:
                    raise NotBuiltError(piece_id, "not in the corpus index (index.csv)")
                items.append(_locate(work, piece_id, role, entry))
            except NotBuiltError as exc:
                items.append(MissingPiece(piece_id, exc.error_class, exc.reason))
        plan.append((part, role, items))

    key = stable_key(
        {
            "stage": "shards",
            "format_version": FORMAT_VERSION,
            "split": split_name,
            "max_shard_bytes": max_shard_bytes,
            "build_info": info,
            "layout": [
                LIBVER,
                GZIP_LEVEL,
                PAGE_CHUNK_ROWS,
                SPECTROGRAM_CHUNK_FRAMES,
                TABLE_CHUNK_ROWS,
                PIECE_SLACK_BYTES,
            ],
            "parts": [
                [
                    part,
                    role,
                    [
                        i.to_dict() if isinstance(i, MissingPiece) else i.key_document()
                        for i in items
                    ],
                ]
                for part, role, items in plan
            ],
        }
    )
    current = _manifest_is_current(split_dir, key)
    if current is not None:
        return current

    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / MANIFEST_FILE).unlink(missing_ok=True)
    build_info_json = json.dumps(info, sort_keys=True, ensure_ascii=False, default=str)
    written = tuple(
        _write_part(
            split_name,
            part,
            role,
            items,
            split_dir=split_dir,
            max_shard_bytes=max_shard_bytes,
            build_info_json=build_info_json,
        )
        for part, role, items in plan
    )
    manifest = Manifest(split_name, key, max_shard_bytes, json.loads(build_info_json), written)
    _remove_leftovers(split_dir, {f.file for p in written for f in p.files})
    atomic_write_json(split_dir / MANIFEST_FILE, manifest.to_dict())
    return manifest


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


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
        If the file is not a shard of a known format version.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file = h5py.File(self.path, "r")
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
        """Return one piece, every array as written."""
        if piece_id not in self.piece_ids:
            raise KeyError(f"{self.path.name} has no piece {piece_id!r}")
        return _read_piece_group(self._file["pieces"][piece_id])

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
        """Return the open reader of one of the split's files (opened on first use)."""
        if file_name not in self._shards:
            self._shards[file_name] = ShardReader(self.split_dir / file_name)
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
        VerificationError
            If ``verify`` and the content differs from what the manifest recorded.
        """
        summary = self.manifest.part(part).piece(piece_id)
        record = self.shard(summary.file).read_piece(piece_id)
        if verify and piece_checksum(record) != summary.content_sha256:
            raise VerificationError(
                f"{piece_id} in {summary.file}: content differs from the manifest's checksum"
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
