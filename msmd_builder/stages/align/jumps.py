"""Written jumps (D.C., D.S., Fine, Coda): read them into a playing order and realize it."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from msmd_builder.lilypond.logs import Mark

__all__ = [
    "JumpPlan",
    "read_jump",
    "realize_jumps",
    "repeat_passes",
    "drop_passes",
    "without_repeats",
]


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


#: Marks that stand at a bar line rather than on a note.
_BAR_MARKS = frozenset({"RehearsalMark", "TextMark", "SectionLabel", "SegnoMark", "CodaMark"})


_EPS = 1e-9


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
    from msmd_builder.core.errors import NotUnrollableError

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
    from msmd_builder.core.errors import NotUnrollableError

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

    Drops every pass :func:`repeat_passes` finds (:func:`drop_passes`).

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
