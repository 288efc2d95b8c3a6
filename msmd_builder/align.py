"""Stage 5: link every performed note to the notehead that printed it.

Inputs, all written by one LilyPond run (see ``lilypond_patches/``):

* the noteheads table (layout side), each row carrying the ``event_id`` of the
  note event that caused it;
* the performed log (MIDI side): every note event the unfolded MIDI score
  played, with its ``event_id`` and musical moment, in playing order;
* LilyPond's MIDI file, for the note-ons and note-offs in ticks, velocities
  and the tempo map that turns ticks into seconds.

Event ids make the notehead side exact.  The only step that is matched rather
than read is MIDI note -> logged event, because a MIDI file carries no ids:
notes are paired per pitch, in time order, with the logged events that start
a sound (tie continuations do not), allowing for LilyPond's own placement of
grace notes just before their beat.  Whatever stays unpaired on either side is
counted and reported, never dropped silently.
"""

from __future__ import annotations

import bisect
import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np

from msmd_builder.tables import PERFORMED_EVENT_DTYPE

__all__ = [
    "AlignResult",
    "align_piece",
    "align_tables",
    "align_rendered",
    "PieceAlignment",
    "performed_table",
    "MidiNote",
    "LoggedEvent",
    "read_midi_notes",
    "read_performed_log",
    "match_notes",
    "AlignmentStats",
]

#: LilyPond writes 384 ticks per quarter note, i.e. 1536 per whole note.
_TICK_TOLERANCE = 2


@dataclass(frozen=True)
class MidiNote:
    """One note of a MIDI file, from note-on to its note-off."""

    track: int
    pitch: int
    velocity: int
    onset_tick: int
    offset_tick: int
    onset_sec: float
    offset_sec: float


@dataclass(frozen=True)
class LoggedEvent:
    """One note event played by the unfolded MIDI score, in playing order."""

    order: int  # position in the log
    score: int
    event_id: int
    moment_main: Fraction
    moment_grace: Fraction
    pitch: int
    duration_whole: Fraction
    measured_repeat: bool = False  # inside a tremolo or percent repeat


@dataclass(frozen=True)
class AlignmentStats:
    """Counts that say how complete an alignment is."""

    midi_notes: int
    matched_midi_notes: int
    sounding_events: int
    matched_events: int
    unison_events: int  # events sounding through another voice's identical note


def _tempo_map(midi: mido.MidiFile) -> tuple[list[int], list[float], list[int]]:
    """Return (ticks, seconds at those ticks, tempo from there) of every tempo change."""
    changes: dict[int, int] = {}
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                changes[tick] = message.tempo
    if 0 not in changes:
        changes[0] = 500000
    ticks = sorted(changes)
    seconds = [0.0]
    for previous, current in zip(ticks, ticks[1:], strict=False):
        seconds.append(
            seconds[-1] + (current - previous) * changes[previous] / 1e6 / midi.ticks_per_beat
        )
    return ticks, seconds, [changes[t] for t in ticks]


def read_midi_notes(path: str | Path) -> list[MidiNote]:
    """Read every note of a MIDI file with exact times from its tempo map.

    Overlapping notes of one pitch on one channel are paired first-in,
    first-out, as synthesizers do.
    """
    midi = mido.MidiFile(path)
    ticks, seconds, tempos = _tempo_map(midi)

    def to_sec(tick: int) -> float:
        i = bisect.bisect_right(ticks, tick) - 1
        return seconds[i] + (tick - ticks[i]) * tempos[i] / 1e6 / midi.ticks_per_beat

    notes: list[MidiNote] = []
    for index, track in enumerate(midi.tracks):
        tick = 0
        sounding: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                sounding[(message.channel, message.note)].append((tick, message.velocity))
            elif message.type in ("note_off", "note_on"):
                started = sounding.get((message.channel, message.note))
                if started:
                    onset, velocity = started.pop(0)
                    notes.append(
                        MidiNote(
                            index, message.note, velocity, onset, tick, to_sec(onset), to_sec(tick)
                        )
                    )
    notes.sort(key=lambda n: (n.onset_tick, n.track, n.pitch))
    return notes


