"""Stage ``shards``: split-defined HDF5 shards of built pieces and their manifest.

Reads what the earlier stages left in the work directory for each piece of a
split (page PNGs, ``geometry.npz``, ``alignment.npz``, ``perform.json`` and the
performance files) through the built-piece reader
(:class:`~msmd_builder.dataset.built.BuiltPiece`), gathers it into a
:class:`~msmd_builder.core.records.PieceRecord` and writes::

    <out_dir>/<split>/<part>-00000.h5     pieces of the part, in split order
    <out_dir>/<split>/<part>-00001.h5     (a new file when the size bound is reached)
    <out_dir>/<split>/manifest.json       counts and checksums, written last

HDF5 layout of one shard (``format_name = "msmd-builder/shard"``,
``format_version = 2``; every group, dataset and attribute is described in
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
        measures                        MEASURE_DTYPE (n_boxes,)
        performed_measures              PERFORMED_MEASURE_DTYPE (n_occurrences,), score seconds
        performances/<performance_id>/  attrs: performance_id, plan_json, duration_sec
            spectrogram                 float32 (92, n_frames)
            events                      PERFORMED_EVENT_DTYPE (n_events,), performance seconds
            onset_frame                 int64 (n_events,)
            measures                    PERFORMED_MEASURE_DTYPE (n_occurrences,), perf. seconds
            confidence                  float32 (n_events,), recordings only

Every dataset carries a ``sha256`` attribute (of its C-order bytes) and is
written with ``track_times=False``, fixed chunk shapes and gzip settings, in a
fixed order, with the file format pinned to HDF5 1.10 objects, so the same
inputs give the same bytes.  A piece is first written, once per role, to its
own HDF5 file in the work directory (``packed/<role>.h5``, cached like a
stage, :func:`pack_pieces` does this on worker processes), which measures
its compressed size, and then copied (compressed chunks as they are) into the
shard it fits in; a piece never spans two files.
Each shard is written under a temporary name and renamed, and the manifest is
removed before and written after the shards, so a killed build leaves either
the previous complete split or no manifest at all.

Reading needs only h5py and numpy: :func:`msmd_builder.dataset.open_split` and
:func:`msmd_builder.dataset.open_shard`.
Training pairs (sheet snippet, spectrogram excerpt) are cut by
:mod:`msmd_builder.dataset.pairs` from the records these return.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from msmd_builder.core.cache import (
    StageCache,
    atomic_path,
    atomic_write_json,
    output_sizes,
    read_json,
    sha256_file,
    sized_outputs,
    stable_key,
)
from msmd_builder.core.errors import ConfigError, NotBuiltError
from msmd_builder.core.records import PieceRecord
from msmd_builder.core.workdir import PieceDir, WorkDir
from msmd_builder.dataset.built import BuiltPiece, check_role, index_by_id, piece_metadata
from msmd_builder.dataset.manifest import (
    _METADATA_ATTRS,
    _SHARD_FILE,
    DEFAULT_MAX_SHARD_BYTES,
    FORMAT_NAME,
    FORMAT_VERSION,
    GZIP_LEVEL,
    LIBVER,
    MANIFEST_FILE,
    MANIFEST_FORMAT_NAME,
    PAGE_CHUNK_ROWS,
    PIECE_SLACK_BYTES,
    ROLES,
    SPECTROGRAM_CHUNK_FRAMES,
    TABLE_CHUNK_ROWS,
    Counts,
    Manifest,
    MissingPiece,
    PartManifest,
    PieceSummary,
    ShardFile,
    _check_name,
    array_sha256,
    piece_checksum,
)

__all__ = ["write_shards", "pack_pieces", "part_role"]

#: ``format_name`` of a packed piece's record (``packed/<role>.json``).
PACK_FORMAT = "msmd-builder/packed-piece"
PACK_VERSION = 1


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
    for name in ("systems", "noteheads", "performed", "measures", "performed_measures"):
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
        _put(sub, "measures", perf.measures, chunks=_table_chunks(perf.measures))
        if perf.confidence is not None:
            confidence = np.asarray(perf.confidence, dtype=np.float32)
            _put(sub, "confidence", confidence, chunks=_table_chunks(confidence))


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
    """One piece packed for a role: its summary, its file and compressed size, ready to copy."""

    counts: Counts
    content_sha256: str
    piece_id: str
    path: Path
    nbytes: int


def _layout() -> list[Any]:
    """Return the storage settings every dataset is written with (part of the cache keys)."""
    return [LIBVER, GZIP_LEVEL, PAGE_CHUNK_ROWS, SPECTROGRAM_CHUNK_FRAMES, TABLE_CHUNK_ROWS]


def _pack(planned: _Planned, empty: int) -> _Blob:
    """Return the piece's group for its role, compressed once and cached in its folder.

    The group is written to ``packed/<role>.h5`` with the format's fixed
    settings; every split that holds the piece in that role copies it from
    there, compressed chunks as they are (``H5Ocopy``), so a piece is
    compressed once per role however many splits hold it, and a rebuild whose
    splits changed compresses nothing again.

    Raises
    ------
    NotBuiltError
        The piece lacks an output its role needs.
    """
    piece_dir: PieceDir = planned.piece.piece_dir
    role = planned.role
    entry = StageCache.for_document(
        piece_dir.packed_record(role),
        {
            "stage": "pack",
            "format_version": FORMAT_VERSION,
            "piece": planned.key_document(),
            "layout": _layout(),
            "writer": _writer_versions(),
        },
        format_name=PACK_FORMAT,
        format_version=PACK_VERSION,
    )
    path = piece_dir.packed_piece(role)
    record = entry.lookup(lambda r: sized_outputs(piece_dir.packed, r["output_sizes"]))
    if record is None:
        piece = planned.load()
        content = piece_checksum(piece)
        with atomic_path(path) as tmp, h5py.File(tmp, "w", libver=LIBVER) as handle:
            _write_piece(handle.create_group(piece.piece_id), piece, content)
        record = entry.store(
            {
                "piece_id": piece.piece_id,
                "role": role,
                "content_sha256": content,
                "counts": Counts.of(piece).to_dict(),
                "output_sizes": output_sizes(piece_dir.packed, [path.name]),
            }
        )
    return _Blob(
        Counts.from_dict(record["counts"]),
        str(record["content_sha256"]),
        planned.piece_id,
        path,
        max(0, path.stat().st_size - empty),
    )


def part_role(part: str, roles: Mapping[str, str] | None = None) -> str:
    """Return the split role whose performances a part carries (``test`` for other names)."""
    if roles is not None and part in roles:
        role = roles[part]
    else:
        role = part if part in ROLES else "test"
    check_role(role)
    return role


@dataclass(frozen=True)
class _Planned:
    """A built piece bound for a part: where it is, its role and its metadata."""

    piece: BuiltPiece
    role: str
    metadata: dict[str, Any]

    @property
    def piece_id(self) -> str:
        return self.piece.piece_id

    def key_document(self) -> dict[str, Any]:
        return self.piece.key_document(self.role, self.metadata)

    def load(self) -> PieceRecord:
        return self.piece.record(self.role, metadata=self.metadata)


def _manifest_record(path: Path) -> dict[str, Any]:
    """Read a manifest as a cache record (its ``key`` is the cache key)."""
    document = dict(read_json(path))
    document["cache_key"] = document.get("key")
    return document


def _manifest_is_current(split_dir: Path, key: str) -> Manifest | None:
    """Return the split's manifest when its key matches and its shards have their sizes."""
    cache = StageCache(split_dir / MANIFEST_FILE, MANIFEST_FORMAT_NAME, FORMAT_VERSION, key)
    hit = cache.lookup(
        lambda record: [
            (split_dir / shard["file"], shard["size"])
            for part in record["parts"].values()
            for shard in part["files"]
        ],
        reader=_manifest_record,
    )
    return Manifest.from_dict(hit) if hit is not None else None


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
    inputs: Sequence[_Planned | MissingPiece],
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
                blob = _pack(item, empty)
            except NotBuiltError as exc:
                missing.append(MissingPiece(item.piece_id, exc.error_class, exc.reason))
                continue
            yield blob

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
                    with h5py.File(blob.path, "r") as packed:
                        shard.copy(packed[blob.piece_id], group, name=blob.piece_id)
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
    entries = index_by_id(WorkDir(work))

    plan: list[tuple[str, str, list[_Planned | MissingPiece]]] = []
    for part, ids in parts.items():
        role = part_role(part, roles)
        items: list[_Planned | MissingPiece] = []
        for piece_id in ids:
            try:
                entry = entries.get(piece_id)
                if entry is None:
                    raise NotBuiltError(piece_id, "not in the corpus index (index.csv)")
                planned = _Planned(
                    BuiltPiece.open(WorkDir(work).piece(piece_id)),
                    role,
                    piece_metadata(entry, role),
                )
                planned.key_document()  # the role's performances must be listed
                items.append(planned)
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
            "layout": [*_layout(), PIECE_SLACK_BYTES],
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


