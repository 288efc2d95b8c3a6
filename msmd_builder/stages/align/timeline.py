"""One repeat structure for the whole score: repeats written in some voices only.

LilyPond unfolds a volta repeat in the contexts that write it; a context that
writes the same bars out once (the other hand, a voice of the same staff, a
structure voice of spacers that carries the repeats for all) plays straight
on, and the voices drift apart.  The printed score means otherwise: a repeat
sign repeats the bars for every voice.  So the score's repeat structure is
read from the hooks' repeats table (every volta repeat with its printed start,
body, alternatives and count; :func:`score_repeats`) and turned into one
playing order of printed spans for all voices, a :class:`Timeline`
(:func:`shared_timeline`).

:func:`out_of_step` tells whether LilyPond's unfolded MIDI already plays that
order (the repeats are written in every voice: nothing to do).  If not, the
piece is rendered with ``repeats="timeline"`` (the MIDI plays the printed
timeline: volta repeats folded, tremolo and percent repeats sounding where they
are printed) and :func:`unroll_score` replays the printed spans in the
timeline's order at the event level, each performed note keeping its notehead
and event, with its occurrence counted as LilyPond counts it.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np

from msmd_builder.core.errors import NotUnrollableError
from msmd_builder.lilypond.logs import LoggedEvent, RepeatRow, parse_source
from msmd_builder.stages.align.midi import MidiNote, _tempo_map

__all__ = [
    "VoltaRepeat",
    "Segment",
    "Timeline",
    "score_repeats",
    "shared_timeline",
    "out_of_step",
    "unroll_score",
]

#: MIDI ticks per whole note in LilyPond's MIDI files.
_TICKS_PER_WHOLE = 1536

_EPS = 1e-9

Span = tuple[Fraction, Fraction]


@dataclass(frozen=True)
class VoltaRepeat:
    r"""A volta repeat as printed, in whole notes of its layout score.

    Attributes
    ----------
    start, body_end : Fraction
        The body's printed span.
    count : int
        How often the repeat is played.
    alternatives : tuple of (Fraction, tuple of int)
        Each alternative's printed end and the volte (1-based passes) it is
        played in; the first begins at ``body_end``, each next one where the
        previous one ends.
    source : str
        ``file:line:char`` of one ``\repeat`` that writes it.
    """

    start: Fraction
    body_end: Fraction
    count: int
    alternatives: tuple[tuple[Fraction, tuple[int, ...]], ...] = ()
    source: str = ""

    @property
    def end(self) -> Fraction:
        """Where the repeat's printed music ends."""
        return self.alternatives[-1][0] if self.alternatives else self.body_end

    @property
    def structure(self) -> tuple:
        """What makes two rows the same repeat (the voice or line writing it does not)."""
        return (self.start, self.body_end, self.count, self.alternatives)

    def pieces(self) -> list[Span]:
        """Return the printed spans a pass is made of: the body, then each alternative."""
        bounds = [self.start, self.body_end, *(end for end, _ in self.alternatives)]
        return list(zip(bounds, bounds[1:], strict=False))

    def passes(self) -> list[list[Span]]:
        """Return the printed spans of each pass, as LilyPond unfolds the repeat.

        Pass ``i`` plays the body, then every alternative played in volta ``i``.
        """
        pieces = self.pieces()
        return [
            [pieces[0]]
            + [pieces[k + 1] for k, (_, volte) in enumerate(self.alternatives) if i in volte]
            for i in range(1, self.count + 1)
        ]

    def describe(self) -> str:
        """How a message names the repeat."""
        where = f" at {self.source}" if self.source else ""
        return f"\\repeat volta {self.count}{where} (printed {self.start} to {self.end})"


@dataclass(frozen=True)
class Segment:
    """A printed span played without a jump.

    Attributes
    ----------
    printed_start : Fraction
        Where it starts in the printed music.
    printed_end : Fraction or None
        Where it ends (exclusive); None: the end of the score.
    performed_start : Fraction
        Where it starts in the performance, whole notes.
    """

    printed_start: Fraction
    printed_end: Fraction | None
    performed_start: Fraction

    def holds(self, printed: float) -> bool:
        """Return True if printed moment ``printed`` lies in the segment."""
        return printed >= self.printed_start - _EPS and (
            self.printed_end is None or printed < self.printed_end - _EPS
        )


