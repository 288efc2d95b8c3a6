"""Stage 4: score geometry — page images, systems and noteheads from LilyPond's layout.

Reads what the render stage's LilyPond hooks wrote beside each PDF
(``*.msmd-noteheads.tsv``, ``*.msmd-systems.tsv``; see
``lilypond_patches/msmd-geometry.ily``), renders every page to a grayscale PNG
of a fixed width (MSMD: 835 px), and stores noteheads and systems as numpy
structured arrays with positions both in PDF points and in page-image pixels.
Nothing here is guessed from pixels: positions are LilyPond's own extents.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = [
    "NOTEHEAD_DTYPE",
    "SYSTEM_DTYPE",
    "read_noteheads_tsv",
    "read_systems_tsv",
    "parse_source",
    "PageImage",
]

#: One row per notehead printed (or hidden) in the score, in engraving order.
NOTEHEAD_DTYPE = np.dtype(
    [
        ("notehead_id", np.int32),  # row index, unique within the piece
        ("event_id", np.int32),  # msmd-id of the note event that printed it
        ("score", np.int16),  # index of the \score (layout) within the file
        ("book", np.int16),  # index of the PDF (one per \book)
        ("page", np.int16),  # 0-based page within that PDF; -1 if not laid out
        ("system", np.int32),  # 0-based system within that PDF, reading order
        ("staff", np.int16),  # 0-based staff within the system, top to bottom
        ("x0_pt", np.float32),
        ("y0_pt", np.float32),
        ("x1_pt", np.float32),
        ("y1_pt", np.float32),
        ("pitch", np.int16),  # MIDI pitch of the written note
        ("onset_whole", np.float64),  # written (folded) moment, whole notes
        ("grace_whole", np.float64),  # grace offset before that moment (<= 0)
        ("duration_whole", np.float64),  # written duration (tuplets applied)
        ("tied", np.bool_),  # the right-hand end of a tie: it does not sound again
        ("grace", np.bool_),
        ("visible", np.bool_),
        ("source_line", np.int32),
        ("source_column", np.int32),
    ]
)

#: One row per system (line of music with all its staves).
SYSTEM_DTYPE = np.dtype(
    [
        ("system", np.int32),
        ("book", np.int16),
        ("page", np.int16),
        ("n_staves", np.int16),
        ("x0_pt", np.float32),
        ("y0_pt", np.float32),
        ("x1_pt", np.float32),
        ("y1_pt", np.float32),
    ]
)


@dataclass(frozen=True)
class PageImage:
    """One rendered page: where its PNG is and how points map to its pixels."""

    book: int
    page: int
    path: str
    width_px: int
    height_px: int
    width_pt: float
    height_pt: float

    @property
    def px_per_pt(self) -> float:
        """Scale from PDF points to image pixels."""
        return self.width_px / self.width_pt


def parse_source(location: str) -> tuple[str, int, int]:
    """Split LilyPond's ``file:line:column`` into its parts (``("", -1, -1)`` if empty)."""
    if not location:
        return "", -1, -1
    path, line, column = location.rsplit(":", 2)
    return path, int(line), int(column)


def _fraction(text: str) -> float:
    return float(Fraction(text))


def read_noteheads_tsv(path: str | Path, *, book: int = 0) -> np.ndarray:
    """Read one ``*.msmd-noteheads.tsv`` into a :data:`NOTEHEAD_DTYPE` array.

    ``notehead_id`` is left as the row index within this file; callers
    concatenating several books renumber it.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    table = np.zeros(len(rows), dtype=NOTEHEAD_DTYPE)
    for i, row in enumerate(rows):
        _, line, column = parse_source(row["source"])
        grace = _fraction(row["moment_grace"])
        table[i] = (
            i,
            int(row["event_id"]),
            int(row["score"]),
            book,
            int(row["page"]) - 1 if int(row["page"]) > 0 else -1,
            int(row["system"]),
            int(row["staff"]),
            float(row["x0_pt"]),
            float(row["y0_pt"]),
            float(row["x1_pt"]),
            float(row["y1_pt"]),
            int(row["pitch"]),
            _fraction(row["moment_main"]),
            grace,
            _fraction(row["duration_whole"]),
            row["tied"] == "1",
            grace != 0,
            row["visible"] == "1",
            line,
            column,
        )
    return table


def read_systems_tsv(path: str | Path, *, book: int = 0) -> np.ndarray:
    """Read one ``*.msmd-systems.tsv`` into a :data:`SYSTEM_DTYPE` array."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    table = np.zeros(len(rows), dtype=SYSTEM_DTYPE)
    for i, row in enumerate(rows):
        table[i] = (
            int(row["system"]),
            book,
            int(row["page"]) - 1,
            int(row["staves"]),
            float(row["x0_pt"]),
            float(row["y0_pt"]),
            float(row["x1_pt"]),
            float(row["y1_pt"]),
        )
    return table
