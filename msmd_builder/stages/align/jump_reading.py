"""Written jumps (D.C., D.S., Fine, Coda): read the marks of a score into jump plans.

The hooks log every text script, mark and segno/coda sign of the layout with
its printed moment (``*.msmd-marks.tsv``); :func:`read_jumps` reads them into
:class:`JumpPlan` objects by documented rules, or says why they do not read
into one playing order.  :mod:`msmd_builder.stages.align.jumps` plays them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from msmd_builder.core.errors import NotUnrollableError
from msmd_builder.lilypond.logs import Mark

__all__ = ["JumpPlan", "read_jumps", "mark_end"]


_DA_CAPO = re.compile(r"\bD\.\s*C\.|\bda\s+capo", re.IGNORECASE)


_DAL_SEGNO = re.compile(r"\bD\.\s*S\.|\bdal\s+segno", re.IGNORECASE)


_AL_CODA = re.compile(r"\b(?:al|to)\s+coda\b", re.IGNORECASE)


_AL_SEGNO = re.compile(r"\bal\s+segno\b", re.IGNORECASE)


_SAYS_FINE = re.compile(r"\bfine?\b", re.IGNORECASE)


#: A jump text that ends in "al": a drawn sign printed after it completes it.
_DANGLING_AL = re.compile(r"\bal\W*$", re.IGNORECASE)


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
    jump, then plays printed ``[start, stop)`` once more without repeats; the
    last jump of a score is taken after the score has been played through up
    to its Coda (or to its end), and the Coda, if any, follows its replay.  A
    jump out of the piece replays nothing: the score is played through, its
    own repeats unrolled, and the performance ends with it.

    Attributes
    ----------
    kind : str
        ``"da capo"`` or ``"dal segno"`` followed by ``"al fine"``, ``"al coda"``,
        ``"to the trio"`` or ``"to the end"``; or ``"da capo out of the piece"``.
    start : float
        Where the jump goes: 0 (Da Capo) or the segno.
    stop : float
        Where the replay stops (exclusive): after the Fine or the "To Coda"
        note, at the Trio, or ``inf`` (the end).
    coda : float or None
        Where the Coda begins; None without one.
    at, end : float
        Where the jump is written, and where the music carrying it ends (a
        jump followed by others leaves there for its replay).
    reading : str
        How a text that reads more than one way was read (D.C. al Segno,
        several segno signs, several jumps, music outside the piece); ``""``
        for a jump the rules read directly.
    leaves : bool
        A jump out of the piece (its text names music elsewhere).
    """

    kind: str
    start: float
    stop: float
    coda: float | None = None
    at: float = np.inf
    end: float = np.inf
    reading: str = ""
    leaves: bool = False


def _positions(marks: list[Mark]) -> list[Mark]:
    """One mark per printed moment (the same text in several staves is one mark)."""
    by_moment: dict[Fraction, Mark] = {}
    for mark in sorted(marks, key=lambda m: (m.moment_main, m.end_main is None, m.grob)):
        by_moment.setdefault(mark.moment_main, mark)
    return list(by_moment.values())


def mark_end(mark: Mark, printed: np.ndarray) -> float:
    """Return the printed moment where the music carrying ``mark`` ends (exclusive bound)."""
    if mark.end_main is not None:
        return float(mark.end_main)
    if mark.grob in _BAR_MARKS:
        return float(mark.moment_main)
    # Unknown carrier: the notes that start at the first onset at or after the mark.
    later = printed[printed >= float(mark.moment_main) - _EPS]
    return float(later.min()) + 1e-6 if len(later) else float(mark.moment_main)


def _is_jump(mark: Mark) -> bool:
    return bool(_DA_CAPO.search(mark.words) or _DAL_SEGNO.search(mark.words))


def _completed_signs(jumps: list[Mark], signs: list[Mark]) -> dict[int, Mark]:
    """Return the sign that ends each jump text written as "D.C. al" and a drawn sign.

    Such a text ("D.C. al" then a segno or coda glyph printed as a mark of its
    own) is completed by the first sign at or after the jump and before the
    next jump.  Returns jump index -> that sign.
    """
    completed: dict[int, Mark] = {}
    for i, jump in enumerate(jumps):
        if jump.signs or not _DANGLING_AL.search(jump.words):
            continue
        limit = jumps[i + 1].moment_main if i + 1 < len(jumps) else None
        after = [
            s
            for s in signs
            if s.moment_main >= jump.moment_main and (limit is None or s.moment_main < limit)
        ]
        if after:
            completed[i] = after[0]
    return completed