@dataclass(frozen=True)
class Timeline:
    """The playing order of one score's printed music, the same for every voice.

    Attributes
    ----------
    repeats : tuple of VoltaRepeat
        The distinct volta repeats it unrolls.
    segments : tuple of Segment
        The printed spans in playing order, contiguous in the performance.
    """

    repeats: tuple[VoltaRepeat, ...]
    segments: tuple[Segment, ...]

    def performed_moments(self, printed: float) -> list[float]:
        """Where the performance plays printed moment ``printed``, in order."""
        return [
            float(s.performed_start) + printed - float(s.printed_start)
            for s in self.segments
            if s.holds(printed)
        ]

    def repeats_over(self, printed: float) -> list[VoltaRepeat]:
        """Return the repeats whose printed music holds ``printed``."""
        return [r for r in self.repeats if r.start - _EPS <= printed < r.end - _EPS]


def _expected_returns(repeat: VoltaRepeat) -> set[Span]:
    """Where LilyPond's iteration of ``repeat`` sends a return-to-body event.

    At the body's end without alternatives; with alternatives, at the end of
    each but the last (and of the only one, when there is one).
    """
    if not repeat.alternatives:
        return {(repeat.start, repeat.body_end)}
    ends = [end for end, _ in repeat.alternatives]
    return {(repeat.start, end) for end in (ends if len(ends) == 1 else ends[:-1])}


def score_repeats(rows: Iterable[RepeatRow], score: int) -> tuple[VoltaRepeat, ...]:
    r"""Return the distinct volta repeats of one layout score, checked against LilyPond's iteration.

    Voices that write the same repeat give one :class:`VoltaRepeat`.  The
    printed positions come from the hooks' walk of the music; the layout's own
    iteration logged where it started each repeat and where it returned to its
    body, and both must agree.

    Raises
    ------
    NotUnrollableError
        If a repeat's body has parts played in some volte only (``\volta``,
        ``\unfolded``, an inner ``\alternative``), or the walked repeats and
        LilyPond's iteration disagree.
    """
    rows = [r for r in rows if r.score == score]
    specced = [r for r in rows if r.kind == "volta-specced"]
    if specced:
        raise NotUnrollableError(
            f"the repeat at {Path(parse_source(specced[0].source)[0]).name}:"
            f"{parse_source(specced[0].source)[1]} has parts played in some volte only "
            "(\\volta, \\unfolded or an inner \\alternative), which the repeat structure "
            "does not describe"
        )
    by_structure: dict[tuple, VoltaRepeat] = {}
    for r in rows:
        if r.kind == "volta" and r.end is not None:
            path, line, column = parse_source(r.source)
            source = f"{Path(path).name}:{line}:{column}" if path else ""
            repeat = VoltaRepeat(r.start, r.end, r.count, r.alternatives, source)
            by_structure.setdefault(repeat.structure, repeat)
    repeats = tuple(sorted(by_structure.values(), key=lambda r: (r.start, -r.end)))
    iterated_starts = {r.start for r in rows if r.kind == "iterated-start"}
    iterated_returns = {(r.start, r.end) for r in rows if r.kind == "iterated-return"}
    walked_starts = {r.start for r in repeats}
    walked_returns = set().union(*(_expected_returns(r) for r in repeats))
    if walked_starts != iterated_starts or walked_returns != iterated_returns:
        missing = sorted(iterated_starts - walked_starts) + sorted(
            {s for s, _ in iterated_returns - walked_returns}
        )
        raise NotUnrollableError(
            f"the repeats read from the music of score {score + 1} do not match LilyPond's "
            f"iteration (starts {sorted(walked_starts)} against {sorted(iterated_starts)}"
            f"{f'; first unexplained: {missing[0]}' if missing else ''})"
        )
    return repeats


def _inside(inner: VoltaRepeat, span: Span) -> bool:
    return span[0] <= inner.start and inner.end <= span[1]


