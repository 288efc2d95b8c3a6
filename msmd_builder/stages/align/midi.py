"""MIDI notes to logged note events: the one step of the alignment that is matched, not read.

A MIDI file carries no event ids, so :func:`match_notes` pairs its notes per
pitch, in time order, with the logged events that start a sound (tie
continuations do not), each at the tick where LilyPond's MIDI puts its moment
(grace time scaled as LilyPond does, :func:`midi_tick`), allowing for the
delay of the whole MIDI by graces before the first beat and for its MIDI
running late after some grace constructs.  Whatever stays unpaired on either
side is counted, never dropped silently.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np

from msmd_builder.core.tables import PERFORMED_EVENT_DTYPE
from msmd_builder.lilypond.logs import LoggedEvent

__all__ = [
    "GRACE_MIDI_SCALE",
    "MidiNote",
    "AlignmentStats",
    "midi_tick",
    "read_midi_notes",
    "match_notes",
    "performed_table",
]


#: LilyPond writes 384 ticks per quarter note, i.e. 1536 per whole note.
_TICK_TOLERANCE = 2


#: LilyPond's MIDI plays grace time at 9/40 of its written length: a moment
#: ``main + grace`` sounds at ``main + 9/40 * grace`` (``moment_to_real`` in
#: LilyPond's ``audio-item.cc``), so a grace group sounds close before its beat,
#: each grace at its own tick, in written order.
GRACE_MIDI_SCALE = Fraction(9, 40)


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


def midi_tick(moment_main: Fraction, moment_grace: Fraction, ticks_per_whole: int = 1536) -> int:
    """Return the MIDI tick at which LilyPond plays a moment, before any start offset.

    LilyPond turns a moment into ticks as ``int((main + 9/40 * grace) * ticks
    per whole)`` (:data:`GRACE_MIDI_SCALE`), truncating toward zero.
    """
    return math.trunc((moment_main + GRACE_MIDI_SCALE * moment_grace) * ticks_per_whole)


def _pair_in_windows(
    midi_notes: list[MidiNote],
    note_indices: Iterable[int],
    events: list[LoggedEvent],
    event_indices: Iterable[int],
    shift: float,
    ticks_per_whole: int,
) -> dict[int, int]:
    """Pair each MIDI note, in order, with the nearest unused same-pitch event.

    An event can take a note that starts within :data:`_TICK_TOLERANCE` of
    its tick (:func:`midi_tick`, plus ``shift``); of several, the nearest, and
    at equal distance the earlier, then the one logged first.  Each event takes
    one note.
    """
    # Per pitch: (tick, event index), sorted, for bisection.
    by_pitch: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for i in event_indices:
        tick = midi_tick(events[i].moment_main, events[i].moment_grace, ticks_per_whole) + shift
        by_pitch[events[i].pitch].append((tick, i))
    ticks: dict[int, list[float]] = {}
    for pitch, expected in by_pitch.items():
        expected.sort()
        ticks[pitch] = [tick for tick, _ in expected]
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for note_index in note_indices:
        note = midi_notes[note_index]
        expected = by_pitch.get(note.pitch)
        if not expected:
            continue
        lo = bisect.bisect_left(ticks[note.pitch], note.onset_tick - _TICK_TOLERANCE)
        hi = bisect.bisect_right(ticks[note.pitch], note.onset_tick + _TICK_TOLERANCE)
        free = [(abs(note.onset_tick - tick), i) for tick, i in expected[lo:hi] if i not in used]
        if free:
            best = min(free, key=lambda candidate: candidate[0])[1]
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
            ticks[events[i].pitch].append(
                midi_tick(events[i].moment_main, 0, ticks_per_whole) + shift
            )
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


def _start_offset(
    midi_notes: list[MidiNote], sounding: list[LoggedEvent], ticks_per_whole: int
) -> int:
    """Return the ticks by which LilyPond's MIDI is delayed against :func:`midi_tick`.

    LilyPond's MIDI starts at the earliest moment it performs; graces before
    the first beat make that moment negative and delay every note by its
    ticks.  That moment need not be a logged note (a grace skip in another
    staff can reach further back), so the delay is measured: of the offsets
    that put a MIDI note on an opening event of its pitch (the first beat and
    the graces before it), the one at which most opening events find their
    note, the smallest of equals.  0 when nothing opens the score.
    """
    if not sounding or not midi_notes:
        return 0
    first = min(e.moment_main for e in sounding)
    opening = [
        (e.pitch, midi_tick(e.moment_main, e.moment_grace, ticks_per_whole))
        for e in sounding
        if e.moment_main == first
    ]
    onsets: dict[int, list[int]] = defaultdict(list)
    for note in midi_notes:
        onsets[note.pitch].append(note.onset_tick)  # in time order already

    def found(pitch: int, tick: int) -> bool:
        ticks = onsets.get(pitch, [])
        at = bisect.bisect_left(ticks, tick - _TICK_TOLERANCE)
        return at < len(ticks) and ticks[at] <= tick + _TICK_TOLERANCE

    reach = ticks_per_whole  # graces before the first beat delay by far less
    candidates = {
        onset - tick
        for pitch, tick in opening
        for onset in onsets.get(pitch, [])
        if abs(onset - tick) <= reach
    }
    if not candidates:
        return 0
    return max(
        sorted(candidates, key=lambda shift: (abs(shift), shift)),
        key=lambda shift: sum(found(pitch, tick + shift) for pitch, tick in opening),
    )


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
    shift = _start_offset(midi_notes, [events[i] for i in sounding], ticks_per_whole)
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