def read_performed_log(path: str | Path, *, score: int | None = None) -> list[LoggedEvent]:
    """Read ``*.msmd-performed.tsv``, optionally only the rows of one score."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    events = []
    for order, row in enumerate(rows):
        if score is not None and int(row["score"]) != score:
            continue
        events.append(
            LoggedEvent(
                order=order,
                score=int(row["score"]),
                event_id=int(row["event_id"]),
                moment_main=Fraction(row["moment_main"]),
                moment_grace=Fraction(row["moment_grace"]),
                pitch=int(row["pitch"]),
                duration_whole=Fraction(row["duration_whole"]),
                measured_repeat=row.get("measured_repeat") == "1",
            )
        )
    return events


def match_notes(
    midi_notes: list[MidiNote],
    events: list[LoggedEvent],
    *,
    continuation_ids: set[int],
    ticks_per_whole: int = 1536,
) -> tuple[dict[int, int], list[int], AlignmentStats]:
    """Pair MIDI notes with the logged events that produced them.

    Parameters
    ----------
    midi_notes : list of MidiNote
        Notes of one MIDI file (one score).
    events : list of LoggedEvent
        The log of the same score.
    continuation_ids : set of int
        Event ids whose notehead ends a tie: they sound on from the previous
        note and start no MIDI note.
    ticks_per_whole : int
        MIDI resolution, ticks per whole note.

    Returns
    -------
    pairs : dict
        MIDI note index -> index into ``events``.
    unison : list of int
        Indices of events that start at the same moment and pitch as a matched
        event of another voice; LilyPond plays such unisons once.
    stats : AlignmentStats
    """
    sounding = [i for i, e in enumerate(events) if e.event_id not in continuation_ids]
    # LilyPond shifts the whole MIDI by the grace time before the first beat.
    shift = 0
    non_grace = [events[i] for i in sounding if events[i].moment_grace == 0]
    if non_grace and midi_notes:
        first = min(e.moment_main for e in non_grace)
        first_pitches = {e.pitch for e in non_grace if e.moment_main == first}
        candidates = [
            n.onset_tick - int(first * ticks_per_whole)
            for n in midi_notes
            if n.pitch in first_pitches
        ]
        if candidates:
            shift = min(candidates, key=abs)

    def window(event: LoggedEvent) -> tuple[float, float]:
        main = float(event.moment_main) * ticks_per_whole + shift
        if event.moment_grace == 0:
            return main - _TICK_TOLERANCE, main + _TICK_TOLERANCE
        # Grace notes sound somewhere in the span before their main note.
        return main + float(event.moment_grace) * ticks_per_whole - _TICK_TOLERANCE, main

    # Per pitch: candidate windows sorted by their start, for bisection.
    by_pitch: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for i in sounding:
        by_pitch[events[i].pitch].append((*window(events[i]), i))
    starts: dict[int, list[float]] = {}
    widest: dict[int, float] = {}
    for pitch, windows in by_pitch.items():
        windows.sort()
        starts[pitch] = [w[0] for w in windows]
        widest[pitch] = max(high - low for low, high, _ in windows)

    pairs: dict[int, int] = {}
    used: set[int] = set()
    for note_index, note in enumerate(midi_notes):
        windows = by_pitch.get(note.pitch)
        if not windows:
            continue
        tick = note.onset_tick
        lo = bisect.bisect_left(starts[note.pitch], tick - widest[note.pitch])
        hi = bisect.bisect_right(starts[note.pitch], tick)
        best = None
        best_distance = None
        for low, high, event_index in windows[lo:hi]:
            if event_index in used or not low <= tick <= high:
                continue
            distance = abs(tick - (low + high) / 2)
            if best_distance is None or distance < best_distance:
                best, best_distance = event_index, distance
        if best is not None:
            pairs[note_index] = best
            used.add(best)
    matched_keys = {(events[i].moment_main, events[i].moment_grace, events[i].pitch) for i in used}
    unison = [
        i
        for i in sounding
        if i not in used
        and (events[i].moment_main, events[i].moment_grace, events[i].pitch) in matched_keys
    ]
    stats = AlignmentStats(
        midi_notes=len(midi_notes),
        matched_midi_notes=len(pairs),
        sounding_events=len(sounding),
        matched_events=len(used) + len(unison),
        unison_events=len(unison),
    )
    return pairs, unison, stats


_DA_CAPO = re.compile(r"\bD\.\s*C\.|da\s+capo", re.IGNORECASE)
_DAL_SEGNO = re.compile(r"\bD\.\s*S\.|dal\s+segno|al\s+coda|to\s+coda", re.IGNORECASE)
_FINE = re.compile(r"^\W*fine\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class Mark:
    """A text mark or script of the layout (where jumps are written)."""

    score: int
    moment_main: Fraction
    grob: str
    text: str


def read_marks(path: str | Path) -> list[Mark]:
    """Read ``*.msmd-marks.tsv``; a missing file means no marks."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return [
            Mark(int(r["score"]), Fraction(r["moment_main"]), r["grob"], r["text"])
            for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]