def _check_structure(repeats: tuple[VoltaRepeat, ...]) -> None:
    """Raise unless any two repeats are disjoint or nested in a body or alternative."""
    for i, a in enumerate(repeats):
        for b in repeats[i + 1 :]:
            if a.end <= b.start or b.end <= a.start:
                continue
            if any(_inside(b, piece) for piece in a.pieces()) or any(
                _inside(a, piece) for piece in b.pieces()
            ):
                continue
            raise NotUnrollableError(
                f"voices write different repeats over the same music: {a.describe()} and "
                f"{b.describe()}; no one playing order for all voices"
            )


def _expand(span: tuple[Fraction, Fraction | None], repeats: list[VoltaRepeat]) -> list[Span]:
    """Return the printed spans that playing ``span`` goes through, its repeats unrolled."""
    start, stop = span
    within = [r for r in repeats if start <= r.start and (stop is None or r.end <= stop)]
    outer = [
        r for r in within if not any(o is not r and _inside(r, (o.start, o.end)) for o in within)
    ]
    spans: list[Span] = []
    at = start
    for repeat in sorted(outer, key=lambda r: r.start):
        if at < repeat.start:
            spans.append((at, repeat.start))
        inner = [r for r in within if r is not repeat and _inside(r, (repeat.start, repeat.end))]
        for pieces in repeat.passes():
            for piece in pieces:
                spans.extend(_expand(piece, [r for r in inner if _inside(r, piece)]))
        at = repeat.end
    if stop is None or at < stop:
        spans.append((at, stop))  # type: ignore[arg-type]
    return spans


def shared_timeline(repeats: tuple[VoltaRepeat, ...]) -> Timeline:
    """Unroll a score's repeats into one playing order of printed spans for every voice.

    Nested repeats are unrolled within each pass of the repeat around them.

    Raises
    ------
    NotUnrollableError
        If two repeats overlap without one lying inside a body or an
        alternative of the other (voices writing different repeats over the
        same bars).
    """
    _check_structure(repeats)
    segments: list[Segment] = []
    performed = Fraction(0)
    for start, stop in _expand((Fraction(0), None), list(repeats)):
        if stop is not None and stop <= start:
            continue
        last = segments[-1] if segments else None
        if last is not None and last.printed_end == start:
            # Contiguous in print and in performance: one segment.
            segments[-1] = Segment(last.printed_start, stop, last.performed_start)
        else:
            segments.append(Segment(start, stop, performed))
        if stop is not None:
            performed += stop - start
    return Timeline(repeats, tuple(segments))


def out_of_step(
    events: list[LoggedEvent], printed_main: dict[int, float], timeline: Timeline
) -> str:
    """Say how LilyPond's unfolded MIDI departs from the score's repeat structure.

    Every note event with a notehead must be played exactly at the moments
    where the timeline plays its printed moment.  Tremolo and percent notes,
    which LilyPond plays where they are printed, are not compared, nor are
    events without a printed moment of their own (``printed_main`` leaves out
    an event the music holds in several places, which shares its id).

    Parameters
    ----------
    events : list of LoggedEvent
        The unfolded performed log of one score.
    printed_main : dict
        Event id -> printed main moment of its one notehead.
    timeline : Timeline
        The score's :func:`shared_timeline`.

    Returns
    -------
    str
        ``""`` when the MIDI plays the timeline; else the first departure,
        naming the repeats written in some voices only.
    """
    played: dict[int, list[float]] = defaultdict(list)
    for event in events:
        if not event.measured_repeat and event.event_id in printed_main:
            played[event.event_id].append(float(event.moment_main))
    for event_id, moments in played.items():
        printed = printed_main[event_id]
        expected = timeline.performed_moments(printed)
        moments.sort()
        if len(moments) != len(expected) or any(
            abs(a - b) > _EPS for a, b in zip(moments, expected, strict=True)
        ):
            repeats = timeline.repeats_over(printed) or list(timeline.repeats)
            structure = "; ".join(r.describe() for r in repeats) or "the score (no volta repeat)"
            return (
                f"a repeat written in some voices only: the note printed at {printed:g} "
                f"(event {event_id}) is played {len(moments)} time(s) by LilyPond's unfolded "
                f"MIDI, {len(expected)} by {structure}"
            )
    return ""


