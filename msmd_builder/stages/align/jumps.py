"""Written jumps (D.C., D.S., Fine, Coda): play them, as read by :mod:`.jump_reading`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np

from msmd_builder.core.errors import NotUnrollableError
from msmd_builder.lilypond.logs import Mark
from msmd_builder.stages.align.jump_reading import JumpPlan, read_jumps

__all__ = [
    "JumpPlan",
    "read_jumps",
    "realize_jumps",
    "repeat_passes",
    "drop_passes",
    "without_repeats",
]

_EPS = 1e-9


def _seconds_at(rows: np.ndarray, printed: np.ndarray, grace: np.ndarray, whole: float) -> float:
    """Seconds at performed position ``whole`` (whole notes), from the rows' beats.

    Interpolated between the onsets of the rows' main notes, extrapolated with
    the nearest tempo beyond them.
    """
    beats = (grace == 0) & ~np.isnan(printed)
    xs, index = np.unique(rows["onset_whole"][beats], return_index=True)
    ys = rows["onset_sec"][beats][index]
    if len(xs) < 2:
        return float(ys[0]) if len(xs) else 0.0
    if whole < xs[0]:
        return float(ys[0] - (xs[0] - whole) * (ys[1] - ys[0]) / (xs[1] - xs[0]))
    if whole > xs[-1]:
        return float(ys[-1] + (whole - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]))
    return float(np.interp(whole, xs, ys))


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
    if np.unique(rows["onset_whole"][beats]).size < 2:
        return whole, float(rows["onset_sec"][first])
    return whole, _seconds_at(rows, printed, grace, whole)


def _last_reached(
    rows: np.ndarray, printed: np.ndarray, grace: np.ndarray, at: float
) -> tuple[float, float]:
    """(whole notes, seconds) at which the performance last reaches printed ``at``.

    The latest-played row printed before ``at`` fixes the pass; ``at`` lies
    as far after it in the performance as in print.
    """
    before = np.flatnonzero(printed < at - _EPS)
    if not len(before):
        return float(rows["onset_whole"].min()), float(rows["onset_sec"].min())
    last = before[np.argmax(rows["onset_whole"][before])]
    whole = float(rows["onset_whole"][last] - grace[last] - printed[last] + at)
    return whole, _seconds_at(rows, printed, grace, whole)


def _replay(
    played: np.ndarray,
    plan: JumpPlan,
    printed_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    measured_repeat_ids: frozenset[int],
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Return the notes of ``plan``'s printed span, played once without repeats, as in ``played``.

    Returns the replayed rows (their times still those of ``played``) and the
    (whole notes, seconds) where the span starts and stops in ``played``'s
    last pass through it.  ``occurrence`` continues each event's count in
    ``played``.
    """
    once = without_repeats(played, measured_repeat_ids=measured_repeat_ids)
    once_printed, once_grace = printed_of(once)
    chosen = (once_printed >= plan.start - _EPS) & (once_printed < plan.stop - _EPS)
    if not chosen.any():
        raise NotUnrollableError(f"{plan.kind}: no note between the jump's start and its end")
    replay = once[chosen].copy()
    last_occurrence: dict[int, int] = defaultdict(lambda: -1)
    for event_id, occurrence in zip(played["event_id"], played["occurrence"], strict=True):
        last_occurrence[int(event_id)] = max(last_occurrence[int(event_id)], int(occurrence))
    for row in replay:
        last_occurrence[int(row["event_id"])] += 1
        row["occurrence"] = last_occurrence[int(row["event_id"])]
    start = _time_at(once, once_printed, once_grace, plan.start)
    stop = _time_at(once, once_printed, once_grace, plan.stop)
    return replay, start, stop


def _shift(rows: np.ndarray, whole: float, seconds: float) -> np.ndarray:
    moved = rows.copy()
    moved["onset_whole"] += whole
    moved["onset_sec"] += seconds
    moved["offset_sec"] += seconds
    return moved


def realize_jumps(
    table: np.ndarray,
    marks: list[Mark],
    *,
    measured_repeat_ids: frozenset[int] = frozenset(),
    printed_onset_whole: np.ndarray | None = None,
    printed_grace_whole: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[JumpPlan, ...]]:
    """Add the replays that written jumps ask for to a score's performed notes.

    The jumps are read by :func:`read_jumps`.  Each replay plays a printed
    span (from the beginning or the segno up to the Fine, the "To Coda" note,
    the Trio or the end) once more *without repeats*, as is customary: of
    every repeated passage only its last time through is kept, which also
    keeps the last alternative ending and drops the earlier ones (see
    :func:`without_repeats`).  Notes without a notehead are not replayed
    (their printed place is unknown); a replayed note's ``occurrence`` is one
    higher than its event's last before.

    * The last jump of the score: the score is played through as unfolded (up
      to the Coda, if there is one), the replay follows the last release
      before it, at the same tempo, and the Coda moves after the replay.
    * Every earlier jump (jumps read in order): the replay is played where the
      performance last reaches the end of the music carrying the jump, and
      the rest of the performance moves after it.
    * A jump out of the piece: nothing is replayed; the score is played
      through, its own repeats unrolled, and the performance ends with it (such
      a text stands on the last note but one or under the final bar, with the
      final bar still to play).

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
        The performed notes with the jumps realized (unchanged if there is none).
    plans : tuple of JumpPlan
        The jumps realized, in printed order (empty if none is written).

    Raises
    ------
    NotUnrollableError
        If jumps are written but do not read reliably.
    """
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
    plans = tuple(read_jumps(marks, printed_onset_whole[heads_here]))
    if not plans or not len(table):
        return table, plans
    table = table[np.argsort(table["onset_whole"], kind="stable")]
    for plan in plans[:-1]:
        table = _realize_in_place(table, plan, printed_of, measured_repeat_ids)
    last = plans[-1]
    if last.leaves:
        return table, plans
    return _realize_at_the_end(table, last, printed_of, measured_repeat_ids), plans


