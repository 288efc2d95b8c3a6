"""Stage ``align``: link every performed note to the notehead that printed it."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from msmd_builder.core.cache import StageCache, load_npz, output_sizes, save_npz, sized_outputs
from msmd_builder.core.errors import (
    NothingToAlignError,
    NotUnrollableError,
    ReadingOrderError,
    RepeatsOutOfStepError,
    VerificationError,
    VoiceOrderError,
)
from msmd_builder.core.tables import PERFORMED_EVENT_DTYPE
from msmd_builder.core.workdir import PieceDir
from msmd_builder.lilypond.logs import (
    LoggedEvent,
    Mark,
    read_marks,
    read_performed_log,
    read_repeats,
)
from msmd_builder.stages.align.jumps import JumpPlan, realize_jumps
from msmd_builder.stages.align.measures import rendered_measure_times
from msmd_builder.stages.align.midi import match_notes, performed_table, read_midi_notes
from msmd_builder.stages.align.order import VoiceOrder, reading_order, voice_order
from msmd_builder.stages.align.timeline import (
    out_of_step,
    score_repeats,
    shared_timeline,
    unroll_score,
)
from msmd_builder.stages.score import ScoreResult, read_geometry

__all__ = [
    "RECORD_FORMAT",
    "ALIGNMENT_FORMAT",
    "ALIGNMENT_VERSION",
    "PieceAlignment",
    "align_rendered",
    "align_tables",
    "ScorePerformance",
    "score_performances",
    "join_scores",
    "AlignSettings",
    "AlignResult",
    "run",
]


@dataclass(frozen=True)
class PieceAlignment:
    """Everything the alignment stage knows about one piece.

    Attributes
    ----------
    noteheads : np.ndarray
        :data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE`, all books, ``notehead_id`` = row.
    systems : np.ndarray
        :data:`~msmd_builder.core.tables.SYSTEM_DTYPE`, all books.
    performed : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE`, one row per MIDI note;
        several scores are played one after the other.
    stats : dict
        Counts (see :func:`align_rendered`).
    """

    noteheads: np.ndarray
    systems: np.ndarray
    performed: np.ndarray
    stats: dict


def align_rendered(
    render_dir: str | Path,
    pdf_files: list[str],
    midi_files: list[str],
    *,
    repeats: str = "unfolded",
) -> PieceAlignment:
    """Align one rendered piece: noteheads of every book with the notes of every MIDI file.

    Parameters
    ----------
    render_dir : path
        The render stage's folder (PDFs, MIDIs and the hooks' tables).
    pdf_files, midi_files : list of str
        Output names in LilyPond's order (see :class:`~msmd_builder.stages.render.RenderResult`).
    repeats : {"unfolded", "timeline", "folded"}
        The mode the piece was rendered in (see :func:`align_tables`).

    Returns
    -------
    PieceAlignment
    """
    noteheads, systems = read_geometry(render_dir, pdf_files)
    performed, stats = align_tables(noteheads, systems, render_dir, midi_files, repeats=repeats)
    return PieceAlignment(noteheads, systems, performed, stats)


@dataclass(frozen=True)
class ScorePerformance:
    """One score's performed notes as the align stage plays them, before written jumps.

    Attributes
    ----------
    score : int
        Index of the score (MIDI file) in the piece.
    table : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE`, the score's own
        times; rendered on the timeline, already unrolled by the score's repeat
        structure (:func:`~msmd_builder.stages.align.timeline.unroll_score`).
    marks : list of Mark
        The score's text marks, scripts and signs (where jumps are written).
    measured_repeat_ids : frozenset of int
        Events inside tremolo or percent repeats.
    match_stats : dict
        :func:`match_notes` counts.
    matched_event_ids : frozenset of int
        Logged events matched to a MIDI note (alone or as a unison).
    pitch_mismatches : int
        Matched pairs whose pitches differ.
    voice_order : VoiceOrder
        :func:`voice_order` of the score's MIDI.
    timeline_repeats : int
        Volta repeats unrolled on the timeline (0 unless rendered on it).
    out_of_step : str
        Rendered unfolded: how LilyPond's MIDI departs from the score's repeat
        structure (:func:`~msmd_builder.stages.align.timeline.out_of_step`), or ``""``.
    unread_structure : str
        Rendered unfolded: why the score's repeat structure was not read, or ``""``.
    """

    score: int
    table: np.ndarray
    marks: list[Mark]
    measured_repeat_ids: frozenset[int]
    match_stats: dict
    matched_event_ids: frozenset[int]
    pitch_mismatches: int
    voice_order: VoiceOrder
    timeline_repeats: int = 0
    out_of_step: str = ""
    unread_structure: str = ""

    def realize_jumps(
        self, table: np.ndarray, noteheads: np.ndarray
    ) -> tuple[np.ndarray, tuple[JumpPlan, ...]]:
        """Realize this score's written jumps in ``table`` (this score's notes, any repeats).

        See :func:`~msmd_builder.stages.align.jumps.realize_jumps`.
        """
        return realize_jumps(
            table,
            self.marks,
            measured_repeat_ids=self.measured_repeat_ids,
            printed_onset_whole=noteheads["onset_whole"],
            printed_grace_whole=noteheads["grace_whole"],
        )


def _score_performances(
    noteheads: np.ndarray, render_dir: str | Path, midi_files: list[str], repeats: str
) -> Iterator[ScorePerformance]:
    """Yield :func:`score_performances` one score at a time (read when asked for)."""
    folder = Path(render_dir)
    event_ids = noteheads["event_id"].tolist()
    log_path = next(iter(sorted(folder.glob("*.msmd-performed.tsv"))), None)
    marks = [m for p in sorted(folder.glob("*.msmd-marks.tsv")) for m in read_marks(p)]
    repeat_rows = [r for p in sorted(folder.glob("*.msmd-repeats.tsv")) for r in read_repeats(p)]
    # Printed moment of each event with one notehead (music the source holds in
    # several places shares its events' ids).
    heads_of_event = Counter(event_ids)
    printed_main = {
        event_id: onset
        for event_id, onset in zip(event_ids, noteheads["onset_whole"].tolist(), strict=True)
        if heads_of_event[event_id] == 1
    }
    log_by_score: dict[int, list[LoggedEvent]] = defaultdict(list)
    for event in read_performed_log(log_path) if log_path else []:
        log_by_score[event.score].append(event)
    notehead_of_event = dict(zip(event_ids, noteheads["notehead_id"].tolist(), strict=True))
    staff_of_event = dict(zip(event_ids, noteheads["staff"].tolist(), strict=True))
    continuation = set(noteheads["event_id"][noteheads["tied"]].tolist())

    for score, midi in enumerate(midi_files):
        events = log_by_score.get(score, [])
        notes = read_midi_notes(folder / midi)
        pairs, unison, stats = match_notes(notes, events, continuation_ids=continuation)
        table = performed_table(
            notes, events, pairs, notehead_of_event=notehead_of_event, staff_of_event=staff_of_event
        )
        voices = np.array(
            [events[pairs[n]].voice if n in pairs else -1 for n in range(len(notes))], dtype=int
        )
        in_voice = voice_order(table, voices, noteheads)
        timeline_repeats = 0
        reason = unread = ""
        if repeats == "timeline":
            timeline = shared_timeline(score_repeats(repeat_rows, score))
            table = unroll_score(table, notes, events, pairs, timeline, folder / midi)
            timeline_repeats = len(timeline.repeats)
        elif repeats == "unfolded":
            # LilyPond's unfolding is kept where it plays the score's repeat
            # structure in every voice.  A structure the table does not describe
            # (\volta in a body) leaves the reading-order check to judge the
            # unfolded MIDI, as before; voices writing different repeats over
            # the same bars have no one playing order (NotUnrollableError).
            try:
                score_volte = score_repeats(repeat_rows, score)
            except NotUnrollableError as exc:
                unread = exc.message
            else:
                reason = out_of_step(events, printed_main, shared_timeline(score_volte))
        matched = {events[i].event_id for i in pairs.values()}
        matched.update(events[i].event_id for i in unison)
        yield ScorePerformance(
            score=score,
            table=table,
            marks=[m for m in marks if m.score == score],
            measured_repeat_ids=frozenset(e.event_id for e in events if e.measured_repeat),
            match_stats=dict(stats.__dict__),
            matched_event_ids=frozenset(matched),
            pitch_mismatches=sum(1 for n, e in pairs.items() if notes[n].pitch != events[e].pitch),
            voice_order=in_voice,
            timeline_repeats=timeline_repeats,
            out_of_step=reason,
            unread_structure=unread,
        )


def score_performances(
    noteheads: np.ndarray,
    render_dir: str | Path,
    midi_files: list[str],
    *,
    repeats: str = "unfolded",
) -> list[ScorePerformance]:
    """Read each score's MIDI and the hooks' tables and link every MIDI note to its event.

    Each score is played as :func:`align_tables` plays it before realizing
    its written jumps: rendered on the timeline, unrolled by the score's
    repeat structure; rendered unfolded, checked against it.

    Parameters
    ----------
    noteheads : np.ndarray
        :data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE` of the piece.
    render_dir : path
        The render stage's folder.
    midi_files : list of str
        MIDI files in LilyPond's order, one per score.
    repeats : {"unfolded", "timeline", "folded"}
        The mode the piece was rendered in.

    Returns
    -------
    list of ScorePerformance
        One per MIDI file.

    Raises
    ------
    NotUnrollableError
        Rendered on the timeline, if a score's repeats do not read into one
        playing order.
    """
    return list(_score_performances(noteheads, render_dir, midi_files, repeats))


def join_scores(tables: list[np.ndarray]) -> np.ndarray:
    """Play several scores one after the other: each starts when the previous one ends.

    Each table's times are offset by the last note-off (seconds) and the last
    note end (whole notes) of the tables before it.  The inputs are not changed.
    """
    joined = []
    offset_sec = 0.0
    offset_whole = 0.0
    for table in tables:
        table = table.copy()
        if len(table):
            table["onset_sec"] += offset_sec
            table["offset_sec"] += offset_sec
            table["onset_whole"] += offset_whole
            offset_sec = float(table["offset_sec"].max())
            offset_whole = float((table["onset_whole"] + table["duration_whole"]).max())
        joined.append(table)
    return np.concatenate(joined) if joined else np.zeros(0, PERFORMED_EVENT_DTYPE)


def align_tables(
    noteheads: np.ndarray,
    systems: np.ndarray,
    render_dir: str | Path,
    midi_files: list[str],
    *,
    repeats: str = "unfolded",
) -> tuple[np.ndarray, dict]:
    """Build the performed-notes table of a piece and count how complete it is.

    Several scores (MIDI files) are played one after the other: each score's
    times are offset by the end of the previous one.  ``repeats`` is the mode
    of the rendering:

    * ``"unfolded"``: LilyPond's MIDI plays every repeat; it is checked to
      follow the score's repeat structure in every voice
      (:func:`~msmd_builder.stages.align.timeline.out_of_step`; a departure is
      recorded as ``repeats_out_of_step`` and :func:`run` raises on it);
    * ``"timeline"``: the MIDI plays the printed timeline, which is unrolled
      here by the score's repeat structure for every voice alike
      (:func:`~msmd_builder.stages.align.timeline.unroll_score`);
    * ``"folded"``: printed order, each notehead once; jumps are left as
      printed, like repeats.

    In the first two modes the written jumps (Da Capo, Dal Segno) are then
    realized (:func:`realize_jumps`).

    Returns
    -------
    performed : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE`, one row per MIDI note.
    stats : dict
        Counts of noteheads, tie continuations, sounding visible noteheads and
        how many of them are aligned, MIDI notes and how many are accounted
        for, unison merges, pitch mismatches, pages and systems, the
        reading-order check (:func:`reading_order`) and the check that each
        voice plays in written order (:func:`voice_order`, per score, before
        jumps are realized).
    """
    tables = []
    totals: dict[str, int] = defaultdict(int)
    matched_event_ids: set[int] = set()
    jumps: list[str] = []
    first_voice_violation = ""
    readings: list[str] = []
    out_of_step_reasons: list[str] = []
    unread_structures: list[str] = []
    for score in _score_performances(noteheads, render_dir, midi_files, repeats):
        table = score.table
        totals["voice_order_checked"] += score.voice_order.checked
        totals["voice_order_violations"] += score.voice_order.violations
        if score.voice_order.first_violation and not first_voice_violation:
            first_voice_violation = f"score {score.score + 1}: {score.voice_order.first_violation}"
        if repeats == "timeline":
            totals["timeline_repeats"] += score.timeline_repeats
        if score.unread_structure:
            unread_structures.append(score.unread_structure)
        if score.out_of_step:
            out_of_step_reasons.append(f"score {score.score + 1}: {score.out_of_step}")
        if repeats != "folded" and not out_of_step_reasons:
            table, plans = score.realize_jumps(table, noteheads)
            if plans:
                totals["realized_jumps"] += len(plans)
            jumps.extend(plan.kind for plan in plans)
            readings.extend(plan.reading for plan in plans if plan.reading)
        matched_event_ids.update(score.matched_event_ids)
        totals["pitch_mismatches"] += score.pitch_mismatches
        for name, value in score.match_stats.items():
            totals[name] += value
        tables.append(table)
    performed = join_scores(tables)
    walk = reading_order(performed, noteheads)
    sounding = noteheads["visible"] & ~noteheads["tied"]
    aligned = np.isin(noteheads["event_id"], list(matched_event_ids))
    placed = noteheads["page"] >= 0
    pages = set(
        zip(noteheads["book"][placed].tolist(), noteheads["page"][placed].tolist(), strict=True)
    )
    stats = {
        "noteheads": int(len(noteheads)),
        "visible_noteheads": int(noteheads["visible"].sum()),
        "tie_continuations": int(noteheads["tied"].sum()),
        "sounding_visible_noteheads": int(sounding.sum()),
        "aligned_sounding_visible_noteheads": int((sounding & aligned).sum()),
        "systems": int(len(systems)),
        "pages": len(pages),
        "performed_notes": int(len(performed)),
        "aligned_performed_notes": int((performed["notehead_id"] >= 0).sum()),
        "reading_order_back_jumps": walk.back_jumps,
        "reading_order_violations": walk.violations,
        "reading_order_first_violation": walk.first_violation,
        "voice_order_first_violation": first_voice_violation,
        "jumps": "; ".join(jumps),
        **{k: int(v) for k, v in totals.items()},
    }
    if readings:
        stats["jump_readings"] = "; ".join(dict.fromkeys(readings))
    if out_of_step_reasons:
        stats["repeats_out_of_step"] = "; ".join(out_of_step_reasons)
    if unread_structures:
        stats["repeat_structure_unread"] = "; ".join(unread_structures)
    return performed, stats


STAGE_VERSION = 8
#: ``format_name`` of ``align/align.json``.
RECORD_FORMAT = "msmd-builder/align-record"
#: Layout version of ``align/align.json`` (2: with the outputs' ``output_sizes``).
RECORD_VERSION = 2
#: ``format_name`` of ``align/alignment.npz`` (arrays ``performed``, ``performed_measures``).
ALIGNMENT_FORMAT = "msmd-builder/alignment"
ALIGNMENT_VERSION = 2


@dataclass(frozen=True)
class AlignSettings:
    """Settings of the align stage.

    Attributes
    ----------
    repeats_fallback : bool
        When the performance fails the reading-order check or the written
        jumps or repeats do not read into one playing order, build the piece in
        printed order instead (as MSMD did), flagged in the report; False fails
        such pieces.  Repeats written in some voices only go to the shared
        timeline either way (not a fallback).  The orchestrator acts on it
        (:mod:`msmd_builder.stages.align.repeats` remembers the choice).
    """

    repeats_fallback: bool = True


@dataclass(frozen=True)
class AlignResult:
    """Output record of the align stage (``align/align.json``).

    Attributes
    ----------
    piece_id : str
        The piece.
    align_dir : str
        Folder with ``alignment.npz`` (arrays ``performed`` and
        ``performed_measures``, :mod:`msmd_builder.stages.align.measures`).
    stats : dict
        Completeness counts from :func:`align_tables`.
    cache_key : str
        Hash of the score and render results and the stage version.
    repeats : str
        ``"unfolded"``, ``"timeline"`` or ``"folded"``: how the rendering's
        MIDI played repeats (see :func:`align_tables`).
    """

    piece_id: str
    align_dir: str
    stats: dict
    cache_key: str
    repeats: str = "unfolded"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlignResult:
        """Inverse of :meth:`to_dict` (a stage record's format fields are ignored)."""
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    def load(self) -> np.ndarray:
        """Return the performed-notes table."""
        data = load_npz(
            Path(self.align_dir) / "alignment.npz",
            format_name=ALIGNMENT_FORMAT,
            format_version=ALIGNMENT_VERSION,
        )
        return data["performed"]

    def load_measures(self) -> np.ndarray:
        """Return the measure occurrences (``PERFORMED_MEASURE_DTYPE``, score seconds)."""
        data = load_npz(
            Path(self.align_dir) / "alignment.npz",
            format_name=ALIGNMENT_FORMAT,
            format_version=ALIGNMENT_VERSION,
        )
        return data["performed_measures"]

    def report_details(self) -> dict[str, Any]:
        """Return what the build report shows of this stage."""
        return {"alignment": self.stats}


def run(
    score: ScoreResult, settings: AlignSettings, piece_dir: PieceDir, *, force: bool = False
) -> AlignResult:
    """Link the performed notes of a rendered piece to its noteheads.

    Parameters
    ----------
    score : ScoreResult
        The score stage's record (noteheads and systems, and the rendering
        whose MIDI is aligned).  Jumps (Da Capo, Dal Segno) are realized only
        when the piece was rendered with repeats unfolded.
    settings : AlignSettings
        Read by the orchestrator, not here.
    piece_dir : PieceDir
        The piece's work folder; writes its ``align/``.
    force : bool
        Redo even if cached.

    Raises
    ------
    NothingToAlignError
        If the MIDI has no note.
    RepeatsOutOfStepError
        If the piece was rendered unfolded but LilyPond's MIDI does not follow
        the score's repeat structure in every voice (a repeat written in some
        voices only): it needs ``repeats="timeline"``.
    NotUnrollableError
        If a written jump does not read into one playing order, or (rendered
        on the timeline) the score's repeats do not.
    VerificationError
        If any aligned pair disagrees in pitch, a voice plays notes out of
        their written order (:class:`VoiceOrderError`, :func:`voice_order`), or
        the performed notes leave reading order outside the performance's own
        jumps (:class:`ReadingOrderError`, :func:`reading_order`).
    """
    render = score.render
    cache = StageCache.for_document(
        piece_dir.align_record,
        {
            "stage": "align",
            "stage_version": STAGE_VERSION,
            "render": render.cache_key,
            "score": score.cache_key,
            "repeats": render.repeats,
        },
        format_name=RECORD_FORMAT,
        format_version=RECORD_VERSION,
    )
    hit = cache.lookup(
        lambda record: sized_outputs(piece_dir.align, record["output_sizes"]), force=force
    )
    if hit is not None:
        result = AlignResult.from_dict(hit)
    else:
        noteheads, systems = score.load()
        performed, stats = align_tables(
            noteheads, systems, render.render_dir, list(render.midi_files), repeats=render.repeats
        )
        times, measure_stats = rendered_measure_times(
            render.render_dir, performed, noteheads, score.load_measures()
        )
        stats.update(measure_stats)
        save_npz(
            piece_dir.alignment,
            format_name=ALIGNMENT_FORMAT,
            format_version=ALIGNMENT_VERSION,
            performed=performed,
            performed_measures=times.table,
        )
        result = AlignResult(
            render.piece_id, str(piece_dir.align.resolve()), stats, cache.key, render.repeats
        )
        sizes = output_sizes(piece_dir.align, [piece_dir.alignment.name])
        cache.store({**result.to_dict(), "output_sizes": sizes})
    if result.stats["midi_notes"] == 0:
        raise NothingToAlignError("the MIDI has no note")
    if result.stats.get("repeats_out_of_step"):
        raise RepeatsOutOfStepError(result.stats["repeats_out_of_step"])
    if result.stats["pitch_mismatches"]:
        raise VerificationError(
            f"{result.stats['pitch_mismatches']} aligned notes differ in pitch from their notehead"
        )
    if result.stats.get("voice_order_violations"):
        raise VoiceOrderError(
            f"{result.stats['voice_order_violations']} performed notes follow a note written "
            f"later in the same voice; first: {result.stats['voice_order_first_violation']}"
        )
    if result.stats.get("reading_order_violations"):
        raise ReadingOrderError(
            f"{result.stats['reading_order_violations']} performed notes go back to an earlier "
            f"system outside a repeat or jump; first: "
            f"{result.stats['reading_order_first_violation']}"
        )
    return result