def _pack_one(work_dir: str, piece_id: str, role: str, metadata: dict[str, Any]) -> bool:
    """Pack one piece for one role (in a worker process); a piece not built is left alone."""
    try:
        piece = BuiltPiece.open(WorkDir(Path(work_dir)).piece(piece_id))
        _pack(_Planned(piece, role, metadata), _empty_size())
    except NotBuiltError:
        return False  # write_shards lists it among the part's missing pieces
    return True


def pack_pieces(
    splits: Sequence[Mapping[str, Sequence[str]]],
    *,
    work_dir: str | os.PathLike[str],
    workers: int = 1,
) -> int:
    """Pack every (piece, role) that the splits' parts hold, on ``workers`` processes.

    :func:`write_shards` packs what is missing itself, one piece after the
    other in the calling process; a dataset build packs first, in parallel,
    so that writing the shards only copies compressed groups.

    Parameters
    ----------
    splits : sequence of mapping
        Each split's parts: part name -> piece ids (the role of a part named
        other than train, valid or test is ``test``, as in :func:`write_shards`).
    work_dir : path-like
        The build's work directory.
    workers : int
        Worker processes; 1 packs in this process.

    Returns
    -------
    int
        The number of (piece, role) pairs packed now or found packed (a piece
        that is not built is left to :func:`write_shards` to report).
    """
    from concurrent.futures import ProcessPoolExecutor

    entries = index_by_id(WorkDir(Path(work_dir)))
    wanted = sorted(
        {
            (piece_id, part_role(part, None))
            for parts in splits
            for part, ids in parts.items()
            for piece_id in ids
            if piece_id in entries
        }
    )
    jobs = [
        (str(work_dir), piece_id, role, piece_metadata(entries[piece_id], role))
        for piece_id, role in wanted
    ]
    if workers <= 1 or len(jobs) <= 1:
        return sum(_pack_one(*job) for job in jobs)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(_pack_one, *zip(*jobs, strict=True), chunksize=4))