def read_jumps(marks: list[Mark], printed: np.ndarray) -> list[JumpPlan]:
    """Read the written jumps of one score into playing order, where they read reliably.

    Rules (texts are matched without case; the same text at the same moment in
    several staves counts once):

    * a jump text is "D.C." / "Da Capo" or "D.S." / "Dal Segno"; "D.C. al"
      followed by a drawn segno or coda sign reads as "D.C. al Segno" or
      "D.C. al Coda";
    * "D.C. al Segno" reads as "back to the segno sign" (like "D.S."), from
      the sign to the Fine, or to the end: the words also read "from the
      beginning to the sign", but a sign written at the beginning, or a sign
      in mid-phrase with a Fine on the tonic later, only make sense this way
      (the reading is recorded);
    * Dal Segno goes back to the segno sign nearest before the jump with which
      the rules below read; a sign that completes a jump text is not a place;
      when several signs come before the jump, the choice is recorded;
    * "al Coda" (in the jump text, or a "To Coda" text anywhere) needs one
      coda sign or "To Coda"/"Coda" text before the jump, where the replay
      leaves, and one at or after it, where the Coda begins;
    * otherwise one "Fine" (or "Fin.") between start and jump ends the replay;
    * a Da Capo without Fine ends at a "Trio" label (as "Menuetto D.C." after
      a trio means), else at the end: the whole score once more;
    * a Da Capo that names music this score does not delimit ("Menuet da
      Capo" at the end of a separately engraved Trio, "Aria da Capo" at the
      end of a variation), or that stands in a score beginning with its Trio,
      is a jump out of the piece: nothing is replayed, the score is played
      through and the performance ends with it (the texts stand on the last
      note but one, or under the final bar, with the final bar still to play);
    * several jump texts are read in printed order: each but the last must
      end its replay at or before itself (a Fine, a segno, a Trio label; no
      Coda) and returns to the music after it, as a rondo is played
      (A B A C A); the last is taken as a single jump would be.

    Parameters
    ----------
    marks : list of Mark
        The score's marks.
    printed : np.ndarray
        Printed onsets (whole notes) of the score's noteheads, for marks whose
        carrier the hooks did not see.

    Returns
    -------
    list of JumpPlan
        In printed order; empty if no jump is written.

    Raises
    ------
    NotUnrollableError
        If jumps are written but these rules do not pin them down.
    """
    jumps = _positions([m for m in marks if _is_jump(m)])
    if not jumps:
        return []
    others = [m for m in marks if not _is_jump(m)]
    segnos = _positions([m for m in others if "segno" in m.signs])
    codas = _positions([m for m in others if "coda" in m.signs])
    completed = _completed_signs(jumps, _positions(segnos + codas))
    plans = [
        _read_one(jump, others, printed, completed.get(i), set(completed.values()))
        for i, jump in enumerate(jumps)
    ]
    if len(plans) == 1:
        return plans
    texts = "; ".join(sorted({m.text.strip() for m in jumps}))
    for plan in plans[:-1]:
        if plan.leaves or plan.coda is not None or not plan.stop <= plan.at + _EPS:
            raise NotUnrollableError(
                f"several jump marks ({texts}) that do not chain into one playing order: "
                f"the {plan.kind} at {plan.at:g} does not end its replay before itself"
            )
    reading = (
        f"{len(plans)} jump marks read in printed order, each but the last returning "
        "to the music after it"
    )
    return [replace(p, reading="; ".join(filter(None, (p.reading, reading)))) for p in plans]