def _seconds_at(midi_path: Path, shift_ticks: int) -> Callable[[float], float]:
    """Seconds of the MIDI file's tempo map at a printed moment (whole notes)."""
    midi = mido.MidiFile(midi_path)
    ticks, seconds, tempos = _tempo_map(midi)

    def at(moment: float) -> float:
        tick = moment * _TICKS_PER_WHOLE + shift_ticks
        i = max(bisect.bisect_right(ticks, tick) - 1, 0)
        return seconds[i] + (tick - ticks[i]) * tempos[i] / 1e6 / midi.ticks_per_beat

    return at


def unroll_score(
    table: np.ndarray,
    notes: list[MidiNote],
    events: list[LoggedEvent],
    pairs: dict[int, int],
    timeline: Timeline,
    midi_path: Path,
) -> np.ndarray:
    """Play a timeline rendering's notes in the order of the score's repeat structure.

    The rendering played the printed timeline once; each :class:`Segment` is
    now played in turn, its notes moved to where the segment starts in the
    performance, in whole notes and in seconds (each span keeps the tempo of
    the MIDI where it is printed).  A note belongs to the segment holding its
    printed main moment (grace notes go with their beat).  ``occurrence``
    counts the event's logged playings before this one, in playing order, as
    LilyPond counts them in an unfolded rendering.

    Parameters
    ----------
    table : np.ndarray
        :func:`~msmd_builder.stages.align.midi.performed_table` of the score,
        one row per note of ``notes``.
    notes, events, pairs
        The MIDI notes, the performed log and their pairing
        (:func:`~msmd_builder.stages.align.midi.match_notes`).
    timeline : Timeline
        The score's playing order.
    midi_path : Path
        The MIDI file, for its tempo map.

    Returns
    -------
    np.ndarray
        The performed notes, in time order.
    """
    if not len(table):
        return table
    onset_ticks = np.array([n.onset_tick for n in notes], dtype=np.int64)
    # LilyPond shifts the whole MIDI by the grace time before the first beat.
    shifts = Counter(
        int(onset_ticks[n] - events[e].moment_main * _TICKS_PER_WHOLE)
        for n, e in pairs.items()
        if events[e].moment_grace == 0
    )
    shift = shifts.most_common(1)[0][0] if shifts else 0
    main = np.maximum((onset_ticks - shift) / _TICKS_PER_WHOLE, 0.0)
    for n, e in pairs.items():
        main[n] = float(events[e].moment_main)
    plays: dict[int, list[float]] = defaultdict(list)
    for event in events:
        plays[event.event_id].append(float(event.moment_main))
    for moments in plays.values():
        moments.sort()
    seconds_at = _seconds_at(midi_path, shift)

    parts = []
    played_before: Counter[int] = Counter()
    seconds = seconds_at(float(timeline.segments[0].printed_start))
    for segment in timeline.segments:
        start = float(segment.printed_start)
        end = np.inf if segment.printed_end is None else float(segment.printed_end)
        part = table[(main >= start - _EPS) & (main < end - _EPS)].copy()
        part["onset_whole"] += float(segment.performed_start) - start
        delta = seconds - seconds_at(start)
        part["onset_sec"] += delta
        part["offset_sec"] += delta
        for row in part:
            event_id = int(row["event_id"])
            if event_id >= 0:
                before_segment = bisect.bisect_left(plays[event_id], start - _EPS)
                row["occurrence"] += played_before[event_id] - before_segment
        for event_id, moments in plays.items():
            if segment.printed_end is None:
                break
            lo = bisect.bisect_left(moments, start - _EPS)
            hi = bisect.bisect_left(moments, float(segment.printed_end) - _EPS)
            if hi > lo:
                played_before[event_id] += hi - lo
        parts.append(part)
        if segment.printed_end is not None:
            seconds += seconds_at(float(segment.printed_end)) - seconds_at(start)
    unrolled = np.concatenate(parts)
    order = np.argsort(np.round(unrolled["onset_sec"], 9), kind="stable")
    return unrolled[order]
