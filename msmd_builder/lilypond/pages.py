r"""Pages that hold their music: find systems and noteheads drawn past a page's edge.

LilyPond draws what it cannot fit: a line forced by the source's own breaks
(``\break``, ``\noBreak``, a fixed ``system-count``) runs past the right margin
and off the paper, a page over-full with systems runs past its bottom.  Such
noteheads are not on the page image, so they must never become aligned data.

The render stage checks every rendering with :func:`off_page` and, when music
leaves the page, renders the piece again with the next re-layout of
:data:`RELAYOUTS` (``lilypond_patches/msmd-relayout.ily``); the score stage
checks the final geometry against the page images it made and fails the piece
(``verification``, naming page and system) if anything is still outside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msmd_builder.lilypond.logs import (
    noteheads_file,
    read_noteheads_tsv,
    read_systems_tsv,
    systems_file,
)

__all__ = [
    "RELAYOUTS",
    "EDGE_TOLERANCE_PT",
    "OffPage",
    "pdf_page_sizes",
    "find_off_page",
    "off_page",
]

#: Re-layouts tried in turn, each a setting of ``msmd-relayout.ily`` (docs/rendering.md):
#: ``lilypond-breaks`` drops the source's line-break commands and fixed system
#: counts so LilyPond breaks lines itself; ``smaller-staff`` does that and
#: also sets the staff size to 80 % of the piece's own; ``breaks-between-bar-lines``
#: is ``lilypond-breaks`` with line breaks allowed where there is no bar line
#: (a cadenza written without any); ``texts-outside-line`` is ``lilypond-breaks`` with
#: texts allowed past the line's end (a ``\fill-line`` markup over a note otherwise
#: stretches its line past the page).
RELAYOUTS: tuple[str, ...] = (
    "lilypond-breaks",
    "smaller-staff",
    "breaks-between-bar-lines",
    "texts-outside-line",
)
#: How far (points) a box may reach past the page's edge before it counts as off the page;
#: LilyPond's extents include a hair of ink outside the glyphs.
EDGE_TOLERANCE_PT = 0.5


@dataclass(frozen=True)
class OffPage:
    """A system that reaches past its page's edge, and its noteheads outside the page.

    Attributes
    ----------
    book, page, system : int
        Where (0-based, as in the geometry tables).
    overhang_pt : float
        How far the system's box reaches past the page, points (largest side).
    noteheads_outside : int
        Visible noteheads of the system not wholly on the page.
    """

    book: int
    page: int
    system: int
    overhang_pt: float
    noteheads_outside: int

    def describe(self) -> str:
        """One line for messages (pages and systems counted from 1, as printed)."""
        book = f"book {self.book + 1} " if self.book else ""
        return (
            f"{book}page {self.page + 1} system {self.system + 1} reaches "
            f"{self.overhang_pt:.1f} pt past the page's edge "
            f"({self.noteheads_outside} noteheads outside the page)"
        )


def pdf_page_sizes(pdf_path: str | Path) -> list[tuple[float, float]]:
    """Return (width, height) in points of every page of a PDF."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        return [pdf[i].get_size() for i in range(len(pdf))]
    finally:
        pdf.close()


def _overhang(boxes: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Largest distance (points) each box reaches past its page; <= 0 when inside."""
    return np.max(
        np.stack(
            [
                -boxes["x0_pt"],
                -boxes["y0_pt"],
                boxes["x1_pt"] - width,
                boxes["y1_pt"] - height,
            ]
        ),
        axis=0,
    )


def find_off_page(
    noteheads: np.ndarray,
    systems: np.ndarray,
    page_sizes: Mapping[tuple[int, int], tuple[float, float]],
) -> list[OffPage]:
    """Return the systems that reach past their page, with their noteheads outside it.

    Parameters
    ----------
    noteheads, systems : np.ndarray
        Geometry tables (:data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE`,
        :data:`~msmd_builder.core.tables.SYSTEM_DTYPE`), pages 0-based.
    page_sizes : mapping
        ``(book, page)`` -> ``(width_pt, height_pt)``.

    Returns
    -------
    list of OffPage
        In reading order; a system counts if its box or any of its visible
        noteheads lies more than :data:`EDGE_TOLERANCE_PT` outside the page
        (also a page that has no size, i.e. no image).
    """

    def sizes(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pairs = [page_sizes.get((int(r["book"]), int(r["page"])), (0.0, 0.0)) for r in table]
        array = np.array(pairs, dtype=float).reshape(-1, 2)
        return array[:, 0], array[:, 1]

    placed = noteheads[(noteheads["page"] >= 0) & noteheads["visible"]]
    head_over = _overhang(placed, *sizes(placed)) if len(placed) else np.zeros(0)
    outside_heads = placed[~(head_over <= EDGE_TOLERANCE_PT)]  # NaN extents count as outside
    system_over = _overhang(systems, *sizes(systems)) if len(systems) else np.zeros(0)
    found: list[OffPage] = []
    for row, over in zip(systems, system_over, strict=True):
        book, system = int(row["book"]), int(row["system"])
        heads = int(
            np.count_nonzero((outside_heads["book"] == book) & (outside_heads["system"] == system))
        )
        if heads or over > EDGE_TOLERANCE_PT:
            found.append(OffPage(book, int(row["page"]), system, round(float(over), 1), heads))
    return found


def off_page(render_dir: str | Path, pdf_files: Sequence[str]) -> list[OffPage]:
    """Check a fresh rendering: systems of any of its PDFs that reach past their page.

    Reads the hooks' tables beside each PDF and the PDF's page sizes.  A
    rendering without tables (LilyPond failed before the layout) has nothing
    off the page.
    """
    found: list[OffPage] = []
    for book, pdf in enumerate(pdf_files):
        heads_path = noteheads_file(render_dir, pdf)
        systems_path = systems_file(render_dir, pdf)
        if not (heads_path.exists() and systems_path.exists()):
            continue
        sizes = {
            (book, page): size for page, size in enumerate(pdf_page_sizes(Path(render_dir) / pdf))
        }
        found += find_off_page(
            read_noteheads_tsv(heads_path, book=book),
            read_systems_tsv(systems_path, book=book),
            sizes,
        )
    return found