def _read_one(
    jump: Mark,
    others: list[Mark],
    printed: np.ndarray,
    completion: Mark | None,
    completions: set[Mark],
) -> JumpPlan:
    """Read one jump mark (see :func:`read_jumps`)."""
    texts = jump.text.strip() + (f" {completion.text.strip()}" if completion else "")
    at = float(jump.moment_main)
    end = mark_end(jump, printed)
    said = jump.signs | (completion.signs if completion else frozenset())
    segno = _DAL_SEGNO.search(jump.words) is not None
    readings = []
    if not segno and (_AL_SEGNO.search(jump.words) or "segno" in said):
        segno = True
        readings.append("D.C. al Segno read as back to the segno sign")
    al_coda = (
        _AL_CODA.search(jump.words) is not None
        or "coda" in said
        or any(_AL_CODA.search(m.words) for m in others)
    )
    if not segno:
        return _read_from(0.0, "da capo", jump, others, printed, at, end, al_coda, readings)
    places = [
        float(s.moment_main)
        for s in _positions([m for m in others if "segno" in m.signs and m not in completions])
        if float(s.moment_main) < at - _EPS
    ]
    if not places:
        raise NotUnrollableError(f"Dal Segno with no segno sign before the jump ({texts})")
    failures = []
    for start in sorted(places, reverse=True):
        try:
            plan = _read_from(start, "dal segno", jump, others, printed, at, end, al_coda, readings)
        except NotUnrollableError as exc:
            failures.append(exc.message)
            continue
        if len(places) > 1:
            chosen = (
                f"of {len(places)} segno signs before the jump, the nearest that reads ({start:g})"
            )
            plan = replace(plan, reading="; ".join(filter(None, (plan.reading, chosen))))
        return plan
    raise NotUnrollableError(
        f"Dal Segno with {len(places)} segno sign(s) before the jump, none of which reads "
        f"into one playing order: {failures[0]}"
    )


def _read_from(
    start: float,
    name: str,
    jump: Mark,
    others: list[Mark],
    printed: np.ndarray,
    at: float,
    end: float,
    al_coda: bool,
    readings: list[str],
) -> JumpPlan:
    """Read where a jump back to ``start`` stops (see :func:`read_jumps`)."""
    texts = jump.text.strip()
    reading = "; ".join(readings)
    if start >= at:
        raise NotUnrollableError(f"the segno is not before the jump ({texts})")
    fines = _positions([m for m in others if _FINE.match(m.words)])
    codas = _positions([m for m in others if "coda" in m.signs or _CODA.match(m.words)])
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
        stop = mark_end(leave[0], printed)
        if stop <= start:
            raise NotUnrollableError(f"the To Coda sign is not after the jump's start ({texts})")
        coda = float(enter[0].moment_main)
        return JumpPlan(f"{name} al coda", start, stop, coda, at, end, reading)
    if len(fines) > 1:
        raise NotUnrollableError(f"several Fine marks ({texts}); playing order ambiguous")
    if fines:
        stop = mark_end(fines[0], printed)
        if not start < stop or float(fines[0].moment_main) > at:
            raise NotUnrollableError(
                f"the Fine is not between the jump's start and the jump ({texts})"
            )
        return JumpPlan(f"{name} al fine", start, stop, None, at, end, reading)
    trios = _positions([m for m in others if _TRIO.match(m.words)])
    named = sorted(set(re.findall(r"[^\W\d_]+", jump.words.lower())) - _JUMP_WORDS)
    if name == "da capo" and named and not trios:
        return JumpPlan(
            "da capo out of the piece",
            0.0,
            0.0,
            None,
            at,
            end,
            f"the Da Capo names music outside this score ({' '.join(named)}): "
            "the performance ends with the score",
            leaves=True,
        )
    if _SAYS_FINE.search(jump.words):
        raise NotUnrollableError(f"the jump says al Fine but no Fine is written ({texts})")
    if name == "da capo" and trios:
        if len(trios) > 1:
            raise NotUnrollableError(f"Da Capo with several Trio labels ({texts})")
        trio = float(trios[0].moment_main)
        if trio <= 0:
            return JumpPlan(
                "da capo out of the piece",
                0.0,
                0.0,
                None,
                at,
                end,
                "the score begins with its Trio: the Da Capo goes to music before it, in "
                "another score; the performance ends with the score",
                leaves=True,
            )
        if trio < at:
            return JumpPlan("da capo to the trio", 0.0, trio, None, at, end, reading)
    return JumpPlan(f"{name} to the end", start, np.inf, None, at, end, reading)
