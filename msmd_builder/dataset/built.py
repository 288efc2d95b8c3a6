"""The one reader of a built piece in a work directory.

The shard writer, the trainer (:func:`msmd_builder.train.data.piece_from_work_dir`)
and the HTML viewer all read a piece's stage outputs through :class:`BuiltPiece`,
so a missing or stale file is the same clear :class:`~msmd_builder.core.errors.NotBuiltError`
wherever it is found, naming the file relative to the work directory::

    piece = BuiltPiece.open(PieceDir.of(work_dir, piece_id))   # records checked
    record = piece.record("train", metadata=...)               # PieceRecord

What it reads: ``score/score.json`` (pages), the page PNGs, ``score/geometry.npz``
(noteheads, systems, measures), ``align/align.json``, ``align/alignment.npz``
(performed notes and measure occurrences) and, when performances are asked
for, ``perform/perform.json`` and the performance files, each checked against
the cache key ``perform.json`` records for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from msmd_builder.core.cache import read_json
from msmd_builder.core.errors import ConfigError, FormatError, NotBuiltError
from msmd_builder.core.records import PerformanceRecord, PieceRecord
from msmd_builder.core.workdir import PieceDir, WorkDir
from msmd_builder.dataset.manifest import ROLES

__all__ = ["BuiltPiece", "piece_metadata", "collect_piece", "check_role", "index_by_id"]


def piece_metadata(entry: Any, role: str) -> dict[str, Any]:
    """Return the metadata the shards store for a piece, from its corpus-index entry."""
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


@dataclass(frozen=True)
class BuiltPiece:
    """A piece's stage records, read and checked for completeness.

    Attributes
    ----------
    piece_dir : PieceDir
        The piece's work folder.
    score : dict
        ``score/score.json`` (pages, cache key).
    align : dict
        ``align/align.json`` (statistics, cache key).
    perform : dict or None
        ``perform/perform.json`` (roles, performances), None when the piece has
        no perform stage output (a build ``--until align``).
    """

    piece_dir: PieceDir
    score: dict[str, Any]
    align: dict[str, Any]
    perform: dict[str, Any] | None

    @property
    def piece_id(self) -> str:
        """The piece."""
        return self.piece_dir.piece_id

    def _missing(self, path: Path, what: str = "is missing") -> NotBuiltError:
        return NotBuiltError(self.piece_id, f"{self.piece_dir.relative(path)} {what}")

    @classmethod
    def open(cls, piece_dir: PieceDir, *, need_performances: bool = True) -> BuiltPiece:
        """Read a piece's records and check that the files they name exist.

        Parameters
        ----------
        piece_dir : PieceDir
            The piece's work folder.
        need_performances : bool
            Require the perform stage's output (its index and every file).

        Raises
        ------
        NotBuiltError
            A record or a file is missing, or was written by another version of
            the stages; the message names it.
        """
        from msmd_builder.stages.align.stage import RECORD_FORMAT as ALIGN_FORMAT
        from msmd_builder.stages.perform.stage import RECORD_FORMAT as PERFORM_FORMAT
        from msmd_builder.stages.score import RECORD_FORMAT as SCORE_FORMAT

        probe = cls(piece_dir, {}, {}, None)

        def record(path: Path, format_name: str) -> dict[str, Any]:
            if not path.is_file():
                raise probe._missing(path)
            try:
                document = read_json(path)
            except (OSError, ValueError) as exc:
                raise probe._missing(path, f"is unreadable ({exc})") from exc
            if document.get("format_name") != format_name:
                raise probe._missing(
                    path, "was written by another version of msmd-builder: build the piece again"
                )
            return document

        score = record(piece_dir.score_record, SCORE_FORMAT)
        align = record(piece_dir.align_record, ALIGN_FORMAT)
        perform = None
        if need_performances or piece_dir.perform_record.is_file():
            perform = record(piece_dir.perform_record, PERFORM_FORMAT)
        piece = cls(piece_dir, score, align, perform)
        needed = [piece_dir.geometry, piece_dir.alignment, *piece.page_paths()]
        if perform is not None:
            needed += [piece_dir.perform / p["file"] for p in piece.listed_performances()]
        for path in needed:
            if not path.is_file():
                raise piece._missing(path)
        return piece

    def page_paths(self) -> list[Path]:
        """Return the page images, in page order."""
        return [self.piece_dir.score / page["path"] for page in self.score["pages"]]

    def listed_performances(self) -> list[dict[str, Any]]:
        """Return every performance ``perform.json`` lists: synthesized ones, then recordings."""
        from msmd_builder.stages.perform.listing import listed_recordings

        if self.perform is None:
            return []
        return [*self.perform["performances"], *listed_recordings(self.perform)]

    def performance_entries(self, role: str | None = None) -> list[dict[str, Any]]:
        """Return ``perform.json``'s entries of one split role (all of them without ``role``).

        Each entry is the record's dict plus ``roles``: the roles that use it.
        Synthesized performances come first, in plan order, then the aligned
        recordings listed for the role (``perform.json``'s ``"recordings"``).

        Raises
        ------
        NotBuiltError
            If the piece has no perform output, no performances of ``role``, or
            the index names a performance it does not list.
        """
        if self.perform is None:
            raise self._missing(self.piece_dir.perform_record)
        roles: dict[str, list[str]] = self.perform.get("roles", {})
        listed = {p["performance_id"]: p for p in self.perform["performances"]}
        if role is None:
            ids = list(listed)  # plan order
        elif role in roles:
            ids = list(roles[role])
        else:
            raise NotBuiltError(
                self.piece_id,
                f"{self.piece_dir.relative(self.piece_dir.perform_record)} has no {role} "
                "performances",
            )
        entries = []
        for performance_id in ids:
            if performance_id not in listed:
                raise NotBuiltError(
                    self.piece_id,
                    f"{self.piece_dir.relative(self.piece_dir.perform_record)} names "
                    f"{performance_id} but does not list it",
                )
            using = [r for r, group in roles.items() if performance_id in group]
            entries.append({**listed[performance_id], "roles": using})
        from msmd_builder.stages.perform.listing import listed_recordings

        for recording in listed_recordings(self.perform):
            if role is None or role in recording.get("roles", []):
                entries.append(recording)
        return entries

    def key_document(self, role: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Return what a piece's shard content depends on (for a split's cache key)."""
        return {
            "piece_id": self.piece_id,
            "role": role,
            "metadata": dict(metadata),
            "score": str(self.score["cache_key"]),
            "align": str(self.align["cache_key"]),
            "performances": [
                [p["performance_id"], str(p["cache_key"])] for p in self.performance_entries(role)
            ],
        }

    def pages(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Return ``(page_keys, pages)``: (book, page) per image and the grayscale images."""
        from PIL import Image

        images = []
        for path in self.page_paths():
            with Image.open(path) as image:
                images.append(np.array(image.convert("L"), dtype=np.uint8))
        keys = np.array(
            [(page["book"], page["page"]) for page in self.score["pages"]], dtype=np.int16
        ).reshape(-1, 2)
        return keys, images

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(noteheads, systems)``."""
        from msmd_builder.stages.score import ScoreResult

        try:
            return ScoreResult.from_dict(self.score).load()
        except FormatError as exc:
            raise self._missing(self.piece_dir.geometry, f"is not usable: {exc}") from exc

    def measures(self) -> np.ndarray:
        """Return the measures table (boxes as printed)."""
        from msmd_builder.stages.score import ScoreResult

        try:
            return ScoreResult.from_dict(self.score).load_measures()
        except FormatError as exc:
            raise self._missing(self.piece_dir.geometry, f"is not usable: {exc}") from exc

    def performed_measures(self) -> np.ndarray:
        """Return the measure occurrences at the score's own tempo."""
        from msmd_builder.stages.align.stage import AlignResult

        try:
            return AlignResult.from_dict(self.align).load_measures()
        except FormatError as exc:
            raise self._missing(self.piece_dir.alignment, f"is not usable: {exc}") from exc

    def performed(self) -> np.ndarray:
        """Return the performed-notes table at the score's own tempo."""
        from msmd_builder.stages.align.stage import AlignResult

        try:
            return AlignResult.from_dict(self.align).load()
        except FormatError as exc:
            raise self._missing(self.piece_dir.alignment, f"is not usable: {exc}") from exc

    def load_performance(
        self, path: str | os.PathLike[str], *, cache_key: str | None, n_events: int
    ) -> dict[str, Any]:
        """Read one performance file, checking its format, key and event count.

        Raises
        ------
        NotBuiltError
            If the file is unreadable, of another format, stale (its key is not
            ``cache_key``) or has not one event per performed note.
        """
        from msmd_builder.stages.perform.npz import load_performance

        path = Path(path)
        shown = self.piece_dir.relative(path) if path.is_relative_to(self.piece_dir.root) else path
        try:
            data = load_performance(path)
        except FormatError as exc:
            raise NotBuiltError(
                self.piece_id, f"{shown} is not a performance file of a known format version"
            ) from exc
        if cache_key is not None and data["cache_key"] != cache_key:
            raise NotBuiltError(
                self.piece_id, f"{shown} is stale (its cache key differs from perform.json's)"
            )
        if "recording_json" in data:
            # A recording plays its own playing order: its notes are some of the piece's.
            if not self._known_notes(data["events"]):
                raise NotBuiltError(
                    self.piece_id,
                    f"{shown} is stale (its notes are not those of align/alignment.npz)",
                )
        elif len(data["events"]) != n_events:
            raise NotBuiltError(
                self.piece_id, f"{shown} is stale (its events do not match align/alignment.npz)"
            )
        return data

    def _known_notes(self, events: np.ndarray) -> bool:
        """Whether every (event, notehead) of ``events`` is one of the performed notes."""
        performed = self.performed()
        known = set(
            zip(performed["event_id"].tolist(), performed["notehead_id"].tolist(), strict=True)
        )
        pairs = zip(events["event_id"].tolist(), events["notehead_id"].tolist(), strict=True)
        return all(pair in known for pair in pairs)

    def record(
        self,
        role: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        performance_files: Iterable[str | os.PathLike[str]] | None = None,
    ) -> PieceRecord:
        """Gather the piece into a :class:`~msmd_builder.core.records.PieceRecord`.

        Parameters
        ----------
        role : {'train', 'valid', 'test'} or None
            Whose performances to take, in ``perform.json`` order; None takes
            every planned performance once.
        metadata : mapping, optional
            Stored as the record's metadata (see :func:`piece_metadata`).
        performance_files : iterable of path-like, optional
            Take these performance files instead (not listed in
            ``perform.json``; checked for format and event count only).
        """
        from msmd_builder.stages.perform.measures import performance_measures, recording_measures
        from msmd_builder.stages.perform.plans import PerformancePlan

        page_keys, pages = self.pages()
        noteheads, systems = self.geometry()
        performed = self.performed()
        score_measures = self.performed_measures()
        # A file's own performance id is perform.json's: its cache key covers the plan.
        if performance_files is not None:
            sources = [(Path(p), None) for p in performance_files]
        else:
            sources = [
                (self.piece_dir.perform / p["file"], str(p["cache_key"]))
                for p in self.performance_entries(role)
            ]
        performances = []
        for path, key in sources:
            data = self.load_performance(path, cache_key=key, n_events=len(performed))
            if "recording_json" in data:
                measures = recording_measures(score_measures, performed, data["events"])
            else:
                plan = PerformancePlan.from_dict(json.loads(data["plan_json"]))
                measures = performance_measures(score_measures, plan, performed)
            performances.append(PerformanceRecord.from_performance(data, measures))
        return PieceRecord(
            piece_id=self.piece_id,
            metadata=dict(metadata or {}),
            page_keys=page_keys,
            pages=pages,
            systems=systems,
            noteheads=noteheads,
            performed=performed,
            performances=performances,
            measures=self.measures(),
            performed_measures=score_measures,
        )


def collect_piece(
    work_dir: str | os.PathLike[str],
    piece_id: str,
    *,
    role: str,
    entry: Any = None,
) -> PieceRecord:
    """Gather one built piece of a work directory as its shards store it.

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
        the metadata (:func:`piece_metadata`).

    Raises
    ------
    NotBuiltError
        If the piece is not in the index or a file of an earlier stage is
        missing or stale; the message names it.
    ConfigError
        If ``role`` is unknown or the work directory has no index.
    """
    check_role(role)
    work = WorkDir(Path(work_dir))
    if entry is None:
        entry = index_by_id(work).get(piece_id)
        if entry is None:
            raise NotBuiltError(piece_id, "not in the corpus index (index.csv)")
    piece = BuiltPiece.open(work.piece(piece_id))
    return piece.record(role, metadata=piece_metadata(entry, role))


def check_role(role: str) -> None:
    """Raise :class:`ConfigError` unless ``role`` is a split role."""
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")


def index_by_id(work: WorkDir) -> dict[str, Any]:
    """Return the work directory's corpus index as piece id -> entry."""
    from msmd_builder.stages.corpus.index import read_index

    if not work.index.is_file():
        raise ConfigError(f"{work.index} does not exist: run `msmd-build corpus scan` first")
    return {entry.piece_id: entry for entry in read_index(work.index)}