def realize_jumps(
    table: np.ndarray,
    marks: list[Mark],
    *,
    measured_repeat_ids: frozenset[int] = frozenset(),
    printed_onset_whole: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Append the Da Capo pass of a "D.C. al Fine" piece to its performed notes.

    Applied only where the jump reads reliably: exactly one D.C. text, exactly
    one "Fine", no Dal Segno or Coda.  The Da Capo pass plays the music from
    the beginning to the end of the note carrying the Fine *without repeats*
    (the usual convention): of every repeated passage only its last time
    through is kept, which also keeps the last alternative ending and drops
    the earlier ones (see :func:`without_repeats`).  It follows the last
    release of the first pass, at the same tempo, with ``occurrence`` one
    higher than the event's last occurrence.

    Parameters
    ----------
    table : np.ndarray
        Performed notes of one score.
    marks : list of Mark
        That score's text marks and scripts.
    measured_repeat_ids : frozenset of int
        Events inside tremolo or percent repeats, which are always played
        repeated and never mistaken for a volta pass.
    printed_onset_whole : np.ndarray, optional
        Printed (folded) onset of every notehead, indexed by ``notehead_id``;
        marks are positioned in printed time.  Defaults to the table's own
        onsets (a piece without repeats).

    Returns
    -------
    table : np.ndarray
        The performed notes with the jump realized (unchanged if there is none).
    jump : str
        ``""`` (no jump) or ``"da capo al fine"``.

    Raises
    ------
    NotUnrollableError
        If jumps are written but the rule above does not apply.
    """
    from msmd_builder.errors import NotUnrollableError

    da_capo = [m for m in marks if _DA_CAPO.search(m.text)]
    dal_segno = [m for m in marks if _DAL_SEGNO.search(m.text)]
    fine = [m for m in marks if _FINE.match(m.text)]
    if not da_capo and not dal_segno:
        return table, ""
    texts = "; ".join(sorted({m.text.strip() for m in da_capo + dal_segno}))
    if dal_segno:
        raise NotUnrollableError(f"Dal Segno / Coda jumps are not realized ({texts})")
    if len(da_capo) > 1 or len(fine) > 1:
        raise NotUnrollableError(f"several jump or Fine marks ({texts}); playing order ambiguous")
    if not fine:
        raise NotUnrollableError(f"Da Capo without a Fine ({texts}); where it ends is not written")
    if not len(table):
        return table, ""
    order = np.argsort(table["onset_whole"], kind="stable")
    table = table[order]
    end_whole = float((table["onset_whole"] + table["duration_whole"]).max())
    # The Fine is written (in printed time) on the last note of the section or
    # just after it; find that note's last playing in unrolled time.
    at = float(fine[0].moment_main)
    printed = (
        printed_onset_whole[table["notehead_id"]]
        if printed_onset_whole is not None
        else table["onset_whole"]
    )
    printed = np.where(table["notehead_id"] >= 0, printed, np.inf)
    later = printed[printed >= at - 1e-9]
    if not len(later):
        raise NotUnrollableError(f"no note at or after the Fine ({texts})")
    at_fine = np.abs(printed - later.min()) < 1e-9
    fine_whole = float(table["onset_whole"][at_fine].max())
    section = table[table["onset_whole"] <= fine_whole + 1e-9]
    # The Fine's position is reached on the last pass: cut the section there.
    second = without_repeats(section, measured_repeat_ids=measured_repeat_ids)
    last_occurrence = defaultdict(lambda: -1)
    for event_id, occurrence in zip(table["event_id"], table["occurrence"], strict=True):
        last_occurrence[int(event_id)] = max(last_occurrence[int(event_id)], int(occurrence))
    shift_sec = float(table["offset_sec"].max())
    start_whole = float(second["onset_whole"].min()) if len(second) else 0.0
    start_sec = float(second["onset_sec"].min()) if len(second) else 0.0
    second["onset_sec"] += shift_sec - start_sec
    second["offset_sec"] += shift_sec - start_sec
    second["onset_whole"] += end_whole - start_whole
    for row in second:
        last_occurrence[int(row["event_id"])] += 1
        row["occurrence"] = last_occurrence[int(row["event_id"])]
    return np.concatenate([table, second]), "da capo al fine"


def without_repeats(
    section: np.ndarray, *, measured_repeat_ids: frozenset[int] = frozenset()
) -> np.ndarray:
    """Play a passage once: keep only the last time through each repeat.

    A run of rows that replay earlier events is a new pass; every row from
    the first playing of those events up to the start of that pass belonged to
    an earlier pass (a repeated body or a non-final alternative ending) and is
    dropped.  The kept rows are moved earlier to close the gaps, in seconds and
    in whole notes.

    Parameters
    ----------
    section : np.ndarray
        Performed notes sorted by onset.
    measured_repeat_ids : frozenset of int
        Events of tremolo and percent repeats: their replays start no new pass.

    Returns
    -------
    np.ndarray
        The kept rows, contiguous in time from the first row's onset.
    """
    if not len(section):
        return section.copy()
    first_seen: dict[int, float] = {}
    for row in section:
        first_seen.setdefault(int(row["event_id"]), float(row["onset_whole"]))
    # For each replayed row (occurrence >= 1 here), the earliest first playing
    # it refers back to; rows before that replay and after that first playing drop.
    onsets = section["onset_whole"]
    keep = np.ones(len(section), dtype=bool)
    seen: set[int] = set()
    pass_start: float | None = None  # onset of the replayed pass now running
    for i, row in enumerate(section):
        event_id = int(row["event_id"])
        replay = event_id in seen and event_id >= 0 and event_id not in measured_repeat_ids
        if replay:
            if pass_start is None:
                pass_start = float(onsets[i])
            back = first_seen[event_id]
            keep &= ~((onsets >= back - 1e-9) & (onsets < pass_start - 1e-9))
        elif event_id not in measured_repeat_ids:
            pass_start = None
        seen.add(event_id)
    kept = section[keep].copy()
    # Close the gaps left by dropped passes.
    removed_whole = np.zeros(len(section))
    removed_sec = np.zeros(len(section))
    run_start = None
    total_whole = total_sec = 0.0
    for i in range(len(section)):
        if not keep[i] and run_start is None:
            run_start = i
        if keep[i]:
            if run_start is not None:
                total_whole += float(onsets[i] - onsets[run_start])
                total_sec += float(section["onset_sec"][i] - section["onset_sec"][run_start])
                run_start = None
            removed_whole[i] = total_whole
            removed_sec[i] = total_sec
    kept["onset_whole"] -= removed_whole[keep]
    kept["onset_sec"] -= removed_sec[keep]
    kept["offset_sec"] -= removed_sec[keep]
    return kept


def performed_table(
    midi_notes: list[MidiNote],
    events: list[LoggedEvent],
    pairs: dict[int, int],
    *,
    notehead_of_event: dict[int, int],
    staff_of_event: dict[int, int],
    ticks_per_whole: int = 1536,
) -> np.ndarray:
    """Build the :data:`~msmd_builder.tables.PERFORMED_EVENT_DTYPE` table, one row per MIDI note.

    ``occurrence`` counts how often the same event was played before (repeats).
    MIDI notes without a logged event keep ``event_id`` and ``notehead_id`` -1.
    """
    table = np.zeros(len(midi_notes), dtype=PERFORMED_EVENT_DTYPE)
    seen: dict[int, int] = defaultdict(int)
    for note_index, note in enumerate(midi_notes):
        event_index = pairs.get(note_index)
        event = events[event_index] if event_index is not None else None
        event_id = event.event_id if event else -1
        occurrence = seen[event_id] if event else 0
        if event:
            seen[event_id] += 1
        onset_whole = (
            float(event.moment_main + event.moment_grace)
            if event
            else note.onset_tick / ticks_per_whole
        )
        table[note_index] = (
            event_id,
            notehead_of_event.get(event_id, -1),
            occurrence,
            note.pitch,
            note.velocity,
            onset_whole,
            (note.offset_tick - note.onset_tick) / ticks_per_whole,
            note.onset_sec,
            note.offset_sec,
            staff_of_event.get(event_id, -1),
        )
    return table


@dataclass(frozen=True)
class PieceAlignment:
    """Everything the alignment stage knows about one piece.

    Attributes
    ----------
    noteheads : np.ndarray
        :data:`~msmd_builder.score.NOTEHEAD_DTYPE`, all books, ``notehead_id`` = row.
    systems : np.ndarray
        :data:`~msmd_builder.score.SYSTEM_DTYPE`, all books.
    performed : np.ndarray
        :data:`~msmd_builder.tables.PERFORMED_EVENT_DTYPE`, one row per MIDI note;
        several scores are played one after the other.
    stats : dict
        Counts (see :func:`align_rendered`).
    """

    noteheads: np.ndarray
    systems: np.ndarray
    performed: np.ndarray
    stats: dict


def align_rendered(
    render_dir: str | Path, pdf_files: list[str], midi_files: list[str]
) -> PieceAlignment:
    """Align one rendered piece: noteheads of every book with the notes of every MIDI file.

    Parameters
    ----------
    render_dir : path
        The render stage's folder (PDFs, MIDIs and the hooks' tables).
    pdf_files, midi_files : list of str
        Output names in LilyPond's order (see :class:`~msmd_builder.render.RenderResult`).

    Returns
    -------
    PieceAlignment
    """
    from msmd_builder.score import read_geometry

    noteheads, systems = read_geometry(render_dir, pdf_files)
    performed, stats = align_tables(noteheads, systems, render_dir, midi_files)
    return PieceAlignment(noteheads, systems, performed, stats)


def align_tables(
    noteheads: np.ndarray, systems: np.ndarray, render_dir: str | Path, midi_files: list[str]
) -> tuple[np.ndarray, dict]:
    """Build the performed-notes table of a piece and count how complete it is.

    Several scores (MIDI files) are played one after the other: each score's
    times are offset by the end of the previous one.

    Returns
    -------
    performed : np.ndarray
        :data:`~msmd_builder.tables.PERFORMED_EVENT_DTYPE`, one row per MIDI note.
    stats : dict
        Counts of noteheads, tie continuations, sounding visible noteheads and
        how many of them are aligned, MIDI notes and how many are accounted
        for, unison merges, pitch mismatches, pages and systems.
    """
    folder = Path(render_dir)
    log_path = next(iter(sorted(folder.glob("*.msmd-performed.tsv"))), None)
    marks = [m for p in sorted(folder.glob("*.msmd-marks.tsv")) for m in read_marks(p)]
    log_by_score: dict[int, list[LoggedEvent]] = defaultdict(list)
    for event in read_performed_log(log_path) if log_path else []:
        log_by_score[event.score].append(event)
    event_ids = noteheads["event_id"].tolist()
    notehead_of_event = dict(zip(event_ids, noteheads["notehead_id"].tolist(), strict=True))
    staff_of_event = dict(zip(event_ids, noteheads["staff"].tolist(), strict=True))
    continuation = set(noteheads["event_id"][noteheads["tied"]].tolist())

    tables = []
    totals: dict[str, int] = defaultdict(int)
    offset_sec = 0.0
    offset_whole = 0.0
    matched_event_ids: set[int] = set()
    for score, midi in enumerate(midi_files):
        events = log_by_score.get(score, [])
        notes = read_midi_notes(folder / midi)
        pairs, unison, stats = match_notes(notes, events, continuation_ids=continuation)
        table = performed_table(
            notes, events, pairs, notehead_of_event=notehead_of_event, staff_of_event=staff_of_event
        )
        table, jump = realize_jumps(
            table,
            [m for m in marks if m.score == score],
            measured_repeat_ids=frozenset(e.event_id for e in events if e.measured_repeat),
            printed_onset_whole=noteheads["onset_whole"],
        )
        if jump:
            totals["realized_jumps"] += 1
        matched_event_ids.update(events[i].event_id for i in pairs.values())
        matched_event_ids.update(events[i].event_id for i in unison)
        totals["pitch_mismatches"] += sum(
            1 for n, e in pairs.items() if notes[n].pitch != events[e].pitch
        )
        for name, value in stats.__dict__.items():
            totals[name] += value
        if len(table):
            table["onset_sec"] += offset_sec
            table["offset_sec"] += offset_sec
            table["onset_whole"] += offset_whole
            offset_sec = float(table["offset_sec"].max())
            offset_whole = float((table["onset_whole"] + table["duration_whole"]).max())
        tables.append(table)
    performed = np.concatenate(tables) if tables else np.zeros(0, PERFORMED_EVENT_DTYPE)
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
        **{k: int(v) for k, v in totals.items()},
    }
    return performed, stats


_STAGE_VERSION = 4


@dataclass(frozen=True)
class AlignResult:
    """Output record of the align stage (``align/align.json``).

    Attributes
    ----------
    piece_id : str
        The piece.
    align_dir : str
        Folder with ``alignment.npz`` (array ``performed``).
    stats : dict
        Completeness counts from :func:`align_tables`.
    cache_key : str
        Hash of the score and render results and the stage version.
    """

    piece_id: str
    align_dir: str
    stats: dict
    cache_key: str

    def load(self) -> np.ndarray:
        """Return the performed-notes table."""
        with np.load(Path(self.align_dir) / "alignment.npz") as data:
            return data["performed"]


def align_piece(render, score, *, work_dir: str | Path, force: bool = False) -> AlignResult:  # noqa: ANN001
    """Link the performed notes of a rendered piece to its noteheads.

    Parameters
    ----------
    render : RenderResult
        The render stage's record.
    score : ScoreResult
        The score stage's record (noteheads and systems).
    work_dir : path
        The build's work directory; writes ``pieces/<id>/align/``.
    force : bool
        Redo even if cached.

    Raises
    ------
    NothingToAlignError
        If the MIDI has no note.
    VerificationError
        If any aligned pair disagrees in pitch.
    """
    from msmd_builder.cache import atomic_path, atomic_write_json, read_json, stable_key
    from msmd_builder.errors import NothingToAlignError, VerificationError

    align_dir = Path(work_dir) / "pieces" / render.piece_id / "align"
    record_path = align_dir / "align.json"
    key = stable_key(
        {
            "stage": "align",
            "stage_version": _STAGE_VERSION,
            "render": render.cache_key,
            "score": score.cache_key,
        }
    )
    result = None
    if not force and record_path.exists():
        data = read_json(record_path)
        if data.get("cache_key") == key and (align_dir / "alignment.npz").exists():
            result = AlignResult(**data)
    if result is None:
        noteheads, systems = score.load()
        performed, stats = align_tables(
            noteheads, systems, render.render_dir, list(render.midi_files)
        )
        with atomic_path(align_dir / "alignment.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, performed=performed)
        result = AlignResult(render.piece_id, str(align_dir.resolve()), stats, key)
        atomic_write_json(record_path, {**result.__dict__})
    if result.stats["midi_notes"] == 0:
        raise NothingToAlignError("the MIDI has no note")
    if result.stats["pitch_mismatches"]:
        raise VerificationError(
            f"{result.stats['pitch_mismatches']} aligned notes differ in pitch from their notehead"
        )
    return result
