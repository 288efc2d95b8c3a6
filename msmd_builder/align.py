"""Stage 5: link every performed note to the notehead that printed it.

Inputs, all written by one LilyPond run (see ``lilypond_patches/``):

* the noteheads table (layout side), each row carrying the ``event_id`` of the
  note event that caused it;
* the performed log (MIDI side): every note event the unfolded (or, with
  ``repeats="folded"``, printed-order) MIDI score played, with its
  ``event_id`` and musical moment, in playing order;
* the marks log: texts and signs where jumps (D.C., D.S., Fine, Coda) are written;
* LilyPond's MIDI file, for the note-ons and note-offs in ticks, velocities
  and the tempo map that turns ticks into seconds.

Event ids make the notehead side exact.  The only step that is matched rather
than read is MIDI note -> logged event, because a MIDI file carries no ids:
notes are paired per pitch, in time order, with the logged events that start
a sound (tie continuations do not), allowing for LilyPond's own placement of
grace notes just before their beat and for its MIDI running late after some
grace constructs.  Whatever stays unpaired on either side is counted and
reported, never dropped silently.  Written jumps are then realized
(:func:`realize_jumps`), and the result is checked to walk the printed
systems in reading order except where it jumps (:func:`reading_order`).
"""

from __future__ import annotations

import bisect
import csv
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
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
    "ReadingOrder",
    "reading_order",
    "Mark",
    "read_marks",
    "JumpPlan",
    "read_jump",
    "realize_jumps",
    "without_repeats",
]

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


_DA_CAPO = re.compile(r"\bD\.\s*C\.|\bda\s+capo", re.IGNORECASE)
_DAL_SEGNO = re.compile(r"\bD\.\s*S\.|\bdal\s+segno", re.IGNORECASE)
_AL_CODA = re.compile(r"\b(?:al|to)\s+coda\b", re.IGNORECASE)
_AL_SEGNO = re.compile(r"\bal\s+segno\b", re.IGNORECASE)
_SAYS_FINE = re.compile(r"\bfine?\b", re.IGNORECASE)
_FINE = re.compile(r"^\W*fine?\W*$", re.IGNORECASE)
_CODA = re.compile(r"^\W*(?:(?:to|al)\s+)?coda\W*$", re.IGNORECASE)
_TRIO = re.compile(r"^\W*trio\b", re.IGNORECASE)
#: Words a jump text may hold besides the jump itself; any other word names
#: the section to replay ("Menuetto D.C.", "Men. d. C.", "Marcia D.C.").
_JUMP_WORDS = frozenset(
    "d c s da dal capo segno al fine fin coda to e et sino senza con ma poi la il "
    "repetizione ripetizione replica repeat repeats without and then from the beginning".split()
)
_SIGN = re.compile(r"\[(segno|coda)\]")
_GLYPH_NAME = re.compile(r"\bscripts\.\w+")
#: Marks that stand at a bar line rather than on a note.
_BAR_MARKS = frozenset({"RehearsalMark", "TextMark", "SectionLabel", "SegnoMark", "CodaMark"})
_EPS = 1e-9


@dataclass(frozen=True)
class Mark:
    """A text mark, text script or jump sign of the layout (where jumps are written).

    Attributes
    ----------
    score : int
        Layout score index.
    moment_main : Fraction
        Printed moment, whole notes.
    grob : str
        ``TextScript`` or ``Script`` (on a note, rest or skip), or a mark at a
        bar line (``RehearsalMark``, ``TextMark``).
    text : str
        The markup as text; drawn segno and coda signs appear as ``[segno]``
        and ``[coda]``.
    end_main : Fraction or None
        Where the music carrying the mark ends (the longest note, rest or skip
        it is attached to; the mark's own moment at a bar line); None if the
        hooks could not tell.
    """

    score: int
    moment_main: Fraction
    grob: str
    text: str
    end_main: Fraction | None = None

    @property
    def words(self) -> str:
        """The text without sign tokens and glyph names."""
        return " ".join(_GLYPH_NAME.sub(" ", _SIGN.sub(" ", self.text)).split())

    @property
    def signs(self) -> frozenset[str]:
        """Jump signs drawn by the mark: ``"segno"``, ``"coda"``."""
        return frozenset(_SIGN.findall(self.text))


