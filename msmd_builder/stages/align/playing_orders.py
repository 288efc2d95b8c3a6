"""Playing orders a performer may take: repeats taken or skipped, written jumps taken or not.

The align stage builds one playing order: every repeat taken, by the score's
repeat structure in every voice (LilyPond's unfolding, or the printed timeline
unrolled), then the written jumps taken (each replay without repeats, as is
customary).  Players often do otherwise -- skip some or all repeats, or stop
before the Da Capo -- so a recording of a piece is aligned against the orders
:func:`playing_orders` lists, all built from the align stage's own per-score
tables (:func:`~msmd_builder.stages.align.stage.score_performances`) with the
same tools (:func:`repeat_passes`, :func:`drop_passes`, the scores' jump plans
realized by :func:`realize_jumps`), so every note keeps its event, notehead and
score seconds.

A skipped repeat is played with its last ending, as :func:`without_repeats`
plays the passages a jump replays.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from msmd_builder.core.cache import sha256_bytes
from msmd_builder.core.errors import RepeatsOutOfStepError
from msmd_builder.stages.align.jumps import drop_passes, repeat_passes
from msmd_builder.stages.align.stage import ScorePerformance, join_scores, score_performances

__all__ = ["PlayingOrder", "playing_orders", "orders_of_rendering", "MAX_REPEATS_COMBINED"]

#: Pieces with at most this many repeats get a playing order for every choice of
#: taken and skipped repeats; pieces with more get all, none, and each one skipped.
MAX_REPEATS_COMBINED = 3


@dataclass(frozen=True)
class PlayingOrder:
    """One way of playing a piece.

    Attributes
    ----------
    name : str
        What is played, in words: ``"all repeats"``, ``"no repeats"``,
        ``"repeats 1, 3 of 3"``, with ``", da capo al fine not taken"`` when a
        written jump is left out; ``"printed order"`` for a piece rendered
        folded.
    repeats_taken : tuple of bool
        For each repeat of the piece (in playing order over all scores),
        whether it is taken.
    jumps_taken : bool
        Whether the written jumps are taken (True when there are none).
    events : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE` in playing
        order, score seconds.
    jumps : tuple of str
        The written jumps of the piece (their plans' kinds, in playing order),
        taken or not.
    """

    name: str
    repeats_taken: tuple[bool, ...]
    jumps_taken: bool
    events: np.ndarray = field(repr=False)
    jumps: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A short stable id of the order's events (hex SHA-256 prefix of the table)."""
        data = np.ascontiguousarray(self.events)
        return sha256_bytes(str(data.dtype.descr).encode() + b"\0" + data.tobytes())[:16]

    def to_dict(self) -> dict:
        """Return the order's description (without its events), JSON-friendly."""
        return {
            "name": self.name,
            "repeats_taken": [bool(t) for t in self.repeats_taken],
            "jumps_taken": self.jumps_taken,
            "jumps": list(self.jumps),
            "n_events": int(len(self.events)),
        }


def _name(taken: tuple[bool, ...], jumps_taken: bool, jumps: tuple[str, ...]) -> str:
    if not taken or all(taken):
        name = "all repeats"
    elif not any(taken):
        name = "no repeats"
    else:
        kept = ", ".join(str(i + 1) for i, t in enumerate(taken) if t)
        name = f"repeats {kept} of {len(taken)}"
    if jumps and not jumps_taken:
        name += f", {' and '.join(jumps)} not taken"
    return name


def _choices(n_repeats: int) -> list[tuple[bool, ...]]:
    """Which repeats to take: all first, then none, then the rest."""
    if n_repeats == 0:
        return [()]
    if n_repeats <= MAX_REPEATS_COMBINED:
        combos = list(itertools.product([True, False], repeat=n_repeats))
    else:
        combos = [tuple(i != skip for i in range(n_repeats)) for skip in range(n_repeats)]
    every, none = (True,) * n_repeats, (False,) * n_repeats
    rest = [c for c in combos if c not in (every, none)]
    return [every, none, *rest]


def playing_orders(
    scores: list[ScorePerformance], noteheads: np.ndarray, *, rendered: str = "unfolded"
) -> list[PlayingOrder]:
    """List the ways of playing a piece, the align stage's own order first.

    Parameters
    ----------
    scores : list of ScorePerformance
        The piece's scores as the align stage plays them before their written
        jumps (:func:`score_performances` with the same ``rendered``).
    noteheads : np.ndarray
        The piece's noteheads (printed positions of the written jumps).
    rendered : {"unfolded", "timeline", "folded"}
        How the piece was rendered.  A folded rendering plays the printed
        order, which is then the only order.

    Returns
    -------
    list of PlayingOrder
        Distinct orders (two choices that play the same notes at the same
        times are one order): all repeats with the jumps taken -- exactly the
        align stage's table -- then no repeats, then the other choices of
        repeats (every combination for up to :data:`MAX_REPEATS_COMBINED`
        repeats, else each repeat skipped alone), each also without its
        written jumps when the piece has any.

    Raises
    ------
    NotUnrollableError
        If a written jump does not read into one playing order (as in the
        align stage).
    RepeatsOutOfStepError
        If the piece was rendered unfolded but LilyPond's MIDI does not follow
        the score's repeat structure (the align stage fails such a piece).
    """
    if rendered == "folded":
        table = join_scores([score.table for score in scores])
        return [PlayingOrder("printed order", (), True, table)]
    out_of_step = [f"score {s.score + 1}: {s.out_of_step}" for s in scores if s.out_of_step]
    if out_of_step:
        raise RepeatsOutOfStepError("; ".join(out_of_step))
    sorted_tables = [np.sort(s.table, order="onset_whole", kind="stable") for s in scores]
    passes = [
        repeat_passes(table, measured_repeat_ids=score.measured_repeat_ids)
        for score, table in zip(scores, sorted_tables, strict=True)
    ]
    n_repeats = sum(len(p) for p in passes)
    jumps = tuple(
        plan.kind for score in scores for plan in score.realize_jumps(score.table, noteheads)[1]
    )
    orders: list[PlayingOrder] = []
    seen: set[str] = set()
    for jumps_taken in (True, False) if jumps else (True,):
        for taken in _choices(n_repeats):
            tables = []
            position = 0
            for score, table, score_passes in zip(scores, sorted_tables, passes, strict=True):
                chosen = taken[position : position + len(score_passes)]
                position += len(score_passes)
                if all(chosen):
                    played = score.table  # the align stage's rows, before its jumps
                else:
                    skipped = [p for p, take in zip(score_passes, chosen, strict=True) if not take]
                    played = drop_passes(table, skipped)
                if jumps_taken:
                    played, _ = score.realize_jumps(played, noteheads)
                tables.append(played)
            order = PlayingOrder(
                _name(taken, jumps_taken, jumps), taken, jumps_taken, join_scores(tables), jumps
            )
            if order.key not in seen:
                seen.add(order.key)
                orders.append(order)
    return orders


def orders_of_rendering(
    noteheads: np.ndarray, render_dir: str | Path, midi_files: list[str], *, rendered: str
) -> list[PlayingOrder]:
    """:func:`playing_orders` of a rendered piece (reads its MIDI files and the hooks' tables)."""
    scores = score_performances(noteheads, render_dir, midi_files, repeats=rendered)
    return playing_orders(scores, noteheads, rendered=rendered)
