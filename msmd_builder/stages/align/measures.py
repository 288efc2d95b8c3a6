"""Performed measures: every measure occurrence as the performance plays it.

The performed notes say where the performance is in the printed music: a note
linked to a notehead sounds at unrolled time ``u`` (its ``onset_whole`` less
its grace offset) and is printed at written time ``p`` of its score.  Between
two jumps the performance reads the score straight on, so ``u - p`` is
constant; a repeat, an alternative ending or a realized Da Capo changes it.
:func:`passes` cuts the notes, in playing order, into such *passes*.

Where one pass ends and the next begins is exact where LilyPond says so: the
jump leaves the printed music at a place ``b`` and enters it at a place ``a``
with ``b - a`` fixed by the two passes' offsets, both places are positions the
layout marks (a bar line of any glyph, the start of a repeat alternative, a
measure boundary, a segno or coda sign, the score's start), and the jump lies
between the last note of one pass and the first of the next.  Among several
such pairs, one whose places carry a repeat sign or an alternative wins, then
the earliest.  A realized Da Capo or Dal Segno starts its replay as the last
note before it ends (:func:`~msmd_builder.stages.align.jumps.realize_jumps`),
which need not be at a bar line: when the next pass begins exactly where this
one's notes stop sounding, the jump is there.  Only when neither fits is the
first note of the new pass taken as the jump (counted as ``guessed_jumps``).
A score's last pass ends at the first measure end after its last written note
(the end of the music, or a Fine).

Each pass covers printed ``[a, b)``; every measure of the score that overlaps
it is played once more: a *measure occurrence* ("measure 12, second time"),
with its span in unrolled whole notes and the part of the measure played.
Seconds follow the performed notes' own clock: the notes' onsets (grace notes
left out, as LilyPond's MIDI moves them) give unrolled whole notes -> seconds,
interpolated linearly between onsets and continued with the nearest tempo
beyond them, which is exact wherever the tempo is constant between two onsets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from msmd_builder.core.tables import PERFORMED_MEASURE_DTYPE
from msmd_builder.core.units import sec_to_frame
from msmd_builder.lilypond.logs import (
    BarLine,
    Mark,
    read_barlines,
    read_marks,
    read_performed_log,
)

__all__ = [
    "Pass",
    "passes",
    "jump_places",
    "whole_to_sec_map",
    "performed_measures",
    "MeasureTimes",
    "check_note_measures",
    "rendered_measure_times",
]

_EPS = 1e-9


def _key(x: float) -> float:
    return round(float(x), 9)


@dataclass
class Pass:
    """A stretch of the performance that reads one score straight on.

    Attributes
    ----------
    score : int
        Layout score index.
    offset_whole : float
        Unrolled minus printed time, whole notes: constant over the pass.
    first_whole, last_whole : float
        Unrolled main onsets of its first and last notes.
    first_printed, last_printed : float
        Their printed onsets.
    last_printed_end : float
        Latest printed end (onset + written duration) of its notes.
    last_release_whole : float
        Latest unrolled end (onset + sounding duration) of its notes.
    start_printed, end_printed : float
        Where the pass enters and leaves the printed music (set by
        :func:`performed_measures`).
    guessed : bool
        The start was not pinned by the layout (the first note's onset taken).
    rows : list of int
        Its notes, rows of the performed table, in playing order.
    """

    score: int
    offset_whole: float
    first_whole: float
    last_whole: float
    first_printed: float
    last_printed: float
    last_printed_end: float
    last_release_whole: float
    start_printed: float = np.nan
    end_printed: float = np.nan
    guessed: bool = False
    rows: list[int] = field(default_factory=list)


def passes(
    performed: np.ndarray,
    noteheads: np.ndarray,
    *,
    measured_repeat_ids: Iterable[int] = (),
) -> list[Pass]:
    """Cut the linked performed notes into passes of constant unrolled - printed offset.

    Notes of tremolo and percent repeats (``measured_repeat_ids``) are printed
    once and played several times in a row without a jump: they are left out
    here (the pass around them covers them).

    Parameters
    ----------
    performed : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE`.
    noteheads : np.ndarray
        :data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE`, indexed by ``notehead_id``.
    measured_repeat_ids : iterable of int
        Event ids inside tremolo or percent repeats.

    Returns
    -------
    list of Pass
        In playing order; ``rows`` are rows of ``performed``.
    """
    skip = set(int(i) for i in measured_repeat_ids)
    rows = np.flatnonzero(performed["notehead_id"] >= 0)
    rows = rows[[int(performed["event_id"][r]) not in skip for r in rows]]
    if not len(rows):
        return []
    heads = noteheads[performed["notehead_id"][rows]]
    main = performed["onset_whole"][rows] - heads["grace_whole"]
    printed = heads["onset_whole"]
    offset = np.round(main - printed, 9)
    order = np.lexsort((printed, np.round(main, 9)))
    out: list[Pass] = []
    for i in order:
        score, d = int(heads["score"][i]), float(offset[i])
        u, p = float(main[i]), float(printed[i])
        end = p + float(heads["duration_whole"][i])
        release = float(performed["onset_whole"][rows[i]] + performed["duration_whole"][rows[i]])
        current = out[-1] if out else None
        if current is None or current.score != score or current.offset_whole != d:
            current = Pass(score, d, u, u, p, p, end, release)
            out.append(current)
        current.last_whole = max(current.last_whole, u)
        current.first_printed = min(current.first_printed, p)
        current.last_printed = max(current.last_printed, p)
        current.last_printed_end = max(current.last_printed_end, end)
        current.last_release_whole = max(current.last_release_whole, release)
        current.rows.append(int(rows[i]))
    return out


def jump_places(
    measures: np.ndarray, barlines: Iterable[BarLine], marks: Iterable[Mark] = ()
) -> tuple[dict[int, np.ndarray], dict[int, set[float]]]:
    """Return the printed places where a performance may leave or enter each score.

    Returns
    -------
    places : dict of int to np.ndarray
        Per score, sorted written positions (whole notes): measure starts and
        ends, bar lines, starts of alternatives, segno and coda signs.
    marked : dict of int to set of float
        Per score, the places that carry a repeat sign, an alternative start,
        a jump sign or the score's start or end: preferred when several
        places fit a jump.
    """
    places: dict[int, set[float]] = defaultdict(set)
    marked: dict[int, set[float]] = defaultdict(set)
    for row in measures:
        score = int(row["score"])
        start = _key(row["onset_whole"])
        places[score].update((start, _key(row["onset_whole"] + row["length_whole"])))
        if row["volta"]:
            marked[score].add(start)
    for score in list(places):
        marked[score].update((min(places[score]), max(places[score])))
    for bar in barlines:
        at = _key(float(bar.moment_main))
        places[bar.score].add(at)
        if bar.starts_repeat or bar.ends_repeat or not bar.glyph:
            marked[bar.score].add(at)
    for mark in marks:
        if mark.signs:
            at = _key(float(mark.moment_main))
            places[mark.score].add(at)
            marked[mark.score].add(at)
    return {s: np.array(sorted(v)) for s, v in places.items()}, dict(marked)


def _settle(
    all_passes: list[Pass], places: dict[int, np.ndarray], marked: dict[int, set[float]]
) -> int:
    """Set every pass's printed start and end; return how many jumps were guessed."""
    guessed = 0
    for k, this in enumerate(all_passes):
        here = places.get(this.score, np.zeros(0))
        before = all_passes[k - 1] if k else None
        if before is None or before.score != this.score:
            this.start_printed = float(here[0]) if len(here) else this.first_printed
            this.start_printed = min(this.start_printed, this.first_printed)
        after = all_passes[k + 1] if k + 1 < len(all_passes) else None
        if after is None or after.score != this.score:
            ends = here[here >= this.last_printed_end - _EPS]
            this.end_printed = float(ends[0]) if len(ends) else this.last_printed_end
            continue
        # A jump inside the score: J - d_this = b and J - d_after = a, both places.
        lo, hi = this.last_whole, after.first_whole
        candidates = []
        for b in here[(here + this.offset_whole > lo + _EPS)]:
            jump = b + this.offset_whole
            if jump > hi + _EPS:
                break
            a = _key(jump - after.offset_whole)
            if len(here) and np.any(np.abs(here - a) < _EPS):
                score_marks = marked.get(this.score, set())
                preferred = _key(b) in score_marks or a in score_marks
                candidates.append((not preferred, jump, float(b), a))
        if candidates:
            _, _, b, a = min(candidates)
            this.end_printed, after.start_printed = b, a
        elif abs(this.last_release_whole - hi) < _EPS:
            # The next pass starts as this one's notes stop (a realized jump's replay).
            this.end_printed = hi - this.offset_whole
            after.start_printed = hi - after.offset_whole
        else:
            guessed += 1
            after.guessed = True
            this.end_printed = hi - this.offset_whole
            after.start_printed = after.first_printed
    return guessed


def whole_to_sec_map(
    performed: np.ndarray, noteheads: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``f(whole) -> sec`` through the performed notes' onsets.

    Anchors are the onsets of the notes that are not grace notes (LilyPond's
    MIDI shifts those), one per unrolled position, and the start of the music
    (whole note 0 at 0 s); between anchors the map is linear, beyond them it
    continues with the tempo of the nearest two.

    Parameters
    ----------
    performed : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE` (score or
        performance seconds).
    noteheads : np.ndarray
        :data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE`, indexed by ``notehead_id``.

    Returns
    -------
    callable
        Vectorized; float64 in, float64 out.
    """
    linked = performed["notehead_id"] >= 0
    ids = np.where(linked, performed["notehead_id"], 0)
    grace = np.where(linked, noteheads["grace_whole"][ids] if len(noteheads) else 0.0, 0.0)
    beats = grace == 0
    whole = np.round(performed["onset_whole"][beats], 9)
    sec = performed["onset_sec"][beats]
    order = np.lexsort((sec, whole))
    xs, first = np.unique(whole[order], return_index=True)
    ys = sec[order][first]
    if not len(xs) or xs[0] > 0:
        xs, ys = np.r_[0.0, xs], np.r_[0.0, ys]
    if len(xs) == 1:
        xs, ys = np.r_[xs, xs[0] + 1.0], np.r_[ys, ys[0] + 4.0]  # 60 quarters per minute

    def to_sec(w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        out = np.interp(w, xs, ys)
        low, high = w < xs[0], w > xs[-1]
        out[low] = ys[0] - (xs[0] - w[low]) * (ys[1] - ys[0]) / (xs[1] - xs[0])
        out[high] = ys[-1] + (w[high] - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return out

    return to_sec


@dataclass(frozen=True)
class MeasureTimes:
    """The measure occurrences of a performance and how they were found.

    Attributes
    ----------
    table : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_MEASURE_DTYPE`, in playing order.
    passes : list of Pass
        The passes they come from.
    guessed_jumps : int
        Jumps whose place the layout did not pin down.
    """

    table: np.ndarray
    passes: list[Pass]
    guessed_jumps: int


def performed_measures(
    performed: np.ndarray,
    noteheads: np.ndarray,
    measures: np.ndarray,
    barlines: Iterable[BarLine],
    *,
    marks: Iterable[Mark] = (),
    measured_repeat_ids: Iterable[int] = (),
) -> MeasureTimes:
    """Every measure occurrence of the performed notes (score time).

    Parameters
    ----------
    performed : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE` in playing order.
    noteheads : np.ndarray
        :data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE`.
    measures : np.ndarray
        :data:`~msmd_builder.core.tables.MEASURE_DTYPE`.
    barlines : iterable of BarLine
        The layout's bar lines (:func:`~msmd_builder.lilypond.logs.read_barlines`).
    marks : iterable of Mark, optional
        Its marks; segno and coda signs are places a jump may enter.
    measured_repeat_ids : iterable of int, optional
        Event ids inside tremolo and percent repeats (see :func:`passes`).

    Returns
    -------
    MeasureTimes
    """
    all_passes = passes(performed, noteheads, measured_repeat_ids=measured_repeat_ids)
    places, marked = jump_places(measures, barlines, marks)
    guessed = _settle(all_passes, places, marked)
    firsts = measures[measures["part"] == 0]
    rows: list[tuple] = []
    seen: dict[int, int] = defaultdict(int)
    for this in all_passes:
        mine = firsts[firsts["score"] == this.score]
        mine = mine[np.argsort(mine["onset_whole"], kind="stable")]
        starts = mine["onset_whole"]
        ends = starts + mine["length_whole"]
        overlap = (starts < this.end_printed - _EPS) & (ends > this.start_printed + _EPS)
        for m in np.flatnonzero(overlap):
            a = max(float(starts[m]), this.start_printed)
            b = min(float(ends[m]), this.end_printed)
            measure = int(mine["measure"][m])
            rows.append(
                (
                    measure,
                    seen[measure],
                    this.score,
                    int(mine["bar_number"][m]),
                    a + this.offset_whole,
                    b + this.offset_whole,
                    a,
                    b,
                )
            )
            seen[measure] += 1
    table = np.zeros(len(rows), dtype=PERFORMED_MEASURE_DTYPE)
    for j, name in enumerate(PERFORMED_MEASURE_DTYPE.names[:8]):
        table[name] = [row[j] for row in rows]
    if len(table):
        # A score's last measure may reach past where the next score starts to play.
        table["end_whole"][:-1] = np.minimum(table["end_whole"][:-1], table["start_whole"][1:])
        to_sec = whole_to_sec_map(performed, noteheads)
        table["start_sec"] = to_sec(table["start_whole"])
        table["end_sec"] = to_sec(table["end_whole"])
        table["start_frame"] = sec_to_frame(table["start_sec"])
        table["end_frame"] = sec_to_frame(table["end_sec"])
    return MeasureTimes(table, all_passes, guessed)


def check_note_measures(
    performed: np.ndarray,
    noteheads: np.ndarray,
    measures: np.ndarray,
    times: MeasureTimes,
) -> tuple[int, str]:
    """Check that every linked performed note falls inside its measure occurrence.

    A note's occurrence is the one of the pass it belongs to whose measure
    holds its written onset.  Its unrolled main onset must lie in the
    occurrence's ``[start_whole, end_whole)`` and, unless it is a grace note,
    its onset in ``[start_sec, end_sec)`` (1 ns slack).

    Returns
    -------
    outside : int
        Notes that do not.
    first : str
        The first of them, described ("" if none).
    """
    firsts = measures[measures["part"] == 0]
    occurrences: dict[tuple[int, float], list[np.void]] = defaultdict(list)
    for row in times.table:
        offset = _key(row["start_whole"] - row["printed_start_whole"])
        occurrences[(int(row["measure"]), offset)].append(row)
    outside = 0
    first = ""
    for this in times.passes:
        mine = firsts[firsts["score"] == this.score]
        mine = mine[np.argsort(mine["onset_whole"], kind="stable")]
        rows = np.asarray(this.rows, dtype=np.int64)
        heads = noteheads[performed["notehead_id"][rows]]
        printed = heads["onset_whole"]
        main = performed["onset_whole"][rows] - heads["grace_whole"]
        where = np.searchsorted(mine["onset_whole"] - _EPS, printed, side="right") - 1
        for k, r in enumerate(rows):
            p, u = float(printed[k]), float(main[k])
            found = None
            if where[k] >= 0:
                measure = int(mine["measure"][where[k]])
                for row in occurrences.get((measure, _key(this.offset_whole)), []):
                    if row["printed_start_whole"] - _EPS <= p < row["printed_end_whole"] - _EPS:
                        found = row
            ok = found is not None and found["start_whole"] - _EPS <= u < found["end_whole"] - _EPS
            if ok and heads["grace_whole"][k] == 0:
                t = float(performed["onset_sec"][r])
                ok = found["start_sec"] - _EPS <= t < found["end_sec"] - _EPS
            if not ok:
                outside += 1
                if not first:
                    first = (
                        f"the note of notehead {int(performed['notehead_id'][r])} at "
                        f"{float(performed['onset_sec'][r]):.3f} s (written at {p:g}) is outside "
                        "its measure occurrence"
                    )
    return outside, first


def rendered_measure_times(
    render_dir: str | Path,
    performed: np.ndarray,
    noteheads: np.ndarray,
    measures: np.ndarray,
) -> tuple[MeasureTimes, dict[str, int | str]]:
    """Measure occurrences of a rendered, aligned piece, and the check of its notes.

    Reads the hooks' bar lines, marks and performed log (for the notes of
    tremolo and percent repeats) from the render folder, then runs
    :func:`performed_measures` and :func:`check_note_measures`.

    Returns
    -------
    times : MeasureTimes
    stats : dict
        ``measure_occurrences``, ``guessed_jumps``, ``notes_outside_measures``
        and ``first_note_outside_measure``.
    """
    folder = Path(render_dir)
    barlines = [b for p in sorted(folder.glob("*.msmd-barlines.tsv")) for b in read_barlines(p)]
    marks = [m for p in sorted(folder.glob("*.msmd-marks.tsv")) for m in read_marks(p)]
    log = next(iter(sorted(folder.glob("*.msmd-performed.tsv"))), None)
    measured = {e.event_id for e in read_performed_log(log) if e.measured_repeat} if log else set()
    times = performed_measures(
        performed, noteheads, measures, barlines, marks=marks, measured_repeat_ids=measured
    )
    outside, first = check_note_measures(performed, noteheads, measures, times)
    return times, {
        "measure_occurrences": int(len(times.table)),
        "guessed_jumps": times.guessed_jumps,
        "notes_outside_measures": outside,
        "first_note_outside_measure": first,
    }
