"""In-memory records of one built piece, as the shards store and return it.

The shard writer (:mod:`msmd_builder.stages.shards`) serializes a :class:`PieceRecord`
and its reader gives one back, field for field; training-pair extraction
(:mod:`msmd_builder.dataset.pairs`) and the trainer consume nothing else.  Keeping the
record here, apart from both, lets every consumer be written and tested against
the same small contract.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from msmd_builder.core.tables import MEASURE_DTYPE, PERFORMED_MEASURE_DTYPE

__all__ = ["PerformanceRecord", "PieceRecord"]


def _no_measures() -> np.ndarray:
    return np.zeros(0, dtype=MEASURE_DTYPE)


def _no_measure_occurrences() -> np.ndarray:
    return np.zeros(0, dtype=PERFORMED_MEASURE_DTYPE)


@dataclass(frozen=True)
class PerformanceRecord:
    """One performance of a piece: synthesized, or a recording aligned to it.

    Attributes
    ----------
    performance_id : str
        ``<piece_id>__tempo-<1000 * ratio>__<soundfont>[__humanized]``, or
        ``<piece_id>__recording-<name>`` for a recording.
    plan : dict
        :meth:`msmd_builder.stages.perform.plans.PerformancePlan.to_dict` of the plan that made it;
        a recording's has soundfont ``"recording"``, its measured tempo ratio
        and a ``"recording"`` entry (file, alignment method, playing order, cost).
    spectrogram : np.ndarray [shape=(92, n_frames), dtype=float32]
        MSMD's log-frequency spectrogram at 20 frames per second.
    events : np.ndarray [dtype=PERFORMED_EVENT_DTYPE]
        Note events with ``onset_sec``/``offset_sec`` in this performance's
        seconds; ``notehead_id`` links each to a row of the piece's noteheads.
    onset_frame : np.ndarray [shape=(n_events,), dtype=int64]
        Spectrogram frame of each event's onset (``ceil(onset_sec * 20)``).
    duration_sec : float
        Length of the audio.
    confidence : np.ndarray or None
        A recording's per-note alignment confidence in [0, 1]; None for a
        synthesized performance (whose times are exact).
    measures : np.ndarray [dtype=PERFORMED_MEASURE_DTYPE]
        Every measure occurrence as this performance plays it, in its
        seconds and spectrogram frames (a recording: see
        :func:`msmd_builder.stages.perform.measures.recording_measures`).
    """

    performance_id: str
    plan: dict[str, Any]
    spectrogram: np.ndarray
    events: np.ndarray
    onset_frame: np.ndarray
    duration_sec: float
    confidence: np.ndarray | None = None
    measures: np.ndarray = field(default_factory=_no_measure_occurrences)

    @property
    def is_recording(self) -> bool:
        """Whether this performance is an aligned recording (its times are estimates)."""
        return "recording" in self.plan

    @classmethod
    def from_performance(
        cls, data: Mapping[str, Any], measures: np.ndarray | None = None
    ) -> PerformanceRecord:
        """Build a record from :func:`msmd_builder.stages.perform.npz.load_performance` output.

        ``measures`` are the performance's measure occurrences
        (:func:`msmd_builder.stages.perform.measures.performance_measures`);
        none when not given.
        """
        return cls(
            performance_id=str(data["performance_id"]),
            plan=json.loads(data["plan_json"]),
            spectrogram=np.ascontiguousarray(data["spectrogram"], dtype=np.float32),
            events=data["events"],
            onset_frame=np.asarray(data["onset_frame"], dtype=np.int64),
            duration_sec=float(data["duration_sec"]),
            confidence=(
                np.asarray(data["confidence"], dtype=np.float32) if "confidence" in data else None
            ),
            measures=_no_measure_occurrences() if measures is None else measures,
        )


@dataclass(frozen=True)
class PieceRecord:
    """Everything a trainer needs of one piece.

    Attributes
    ----------
    piece_id : str
        Corpus id of the piece.
    metadata : dict
        Title, composer, opus, licence, source file and the like (JSON-friendly).
    page_keys : np.ndarray [shape=(n_pages, 2), dtype=int16]
        ``(book, page)`` of each entry of ``pages``, in reading order.
    pages : list of np.ndarray [dtype=uint8]
        Grayscale page images (height x width, 255 = white).
    systems : np.ndarray [dtype=msmd_builder.core.tables.SYSTEM_DTYPE]
        Staff systems with their boxes in points and page pixels.
    noteheads : np.ndarray [dtype=msmd_builder.core.tables.NOTEHEAD_DTYPE]
        Every notehead; ``notehead_id`` equals the row index.
    performed : np.ndarray [dtype=PERFORMED_EVENT_DTYPE]
        Performed note events at the score's own tempo, in playing order.
    performances : list of PerformanceRecord
        The synthesized performances kept for this piece's split role.
    measures : np.ndarray [dtype=msmd_builder.core.tables.MEASURE_DTYPE]
        Every measure box as printed; ``measure_id`` equals the row index.
    performed_measures : np.ndarray [dtype=PERFORMED_MEASURE_DTYPE]
        Every measure occurrence at the score's own tempo, in playing order.
    """

    piece_id: str
    metadata: dict[str, Any]
    page_keys: np.ndarray
    pages: list[np.ndarray]
    systems: np.ndarray
    noteheads: np.ndarray
    performed: np.ndarray
    performances: list[PerformanceRecord] = field(default_factory=list)
    measures: np.ndarray = field(default_factory=_no_measures)
    performed_measures: np.ndarray = field(default_factory=_no_measure_occurrences)

    def page_index(self, book: int, page: int) -> int:
        """Return the position in :attr:`pages` of page ``page`` of PDF ``book``."""
        hits = np.flatnonzero((self.page_keys[:, 0] == book) & (self.page_keys[:, 1] == page))
        if hits.size != 1:
            raise KeyError(f"{self.piece_id}: no page ({book}, {page})")
        return int(hits[0])
