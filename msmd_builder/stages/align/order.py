"""Order checks of the performed notes against the printed music.

* :func:`reading_order`: performed notes walk the printed systems in order,
  except at jumps;
* :func:`voice_order`: within a voice, the playings of one occurrence follow
  the voice's written order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ReadingOrder", "reading_order", "VoiceOrder", "voice_order"]


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
        :data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE`, in playing order.
    noteheads : np.ndarray
        :data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE`, indexed by ``notehead_id``.

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
class VoiceOrder:
    """Whether each voice plays its notes in written order.

    Attributes
    ----------
    checked : int
        Performed notes checked (linked to a notehead, their voice known).
    violations : int
        Notes played right after a note of the same voice and occurrence that
        is written later.
    first_violation : str
        The first violating note, described for the error message ("" if none).
    """

    checked: int
    violations: int
    first_violation: str = ""


def voice_order(performed: np.ndarray, voices: np.ndarray, noteheads: np.ndarray) -> VoiceOrder:
    """Check that within each voice the playings of one occurrence follow the written order.

    A voice plays its notes in the order they are written; only a repeat or a
    jump takes it back, and then to notes it plays once more (a higher
    ``occurrence`` than the note before).  So of two notes a voice plays one
    right after the other (in MIDI time) with the same occurrence, the later
    one must not be written earlier, by printed moment (main, then grace, as
    LilyPond orders moments).  Only neighbours are compared: nested repeats
    mix occurrences (A B B C A B B C plays its second A after its second B).
    A note that breaks this is linked to the wrong notehead, as two same-pitch
    grace notes linked the wrong way round would be.  Unlike
    :func:`reading_order` this looks at no geometry, so it holds within a
    system too.

    Parameters
    ----------
    performed : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE` of one score's
        MIDI, in MIDI time order, before jumps are realized.
    voices : np.ndarray
        Per row of ``performed``, the MIDI score's Voice context that played
        it (:attr:`~msmd_builder.lilypond.logs.LoggedEvent.voice`); -1 unknown.
    noteheads : np.ndarray
        :data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE`, indexed by ``notehead_id``.

    Returns
    -------
    VoiceOrder
    """
    rows = np.flatnonzero((performed["notehead_id"] >= 0) & (np.asarray(voices) >= 0))
    # Playing order: MIDI onset, stable (the table is in MIDI order already).
    rows = rows[np.argsort(performed["onset_sec"][rows], kind="stable")]
    heads = noteheads[performed["notehead_id"][rows]]
    written = np.stack([np.round(heads["onset_whole"], 9), np.round(heads["grace_whole"], 9)], 1)
    occurrence = performed["occurrence"][rows]
    previous: dict[int, int] = {}  # voice -> index into rows of the note it played last
    violations = 0
    first = ""
    for k, r in enumerate(rows):
        before = previous.get(int(voices[r]))
        previous[int(voices[r])] = k
        if (
            before is None
            or occurrence[before] != occurrence[k]
            or tuple(written[k]) >= tuple(written[before])
        ):
            continue
        violations += 1
        if not first:
            first = (
                f"notehead {_head(heads[k])} sounds at {float(performed['onset_sec'][r]):.3f} s, "
                f"right after notehead {_head(heads[before])}, written later in the same voice "
                f"(both playing {int(occurrence[k]) + 1})"
            )
    return VoiceOrder(len(rows), violations, first)


def _head(head: np.void) -> str:
    """Notehead id, source line:char and printed moment, for messages."""
    grace = float(head["grace_whole"])
    moment = f"{float(head['onset_whole']):g}" + (f"{grace:+g}" if grace else "")
    return (
        f"{int(head['notehead_id'])} (line {int(head['source_line'])}:"
        f"{int(head['source_char'])}, moment {moment})"
    )
