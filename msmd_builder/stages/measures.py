"""Measures as LilyPond laid them out, and the checks that tie noteheads to them.

The render stage's hooks (``lilypond_patches/msmd-geometry.ily``) note where
LilyPond's own timing starts every measure (its ``measureStartNow``), with the
bar number, the time signature's length, the repeat alternative and the
command columns that open and close it; after page breaking each measure
becomes one box per system it is printed on (``*.msmd-measures.tsv``).  Every
bar line and the start of every repeat alternative is listed with its glyph
(``*.msmd-barlines.tsv``).  :func:`read_measures` turns both into one
:data:`~msmd_builder.core.tables.MEASURE_DTYPE` table with the flags the
tables imply (pickup, partial, multi-measure rest, volta, repeat signs);
nothing is inferred from the image.

:func:`notehead_measures` is the independent check the score stage runs on
every piece: each visible notehead's centre must lie inside exactly one
measure box of its own system, and that box's measure must be the one whose
written time holds the notehead's onset.  :func:`bar_number_order` checks
that bar numbers do not decrease in reading order except where a repeat
ending, a repeat or a new score restarts them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from msmd_builder.core.tables import MEASURE_DTYPE
from msmd_builder.lilypond.logs import (
    BarLine,
    LoggedMeasure,
    measures_file,
    read_barlines,
    read_measures_log,
)

__all__ = [
    "read_barline_logs",
    "read_measures",
    "measure_table",
    "MeasureCheck",
    "notehead_measures",
    "bar_number_order",
]


def read_barline_logs(render_dir: str | Path) -> list[BarLine]:
    """Return every bar line the hooks logged in a render folder (all scores, all books)."""
    return [
        b for p in sorted(Path(render_dir).glob("*.msmd-barlines.tsv")) for b in read_barlines(p)
    ]


def read_measures(render_dir: str | Path, pdf_files: list[str]) -> np.ndarray:
    """Read the measures of every book of a rendered piece.

    Parameters
    ----------
    render_dir : path-like
        The render stage's folder.
    pdf_files : list of str
        The PDFs in LilyPond's order (book ``i`` is ``pdf_files[i]``).

    Returns
    -------
    np.ndarray
        :data:`~msmd_builder.core.tables.MEASURE_DTYPE`, all books in order,
        ``measure_id`` = row index; pixel boxes NaN.
    """
    logged = [
        (book, row)
        for book, pdf in enumerate(pdf_files)
        for row in read_measures_log(measures_file(render_dir, pdf))
    ]
    return measure_table(logged, read_barline_logs(render_dir))


def _whole_count(length: Fraction, nominal: Fraction) -> int:
    """``length / nominal`` when it is a whole number > 1, else 1."""
    if nominal <= 0:
        return 1
    ratio = length / nominal
    return int(ratio) if ratio.denominator == 1 and ratio > 1 else 1


def measure_table(logged: list[tuple[int, LoggedMeasure]], barlines: list[BarLine]) -> np.ndarray:
    r"""Build the measures table from the hooks' rows and bar lines.

    Parameters
    ----------
    logged : list of (int, LoggedMeasure)
        ``(book, row)`` for every box, in the order the hooks wrote them
        (score by score, measure by measure, box by box).
    barlines : list of BarLine
        Every bar line of the piece, for the repeat signs.

    Returns
    -------
    np.ndarray
        :data:`~msmd_builder.core.tables.MEASURE_DTYPE`.

    Notes
    -----
    Flags follow LilyPond's own timing: a measure that starts at a negative
    ``measurePosition`` (after ``\partial``) is a pickup and counts as bar 0
    of its bar number; a measure shorter than its time signature is partial;
    a multi-measure rest flagged by the hooks that lasts a whole number ``n``
    > 1 of measures is one compressed rest standing for ``n`` measures.
    Repeat signs are read from the bar glyphs at the measure's start (opening
    a repeat), at its end (closing one) and inside it (a repeat that starts or
    ends within a measure, as after a pickup).
    """
    bars_by_score: dict[int, list[BarLine]] = defaultdict(list)
    for bar in barlines:
        bars_by_score[bar.score].append(bar)
    keys = [(book, row.score, row.measure) for book, row in logged]
    index_of: dict[tuple[int, int, int], int] = {}
    for key in keys:
        index_of.setdefault(key, len(index_of))
    parts = defaultdict(int)
    for key in keys:
        parts[key] += 1
    table = np.zeros(len(logged), dtype=MEASURE_DTYPE)
    for i, ((book, row), key) in enumerate(zip(logged, keys, strict=True)):
        start, length = row.moment_main, row.length_whole
        end = start + length
        pickup = row.measure_position < 0
        n_measures = _whole_count(length, row.measure_length) if row.multi_measure_rest else 1
        bars = bars_by_score.get(row.score, [])
        at_start = [b for b in bars if b.moment_main == start]
        inside = [b for b in bars if start < b.moment_main < end]
        at_end = [b for b in bars if b.moment_main == end]
        table[i] = (
            i,
            index_of[key],
            row.part,
            parts[key],
            row.score,
            book,
            row.page - 1 if row.page > 0 else -1,
            row.system,
            row.bar_number - 1 if pickup else row.bar_number,
            n_measures,
            float(start),
            float(length),
            float(row.measure_length),
            row.alternative,
            pickup,
            not pickup and not row.cadenza and length < row.measure_length * n_measures,
            row.cadenza,
            n_measures > 1,
            any(b.starts_repeat for b in at_start + inside),
            any(b.ends_repeat for b in inside + at_end),
            *row.box_pt,
            *(np.nan,) * 4,
        )
    return table


@dataclass(frozen=True)
class MeasureCheck:
    """Where the visible noteheads fall among the measure boxes.

    Attributes
    ----------
    measure_id : np.ndarray [shape=(n_noteheads,), dtype=int32]
        The one box of its system that holds each notehead's centre; -1 when
        none or several do, or the notehead is hidden or not laid out.
    checked : int
        Visible, laid-out noteheads.
    in_one_box : int
        Those inside exactly one box of their system.
    in_no_box, in_several_boxes : int
        Those inside none, or more than one.
    wrong_measure : int
        Those inside one box whose measure does not hold their written onset.
    first_problem : str
        The first notehead that fails, described for a message ("" if none).
    """

    measure_id: np.ndarray
    checked: int
    in_one_box: int
    in_no_box: int
    in_several_boxes: int
    wrong_measure: int
    first_problem: str = ""

    @property
    def share(self) -> float:
        """Share of checked noteheads inside exactly one box of the right measure (1.0 if none)."""
        if not self.checked:
            return 1.0
        return (self.in_one_box - self.wrong_measure) / self.checked


def notehead_measures(noteheads: np.ndarray, measures: np.ndarray) -> MeasureCheck:
    """Find each visible notehead's measure box, and check that it is exactly one.

    A notehead belongs to a box of its own (book, system) when the horizontal
    centre of its box lies in ``[x0_pt, x1_pt)`` (boxes span the whole system
    vertically, so ledger-line notes far outside the staves count too).  The
    box's measure must hold the notehead's written onset: ``onset_whole`` in
    ``[onset, onset + length)`` of the measure (the end included for the last
    measure of a score, where a grace note may stand at the final bar line).

    Parameters
    ----------
    noteheads : np.ndarray
        :data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE`.
    measures : np.ndarray
        :data:`~msmd_builder.core.tables.MEASURE_DTYPE`.

    Returns
    -------
    MeasureCheck
    """
    out = np.full(len(noteheads), -1, dtype=np.int32)
    placed = measures[measures["page"] >= 0]
    by_system: dict[tuple[int, int], np.ndarray] = defaultdict(lambda: placed[:0])
    for key in {(int(b), int(s)) for b, s in zip(placed["book"], placed["system"], strict=True)}:
        by_system[key] = placed[(placed["book"] == key[0]) & (placed["system"] == key[1])]
    score_end = {}
    for score in np.unique(measures["score"]):
        rows = measures[measures["score"] == score]
        score_end[int(score)] = float((rows["onset_whole"] + rows["length_whole"]).max())
    checked = one = none = several = wrong = 0
    first = ""
    for i, head in enumerate(noteheads):
        if not head["visible"] or head["page"] < 0 or not np.isfinite(head["x0_pt"]):
            continue
        checked += 1
        x = (float(head["x0_pt"]) + float(head["x1_pt"])) / 2
        boxes = by_system[(int(head["book"]), int(head["system"]))]
        hits = boxes[(boxes["x0_pt"] <= x) & (x < boxes["x1_pt"])]
        problem = ""
        if len(hits) == 1:
            one += 1
            box = hits[0]
            onset = float(head["onset_whole"])
            start, end = float(box["onset_whole"]), float(box["onset_whole"] + box["length_whole"])
            last = abs(end - score_end.get(int(box["score"]), np.inf)) < 1e-9
            inside = start - 1e-9 <= onset < end - 1e-9 or (last and abs(onset - end) < 1e-9)
            if box["score"] == head["score"] and inside:
                out[i] = int(box["measure_id"])
            else:
                wrong += 1
                problem = f"is in the box of bar {int(box['bar_number'])}, written at {onset:g}"
        elif len(hits):
            several += 1
            problem = f"lies in {len(hits)} measure boxes"
        else:
            none += 1
            problem = "lies in no measure box of its system"
        if problem and not first:
            first = (
                f"notehead {i} (source line {int(head['source_line'])}, page "
                f"{int(head['page']) + 1}, system {int(head['system']) + 1}) {problem}"
            )
    return MeasureCheck(out, checked, one, none, several, wrong, first)


def bar_number_order(measures: np.ndarray) -> tuple[int, str]:
    """Count places where bar numbers decrease in reading order outside repeats and jumps.

    Measures are read in (book, score, written onset) order; a bar number may
    go down at the start of a repeat ending (alternatives may restart their
    numbering), of a repeated section, or of a new score; anywhere else it
    should not.

    Returns
    -------
    decreases : int
        Measures whose bar number is lower than the one before them.
    first : str
        The first of them, described ("" if none).
    """
    firsts = measures[measures["part"] == 0]
    order = np.lexsort((firsts["onset_whole"], firsts["score"], firsts["book"]))
    decreases = 0
    first = ""
    previous = None
    for row in firsts[order]:
        if previous is not None and row["score"] == previous["score"]:
            allowed = row["volta"] > 0 or row["repeat_start"] or previous["repeat_end"]
            if row["bar_number"] < previous["bar_number"] and not allowed:
                decreases += 1
                if not first:
                    first = (
                        f"bar {int(row['bar_number'])} follows bar "
                        f"{int(previous['bar_number'])} (score {int(row['score'])})"
                    )
        previous = row
    return decreases, first
