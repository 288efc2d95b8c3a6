"""MIDI notes to logged note events: the one step of the alignment that is matched, not read.

A MIDI file carries no event ids, so :func:`match_notes` pairs its notes per
pitch, in time order, with the logged events that start a sound (tie
continuations do not), allowing for LilyPond's own placement of grace notes just
before their beat and for its MIDI running late after some grace constructs.
Whatever stays unpaired on either side is counted, never dropped silently.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from msmd_builder.core.tables import PERFORMED_EVENT_DTYPE
from msmd_builder.lilypond.logs import LoggedEvent

__all__ = ["MidiNote", "AlignmentStats", "read_midi_notes", "match_notes", "performed_table"]


#: LilyPond writes 384 ticks per quarter note, i.e. 1536 per whole note.
_TICK_TOLERANCE = 2


#: A drift of LilyPond's MIDI against the logged moments is followed up to a
#: quarter note, when at least this many unpaired notes, and a third of
#: those with a candidate, agree on it.
_MAX_DRIFT_TICKS = 384


_MIN_DRIFT_VOTES = 3


_MAX_RESYNCS = 8


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


def _window(event: LoggedEvent, shift: float, ticks_per_whole: int) -> tuple[float, float]:
    """Span of MIDI ticks in which ``event``'s note may start."""
    main = float(event.moment_main) * ticks_per_whole + shift
    if event.moment_grace == 0:
        return main - _TICK_TOLERANCE, main + _TICK_TOLERANCE
    # Grace notes sound somewhere in the span before their main note.
    return main + float(event.moment_grace) * ticks_per_whole - _TICK_TOLERANCE, main


def _pair_in_windows(
    midi_notes: list[MidiNote],
    note_indices: Iterable[int],
    events: list[LoggedEvent],
    event_indices: Iterable[int],
    shift: float,
    ticks_per_whole: int,
) -> dict[int, int]:
    """Pair each MIDI note, in order, with the unused same-pitch event whose window fits best."""
    # Per pitch: candidate windows sorted by their start, for bisection.
    by_pitch: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for i in event_indices:
        by_pitch[events[i].pitch].append((*_window(events[i], shift, ticks_per_whole), i))
    starts: dict[int, list[float]] = {}
    widest: dict[int, float] = {}
    for pitch, windows in by_pitch.items():
        windows.sort()
        starts[pitch] = [w[0] for w in windows]
        widest[pitch] = max(high - low for low, high, _ in windows)
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for note_index in note_indices:
        note = midi_notes[note_index]
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
    return pairs


def _dominant_drift(
    midi_notes: list[MidiNote],
    note_indices: list[int],
    events: list[LoggedEvent],
    event_indices: list[int],
    shift: float,
    ticks_per_whole: int,
) -> float | None:
    """Return the tick offset that most unpaired same-pitch (note, beat event) pairs agree on.

    Only offsets up to :data:`_MAX_DRIFT_TICKS` count, each note votes once
    per offset, and the winner needs :data:`_MIN_DRIFT_VOTES` votes and a
    third of the notes that voted; None otherwise.
    """
    ticks: dict[int, list[float]] = defaultdict(list)
    for i in event_indices:
        if events[i].moment_grace == 0:
            ticks[events[i].pitch].append(float(events[i].moment_main) * ticks_per_whole + shift)
    for values in ticks.values():
        values.sort()
    votes: Counter[float] = Counter()
    voters = 0
    for n in note_indices:
        note = midi_notes[n]
        values = ticks.get(note.pitch, [])
        lo = bisect.bisect_left(values, note.onset_tick - _MAX_DRIFT_TICKS)
        hi = bisect.bisect_right(values, note.onset_tick + _MAX_DRIFT_TICKS)
        drifts = {round(note.onset_tick - value) for value in values[lo:hi]}
        drifts = {d for d in drifts if abs(d) > _TICK_TOLERANCE}
        voters += bool(drifts)
        votes.update(drifts)
    if not votes:
        return None
    drift, count = votes.most_common(1)[0]
    return float(drift) if count >= max(_MIN_DRIFT_VOTES, voters / 3) else None


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

    pairs = _pair_in_windows(
        midi_notes, range(len(midi_notes)), events, sounding, shift, ticks_per_whole
    )
    # LilyPond's MIDI can run a few ticks late from some point on (after a
    # grace group without a main note, or a long grace cadenza); follow such a
    # drift: take the offset most of the still unpaired notes agree on and pair
    # them again with it, as long as that pairs more.
    for _ in range(_MAX_RESYNCS):
        used = set(pairs.values())
        notes_left = [n for n in range(len(midi_notes)) if n not in pairs]
        events_left = [i for i in sounding if i not in used]
        drift = _dominant_drift(midi_notes, notes_left, events, events_left, shift, ticks_per_whole)
        if drift is None:
            break
        more = _pair_in_windows(
            midi_notes, notes_left, events, events_left, shift + drift, ticks_per_whole
        )
        if not more:
            break
        pairs.update(more)
    used = set(pairs.values())
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

    ``occurrence`` counts how often the same event was played before (repeats),
    in the performed log.
    MIDI notes without a logged event keep ``event_id`` and ``notehead_id`` -1.
    """
    table = np.zeros(len(midi_notes), dtype=PERFORMED_EVENT_DTYPE)
    # The how-many-th playing of its event, counted in the log (so a playing
    # whose MIDI note went unmatched still counts).
    playing: list[int] = [0] * len(events)
    counts: dict[int, int] = defaultdict(int)
    for i in sorted(
        range(len(events)), key=lambda i: (events[i].moment_main, events[i].moment_grace, i)
    ):
        playing[i] = counts[events[i].event_id]
        counts[events[i].event_id] += 1
    for note_index, note in enumerate(midi_notes):
        event_index = pairs.get(note_index)
        event = events[event_index] if event_index is not None else None
        event_id = event.event_id if event else -1
        occurrence = playing[event_index] if event_index is not None else 0
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