def read_marks(path: str | Path) -> list[Mark]:
    """Read ``*.msmd-marks.tsv``; a missing file means no marks."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return [
            Mark(
                int(r["score"]),
                Fraction(r["moment_main"]),
                r["grob"],
                r["text"],
                Fraction(r["end_main"]) if r.get("end_main") else None,
            )
            for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]


@dataclass(frozen=True)
class JumpPlan:
    """A written jump, read into printed positions (whole notes of the layout score).

    The performance plays the score through (repeats unfolded) up to the
    Coda (or to its end), then plays printed ``[start, stop)`` once more
    without repeats, then the Coda, if any, from ``coda`` to the end.

    Attributes
    ----------
    kind : str
        ``"da capo"`` or ``"dal segno"`` followed by ``"al fine"``, ``"al coda"``,
        ``"to the trio"`` or ``"to the end"``.
    start : float
        Where the jump goes: 0 (Da Capo) or the segno.
    stop : float
        Where the replay stops (exclusive): after the Fine or the "To Coda"
        note, at the Trio, or ``inf`` (the end).
    coda : float or None
        Where the Coda begins; None without one.
    """

    kind: str
    start: float
    stop: float
    coda: float | None = None


def _positions(marks: list[Mark]) -> list[Mark]:
    """One mark per printed moment (the same text in several staves is one mark)."""
    by_moment: dict[Fraction, Mark] = {}
    for mark in sorted(marks, key=lambda m: (m.moment_main, m.end_main is None, m.grob)):
        by_moment.setdefault(mark.moment_main, mark)
    return list(by_moment.values())


def _mark_end(mark: Mark, printed: np.ndarray) -> float:
    """Return the printed moment where the music carrying ``mark`` ends (exclusive bound)."""
    if mark.end_main is not None:
        return float(mark.end_main)
    if mark.grob in _BAR_MARKS:
        return float(mark.moment_main)
    # Unknown carrier: the notes that start at the first onset at or after the mark.
    later = printed[printed >= float(mark.moment_main) - _EPS]
    return float(later.min()) + 1e-6 if len(later) else float(mark.moment_main)


def read_jump(marks: list[Mark], printed: np.ndarray) -> JumpPlan | None:
    """Read the written jump of one score, where it reads reliably.

    Rules (texts are matched without case; the same text at the same moment in
    several staves counts once):

    * exactly one jump text, "D.C." / "Da Capo" or "D.S." / "Dal Segno";
    * Dal Segno needs exactly one segno sign before the jump;
    * "al Coda" (in the jump text, or a "To Coda" text anywhere) needs one
      coda sign or "To Coda"/"Coda" text before the jump, where the replay
      leaves, and one at or after it, where the Coda begins;
    * otherwise one "Fine" (or "Fin.") between start and jump ends the replay;
    * a Da Capo without Fine ends at a "Trio" label (as "Menuetto D.C." after
      a trio means), else at the end: the whole score once more; but a Da Capo
      that names its section ("Menuet da Capo") without a Fine or a Trio label
      in the score refers to music elsewhere and is not realized.

    Parameters
    ----------
    marks : list of Mark
        The score's marks.
    printed : np.ndarray
        Printed onsets (whole notes) of the score's noteheads, for marks whose
        carrier the hooks did not see.

    Returns
    -------
    JumpPlan or None
        None if no jump is written.

    Raises
    ------
    NotUnrollableError
        If a jump is written but these rules do not pin it down.
    """
    from msmd_builder.errors import NotUnrollableError

    jumps = _positions([m for m in marks if _DA_CAPO.search(m.words) or _DAL_SEGNO.search(m.words)])
    if not jumps:
        return None
    texts = "; ".join(sorted({m.text.strip() for m in jumps}))
    if len(jumps) > 1:
        raise NotUnrollableError(f"several jump marks ({texts}); playing order ambiguous")
    jump = jumps[0]
    at = float(jump.moment_main)
    others = [m for m in marks if m not in jumps and m.words != jump.words]
    segno = _DAL_SEGNO.search(jump.words) is not None
    fines = _positions([m for m in others if _FINE.match(m.words)])
    codas = _positions([m for m in others if "coda" in m.signs or _CODA.match(m.words)])
    al_coda = _AL_CODA.search(jump.words) is not None or any(
        _AL_CODA.search(m.words) for m in others
    )
    if not segno and (_AL_SEGNO.search(jump.words) or "segno" in jump.signs):
        raise NotUnrollableError(f"Da Capo al Segno ({texts}): where it ends is not clear")
    start = 0.0
    if segno:
        signs = _positions([m for m in others if "segno" in m.signs])
        if len(signs) != 1:
            raise NotUnrollableError(
                f"Dal Segno with {len(signs)} segno signs ({texts}); need exactly one"
            )
        start = float(signs[0].moment_main)
        if start >= at:
            raise NotUnrollableError(f"the segno is not before the jump ({texts})")
    name = "dal segno" if segno else "da capo"
    if not al_coda and any(float(m.moment_main) >= at for m in codas):
        raise NotUnrollableError(
            f"a Coda follows the jump, which does not say al Coda ({texts}); order unclear"
        )
    if al_coda:
        leave = [m for m in codas if float(m.moment_main) < at]
        enter = [m for m in codas if float(m.moment_main) >= at]
        if fines or len(leave) != 1 or len(enter) != 1:
            raise NotUnrollableError(
                f"al Coda needs one To Coda sign before the jump and one Coda sign after it, "
                f"found {len(leave)} and {len(enter)}{' and a Fine' if fines else ''} ({texts})"
            )
        stop = _mark_end(leave[0], printed)
        if stop <= start:
            raise NotUnrollableError(f"the To Coda sign is not after the jump's start ({texts})")
        return JumpPlan(f"{name} al coda", start, stop, float(enter[0].moment_main))
    if len(fines) > 1:
        raise NotUnrollableError(f"several Fine marks ({texts}); playing order ambiguous")
    if fines:
        stop = _mark_end(fines[0], printed)
        if not start < stop or float(fines[0].moment_main) > at:
            raise NotUnrollableError(
                f"the Fine is not between the jump's start and the jump ({texts})"
            )
        return JumpPlan(f"{name} al fine", start, stop)
    if _SAYS_FINE.search(jump.words):
        raise NotUnrollableError(f"the jump says al Fine but no Fine is written ({texts})")
    trios = _positions([m for m in others if _TRIO.match(m.words)])
    named = sorted(set(re.findall(r"[^\W\d_]+", jump.words.lower())) - _JUMP_WORDS)
    if not segno and named and not trios:
        raise NotUnrollableError(
            f"the Da Capo names a section ({' '.join(named)}) that no Fine or Trio label "
            f"delimits in this score ({texts})"
        )
    if not segno and trios:
        if len(trios) > 1:
            raise NotUnrollableError(f"Da Capo with several Trio labels ({texts})")
        trio = float(trios[0].moment_main)
        if trio <= 0:
            raise NotUnrollableError(
                f"Da Capo in a score that begins with its Trio ({texts}): it refers to "
                "another score"
            )
        if trio < at:
            return JumpPlan("da capo to the trio", 0.0, trio)
    return JumpPlan(f"{name} to the end", start, np.inf)


def _time_at(
    rows: np.ndarray, printed: np.ndarray, grace: np.ndarray, at: float
) -> tuple[float, float]:
    """(whole notes, seconds) at which ``rows`` (one pass, in time order) reach printed ``at``.

    The first row printed at or after ``at`` fixes the position in whole
    notes; seconds are interpolated between the rows' onsets (extrapolated
    with the nearest tempo beyond them).  Past the last row: the pass's end.
    """
    main = rows["onset_whole"] - grace
    after = np.flatnonzero(printed >= at - _EPS)
    if not len(after):
        return float((rows["onset_whole"] + rows["duration_whole"]).max()), float(
            rows["offset_sec"].max()
        )
    first = after[np.argmin(main[after])]
    whole = float(main[first] - (printed[first] - at))
    beats = (grace == 0) & ~np.isnan(printed)
    xs, index = np.unique(rows["onset_whole"][beats], return_index=True)
    ys = rows["onset_sec"][beats][index]
    if len(xs) < 2:
        return whole, float(rows["onset_sec"][first])
    if whole < xs[0]:
        return whole, float(ys[0] - (xs[0] - whole) * (ys[1] - ys[0]) / (xs[1] - xs[0]))
    if whole > xs[-1]:
        return whole, float(ys[-1] + (whole - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]))
    return whole, float(np.interp(whole, xs, ys))


def realize_jumps(
    table: np.ndarray,
    marks: list[Mark],
    *,
    measured_repeat_ids: frozenset[int] = frozenset(),
    printed_onset_whole: np.ndarray | None = None,
    printed_grace_whole: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Add the replay that a written Da Capo or Dal Segno asks for to a score's performed notes.

    The jump is read by :func:`read_jump`.  The score is played through as
    unfolded (up to the Coda, if there is one); then the printed span from
    the beginning or the segno up to the Fine, the "To Coda" note, the Trio or
    the end is played once more *without repeats*, as is customary: of every
    repeated passage only its last time through is kept, which also keeps the
    last alternative ending and drops the earlier ones (see
    :func:`without_repeats`); then the Coda.  The replay follows the last
    release before it, at the same tempo, with ``occurrence`` one higher than
    the event's last before; the Coda moves after the replay.  Notes without
    a notehead are not replayed (their printed place is unknown).

    Parameters
    ----------
    table : np.ndarray
        Performed notes of one score.
    marks : list of Mark
        That score's text marks, scripts and signs.
    measured_repeat_ids : frozenset of int
        Events inside tremolo or percent repeats, which are always played
        repeated and never mistaken for a volta pass.
    printed_onset_whole, printed_grace_whole : np.ndarray, optional
        Printed (folded) onset and grace offset of every notehead, indexed by
        ``notehead_id``; marks are positioned in printed time.  Default to the
        table's own onsets and no grace (a piece without repeats).

    Returns
    -------
    table : np.ndarray
        The performed notes with the jump realized (unchanged if there is none).
    jump : str
        ``""`` (no jump) or the :attr:`JumpPlan.kind` realized.

    Raises
    ------
    NotUnrollableError
        If jumps are written but do not read reliably.
    """
    from msmd_builder.errors import NotUnrollableError

    linked = table["notehead_id"] >= 0
    if printed_onset_whole is None:
        printed_onset_whole = np.full(int(table["notehead_id"].max(initial=-1)) + 1, np.nan)
        printed_onset_whole[table["notehead_id"][linked]] = table["onset_whole"][linked]
    if printed_grace_whole is None:
        printed_grace_whole = np.zeros(len(printed_onset_whole))

    def printed_of(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = rows["notehead_id"] >= 0
        ids = np.where(ok, rows["notehead_id"], 0)
        return (
            np.where(ok, printed_onset_whole[ids], np.nan),
            np.where(ok, printed_grace_whole[ids], 0.0),
        )

    heads_here = np.unique(table["notehead_id"][linked])
    plan = read_jump(marks, printed_onset_whole[heads_here])
    if plan is None or not len(table):
        return table, ""
    table = table[np.argsort(table["onset_whole"], kind="stable")]
    printed, _ = printed_of(table)
    if plan.coda is not None:
        before = np.flatnonzero(printed < plan.coda - _EPS)
        cut = int(before.max()) + 1 if len(before) else 0
        first, tail = table[:cut], table[cut:]
        if not len(first) or not (tail["notehead_id"] >= 0).any():
            raise NotUnrollableError(f"{plan.kind}: no music before or after the Coda sign")
    else:
        first, tail = table, table[:0]
    once = without_repeats(first, measured_repeat_ids=measured_repeat_ids)
    once_printed, once_grace = printed_of(once)
    chosen = (once_printed >= plan.start - _EPS) & (once_printed < plan.stop - _EPS)
    if not chosen.any():
        raise NotUnrollableError(f"{plan.kind}: no note between the jump's start and its end")
    replay = once[chosen].copy()
    start_whole, start_sec = _time_at(once, once_printed, once_grace, plan.start)
    cursor_whole = float((first["onset_whole"] + first["duration_whole"]).max())
    cursor_sec = float(first["offset_sec"].max())
    replay["onset_whole"] += cursor_whole - start_whole
    replay["onset_sec"] += cursor_sec - start_sec
    replay["offset_sec"] += cursor_sec - start_sec
    last_occurrence: dict[int, int] = defaultdict(lambda: -1)
    for event_id, occurrence in zip(first["event_id"], first["occurrence"], strict=True):
        last_occurrence[int(event_id)] = max(last_occurrence[int(event_id)], int(occurrence))
    for row in replay:
        last_occurrence[int(row["event_id"])] += 1
        row["occurrence"] = last_occurrence[int(row["event_id"])]
    if len(tail):
        stop_whole, stop_sec = _time_at(once, once_printed, once_grace, plan.stop)
        tail_printed, tail_grace = printed_of(tail)
        coda_whole, coda_sec = _time_at(tail, tail_printed, tail_grace, plan.coda)
        tail = tail.copy()
        tail["onset_whole"] += cursor_whole + (stop_whole - start_whole) - coda_whole
        tail["onset_sec"] += cursor_sec + (stop_sec - start_sec) - coda_sec
        tail["offset_sec"] += cursor_sec + (stop_sec - start_sec) - coda_sec
    return np.concatenate([first, replay, tail]), plan.kind


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


@dataclass(frozen=True)
class ReadingOrder:
    """How the performed notes walk through the printed systems.

    Attributes
    ----------
    back_jumps : int
        Places where the performance goes back to earlier printed music that
        it has played before (repeats, Da Capo): the allowed exceptions.
    violations : int
        Performed notes that step back to an earlier system without such a
        jump: a note played for the first time, or printed earlier in the
        music yet placed on a later system.
    first_violation : str
        The first violating note, described for the error message ("" if none).
    """

    back_jumps: int
    violations: int
    first_violation: str = ""


def reading_order(performed: np.ndarray, noteheads: np.ndarray) -> ReadingOrder:
    """Check that performed notes, in time order, visit systems in reading order.

    A system is "behind" when its (book, system) comes before the furthest
    one reached so far (systems are numbered in reading order, so this also
    orders pages).  Going behind is allowed only at a jump of the unrolled
    performance, read from the performance itself: the note goes back in
    printed time (score, written moment, grace moment) *and* is a replay
    (``occurrence`` >= 1) of a note already played.  That covers volta and
    percent repeats, their alternatives and realized Da Capo / Dal Segno
    passes without a list of jump kinds; anything else going behind is a
    violation.  Notes without a notehead or with an unplaced one are skipped.

    Parameters
    ----------
    performed : np.ndarray
        :data:`~msmd_builder.tables.PERFORMED_EVENT_DTYPE`, in playing order.
    noteheads : np.ndarray
        :data:`~msmd_builder.score.NOTEHEAD_DTYPE`, indexed by ``notehead_id``.

    Returns
    -------
    ReadingOrder
    """
    linked = performed[performed["notehead_id"] >= 0]
    heads = noteheads[linked["notehead_id"]]
    placed = heads["system"] >= 0
    linked, heads = linked[placed], heads[placed]
    if not len(linked):
        return ReadingOrder(0, 0)
    # Playing order: unrolled main moment, then grace moment (as LilyPond orders moments).
    main = np.round(linked["onset_whole"] - heads["grace_whole"], 9)
    grace = np.round(heads["grace_whole"], 9)
    order = np.lexsort((grace, main))
    # Ranks of reading position and of printed position, both lexicographic.
    system_rank = np.unique(
        np.stack([heads["book"], heads["system"]], axis=1), axis=0, return_inverse=True
    )[1].ravel()
    printed_key = np.stack(
        [heads["score"], np.round(heads["onset_whole"], 9), np.round(heads["grace_whole"], 9)],
        axis=1,
    )
    printed_rank = np.unique(printed_key, axis=0, return_inverse=True)[1].ravel()
    moments = np.stack([main[order], grace[order]], axis=1)
    starts = np.flatnonzero(np.r_[True, (np.diff(moments, axis=0) != 0).any(axis=1)])
    ends = np.r_[starts[1:], len(order)]
    front_system = front_printed = -1
    front_label = ""
    back_jumps = violations = 0
    first = ""
    jumping = False
    for start, end in zip(starts, ends, strict=True):
        group = order[start:end]
        jumped = False
        for r in group:
            if system_rank[r] >= front_system:
                continue
            if linked["occurrence"][r] >= 1 and printed_rank[r] < front_printed:
                jumped = True
                continue
            violations += 1
            if not first:
                first = (
                    f"notehead {int(linked['notehead_id'][r])} ({_where(heads[r])}, playing "
                    f"{int(linked['occurrence'][r]) + 1}) sounds at "
                    f"{float(linked['onset_sec'][r]):.2f} s, after {front_label}"
                )
                if linked["occurrence"][r] == 0 and printed_rank[r] < front_printed:
                    first += (
                        "; another voice is further on in the printed music "
                        "(a repeat written in some voices only?)"
                    )
        if jumped and not jumping:
            back_jumps += 1
        jumping = jumped
        furthest = group[np.argmax(system_rank[group])]
        front_system = int(system_rank[furthest])
        front_label = _where(heads[furthest])
        front_printed = int(printed_rank[group].max())
    return ReadingOrder(back_jumps, violations, first)


def _where(head: np.void) -> str:
    """Book, page and system of a notehead, counted from 1 as a reader would."""
    book, page, system = (int(head[k]) + 1 for k in ("book", "page", "system"))
    return f"book {book} page {page} system {system}"


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
        Output names in LilyPond's order (see :class:`~msmd_builder.render.RenderResult`).
    repeats : {"unfolded", "folded"}
        The mode the piece was rendered in (see :func:`align_tables`).

    Returns
    -------
    PieceAlignment
    """
    from msmd_builder.score import read_geometry

    noteheads, systems = read_geometry(render_dir, pdf_files)
    performed, stats = align_tables(noteheads, systems, render_dir, midi_files, repeats=repeats)
    return PieceAlignment(noteheads, systems, performed, stats)


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
    times are offset by the end of the previous one.  With ``repeats``
    ``"unfolded"`` the written jumps (Da Capo, Dal Segno) are realized
    (:func:`realize_jumps`); a ``"folded"`` rendering plays the music in
    printed order, so jumps are left as printed, like repeats.

    Returns
    -------
    performed : np.ndarray
        :data:`~msmd_builder.tables.PERFORMED_EVENT_DTYPE`, one row per MIDI note.
    stats : dict
        Counts of noteheads, tie continuations, sounding visible noteheads and
        how many of them are aligned, MIDI notes and how many are accounted
        for, unison merges, pitch mismatches, pages and systems, and the
        reading-order check (:func:`reading_order`).
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
    jumps: list[str] = []
    for score, midi in enumerate(midi_files):
        events = log_by_score.get(score, [])
        notes = read_midi_notes(folder / midi)
        pairs, unison, stats = match_notes(notes, events, continuation_ids=continuation)
        table = performed_table(
            notes, events, pairs, notehead_of_event=notehead_of_event, staff_of_event=staff_of_event
        )
        if repeats == "unfolded":
            table, jump = realize_jumps(
                table,
                [m for m in marks if m.score == score],
                measured_repeat_ids=frozenset(e.event_id for e in events if e.measured_repeat),
                printed_onset_whole=noteheads["onset_whole"],
                printed_grace_whole=noteheads["grace_whole"],
            )
            if jump:
                totals["realized_jumps"] += 1
                jumps.append(jump)
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
        "jumps": "; ".join(jumps),
        **{k: int(v) for k, v in totals.items()},
    }
    return performed, stats


_STAGE_VERSION = 6


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
    repeats : str
        ``"unfolded"`` or ``"folded"``: how the MIDI played repeats.
    """

    piece_id: str
    align_dir: str
    stats: dict
    cache_key: str
    repeats: str = "unfolded"

    def load(self) -> np.ndarray:
        """Return the performed-notes table."""
        with np.load(Path(self.align_dir) / "alignment.npz") as data:
            return data["performed"]


def align_piece(  # noqa: ANN001
    render,
    score,
    *,
    work_dir: str | Path,
    repeats: str = "unfolded",
    force: bool = False,
) -> AlignResult:
    """Link the performed notes of a rendered piece to its noteheads.

    Parameters
    ----------
    render : RenderResult
        The render stage's record.
    score : ScoreResult
        The score stage's record (noteheads and systems).
    work_dir : path
        The build's work directory; writes ``pieces/<id>/align/``.
    repeats : {"unfolded", "folded"}
        How repeats are played; must be the mode ``render`` was made with.
        Jumps (Da Capo, Dal Segno) are realized only when unfolded.
    force : bool
        Redo even if cached.

    Raises
    ------
    ConfigError
        If ``repeats`` is unknown or differs from the rendering's mode.
    NothingToAlignError
        If the MIDI has no note.
    VerificationError
        If any aligned pair disagrees in pitch, or the performed notes leave
        reading order outside the performance's own jumps (:func:`reading_order`).
    """
    from msmd_builder.cache import atomic_path, atomic_write_json, read_json, stable_key
    from msmd_builder.errors import (
        ConfigError,
        NothingToAlignError,
        ReadingOrderError,
        VerificationError,
    )
    from msmd_builder.render import REPEATS_MODES

    if repeats not in REPEATS_MODES:
        raise ConfigError(f"repeats must be one of {', '.join(REPEATS_MODES)}, got {repeats!r}")
    rendered_as = getattr(render, "repeats", "unfolded")
    if rendered_as != repeats:
        raise ConfigError(
            f"{render.piece_id} was rendered with repeats={rendered_as!r}, not {repeats!r}: "
            "render it again with the same setting"
        )
    align_dir = Path(work_dir) / "pieces" / render.piece_id / "align"
    record_path = align_dir / "align.json"
    key = stable_key(
        {
            "stage": "align",
            "stage_version": _STAGE_VERSION,
            "render": render.cache_key,
            "score": score.cache_key,
            "repeats": repeats,
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
            noteheads, systems, render.render_dir, list(render.midi_files), repeats=repeats
        )
        with atomic_path(align_dir / "alignment.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, performed=performed)
        result = AlignResult(render.piece_id, str(align_dir.resolve()), stats, key, repeats)
        atomic_write_json(record_path, {**result.__dict__})
    if result.stats["midi_notes"] == 0:
        raise NothingToAlignError("the MIDI has no note")
    if result.stats["pitch_mismatches"]:
        raise VerificationError(
            f"{result.stats['pitch_mismatches']} aligned notes differ in pitch from their notehead"
        )
    if result.stats.get("reading_order_violations"):
        raise ReadingOrderError(
            f"{result.stats['reading_order_violations']} performed notes go back to an earlier "
            f"system outside a repeat or jump; first: "
            f"{result.stats['reading_order_first_violation']}"
        )
    return result