def _realize_in_place(
    table: np.ndarray,
    plan: JumpPlan,
    printed_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    measured_repeat_ids: frozenset[int],
) -> np.ndarray:
    """Insert ``plan``'s replay where the performance last reaches its jump; move the rest on."""
    printed, grace = printed_of(table)
    cut_whole, cut_sec = _last_reached(table, printed, grace, plan.end)
    before = table["onset_whole"] < cut_whole - _EPS
    first, rest = table[before], table[~before]
    replay, (start_whole, start_sec), (stop_whole, stop_sec) = _replay(
        first, plan, printed_of, measured_repeat_ids
    )
    replay = _shift(replay, cut_whole - start_whole, cut_sec - start_sec)
    rest = _shift(rest, stop_whole - start_whole, stop_sec - start_sec)
    replayed = Counter(replay["event_id"].tolist())
    for row in rest:
        row["occurrence"] += replayed.get(int(row["event_id"]), 0)
    return np.concatenate([first, replay, rest])


def _realize_at_the_end(
    table: np.ndarray,
    plan: JumpPlan,
    printed_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    measured_repeat_ids: frozenset[int],
) -> np.ndarray:
    """Play the score through (up to the Coda), then ``plan``'s replay, then the Coda."""
    printed, _ = printed_of(table)
    if plan.coda is not None:
        before = np.flatnonzero(printed < plan.coda - _EPS)
        cut = int(before.max()) + 1 if len(before) else 0
        first, tail = table[:cut], table[cut:]
        if not len(first) or not (tail["notehead_id"] >= 0).any():
            raise NotUnrollableError(f"{plan.kind}: no music before or after the Coda sign")
    else:
        first, tail = table, table[:0]
    replay, (start_whole, start_sec), (stop_whole, stop_sec) = _replay(
        first, plan, printed_of, measured_repeat_ids
    )
    cursor_whole = float((first["onset_whole"] + first["duration_whole"]).max())
    cursor_sec = float(first["offset_sec"].max())
    replay = _shift(replay, cursor_whole - start_whole, cursor_sec - start_sec)
    if len(tail):
        tail_printed, tail_grace = printed_of(tail)
        coda_whole, coda_sec = _time_at(tail, tail_printed, tail_grace, plan.coda)
        tail = _shift(
            tail,
            cursor_whole + (stop_whole - start_whole) - coda_whole,
            cursor_sec + (stop_sec - start_sec) - coda_sec,
        )
    return np.concatenate([first, replay, tail])


def repeat_passes(
    section: np.ndarray, *, measured_repeat_ids: frozenset[int] = frozenset()
) -> list[tuple[float, float]]:
    """Return the earlier passes that the replays of a passage make redundant.

    A run of rows that replay earlier events is a new pass; every row from
    the first playing of those events up to the start of that pass belonged to
    an earlier pass (a repeated body or a non-final alternative ending).  Each
    such span is one taken repeat: dropping it plays that passage once, with
    its last ending.

    Parameters
    ----------
    section : np.ndarray
        Performed notes sorted by onset.
    measured_repeat_ids : frozenset of int
        Events of tremolo and percent repeats: their replays start no new pass.

    Returns
    -------
    list of (float, float)
        ``[start, stop)`` in the section's ``onset_whole`` of each earlier
        pass, in playing order.
    """
    first_seen: dict[int, float] = {}
    for row in section:
        first_seen.setdefault(int(row["event_id"]), float(row["onset_whole"]))
    # For each replayed row (occurrence >= 1 here), the earliest first playing
    # it refers back to: the pass starts there and ends where the replay starts.
    onsets = section["onset_whole"]
    passes: list[list[float]] = []
    seen: set[int] = set()
    pass_start: float | None = None  # onset of the replayed pass now running
    for i, row in enumerate(section):
        event_id = int(row["event_id"])
        replay = event_id in seen and event_id >= 0 and event_id not in measured_repeat_ids
        if replay:
            if pass_start is None:
                pass_start = float(onsets[i])
                passes.append([first_seen[event_id], pass_start])
            passes[-1][0] = min(passes[-1][0], first_seen[event_id])
        elif event_id not in measured_repeat_ids:
            pass_start = None
        seen.add(event_id)
    return [(start, stop) for start, stop in passes]


def drop_passes(section: np.ndarray, passes: list[tuple[float, float]]) -> np.ndarray:
    """Drop the rows played in ``passes`` and move the rest earlier to close the gaps.

    Parameters
    ----------
    section : np.ndarray
        Performed notes sorted by onset.
    passes : list of (float, float)
        ``[start, stop)`` spans of ``onset_whole`` (from :func:`repeat_passes`).

    Returns
    -------
    np.ndarray
        The kept rows, contiguous in time from the first row's onset, in
        seconds and in whole notes.
    """
    onsets = section["onset_whole"]
    keep = np.ones(len(section), dtype=bool)
    for start, stop in passes:
        keep &= ~((onsets >= start - 1e-9) & (onsets < stop - 1e-9))
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


def without_repeats(
    section: np.ndarray, *, measured_repeat_ids: frozenset[int] = frozenset()
) -> np.ndarray:
    """Play a passage once: keep only the last time through each repeat.

    Drops every pass :func:`repeat_passes` finds (:func:`drop_passes`): the
    kept rows are moved earlier to close the gaps, in seconds and in whole
    notes.

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
    return drop_passes(section, repeat_passes(section, measured_repeat_ids=measured_repeat_ids))
