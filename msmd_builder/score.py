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
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from msmd_builder.render import RenderResult

__all__ = [
    "NOTEHEAD_DTYPE",
    "SYSTEM_DTYPE",
    "read_noteheads_tsv",
    "read_systems_tsv",
    "parse_source",
    "PageImage",
    "ScoreResult",
    "build_score",
    "read_geometry",
    "render_pages",
    "link_agreement",
    "add_pixel_boxes",
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
        ("source_char", np.int32),  # 0-based character in the line, as in point-and-click links
        ("x0_px", np.float32),  # the same box in page-image pixels (NaN until rendered)
        ("y0_px", np.float32),
        ("x1_px", np.float32),
        ("y1_px", np.float32),
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
        ("x0_px", np.float32),  # the same box in page-image pixels (NaN until rendered)
        ("y0_px", np.float32),
        ("x1_px", np.float32),
        ("y1_px", np.float32),
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
    """Split our ``file:line:char`` source locations into its parts (``("", -1, -1)`` if empty)."""
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
            *(np.nan,) * 4,
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
            *(np.nan,) * 4,
        )
    return table


def pdf_note_links(pdf_path: str | Path) -> list[tuple[int, int, int, np.ndarray]]:
    """Return LilyPond's point-and-click links of a PDF as (page, line, column, box_pt).

    ``box_pt`` is ``[x0, y0, x1, y1]`` in points from the page's top-left corner.
    These rectangles are drawn by LilyPond around each notehead, independently
    of our hooks, which makes them a check on the notehead table.
    """
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    links: list[tuple[int, int, int, np.ndarray]] = []
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        for page_index in range(len(pdf)):
            page = pdf[page_index]
            height = page.get_height()
            for i in range(raw.FPDFPage_GetAnnotCount(page)):
                annot = raw.FPDFPage_GetAnnot(page, i)
                try:
                    action = raw.FPDFLink_GetAction(raw.FPDFAnnot_GetLink(annot))
                    if not action:
                        continue
                    size = raw.FPDFAction_GetURIPath(pdf, action, None, 0)
                    buffer = ctypes.create_string_buffer(size)
                    raw.FPDFAction_GetURIPath(pdf, action, buffer, size)
                    uri = buffer.value.decode("utf-8", errors="replace")
                    if not uri.startswith("textedit://"):
                        continue
                    # textedit://FILE:LINE:COLUMN:END-COLUMN
                    parts = uri.rsplit(":", 3)
                    if len(parts) != 4 or not parts[1].isdigit():
                        continue
                    rect = raw.FS_RECTF()
                    raw.FPDFAnnot_GetRect(annot, rect)
                    box = np.array([rect.left, height - rect.top, rect.right, height - rect.bottom])
                    links.append((page_index, int(parts[1]), int(parts[2]), box))
                finally:
                    raw.FPDFPage_CloseAnnot(annot)
    finally:
        pdf.close()
    return links


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


def link_agreement(noteheads: np.ndarray, pdf_path: str | Path, *, book: int = 0) -> np.ndarray:
    """Best IoU between each visible notehead of ``book`` and a PDF link at its source location.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float64]
        One value per row of ``noteheads`` (NaN for rows of other books or
        hidden/unplaced heads; 0 where no link shares the source location).
    """
    by_location: dict[tuple[int, int, int], list[np.ndarray]] = {}
    for page, line, column, box in pdf_note_links(pdf_path):
        by_location.setdefault((page, line, column), []).append(box)
    ious = np.full(len(noteheads), np.nan)
    for i, head in enumerate(noteheads):
        if head["book"] != book or not head["visible"] or head["page"] < 0:
            continue
        box = np.array([head["x0_pt"], head["y0_pt"], head["x1_pt"], head["y1_pt"]], dtype=float)
        candidates = by_location.get(
            (int(head["page"]), int(head["source_line"]), int(head["source_char"])), []
        )
        ious[i] = max((box_iou(box, other) for other in candidates), default=0.0)
    return ious


def render_pages(
    pdf_path: str | Path, out_dir: str | Path, *, book: int = 0, width_px: int = 835
) -> list[PageImage]:
    """Render every page of a PDF to an 8-bit grayscale PNG ``width_px`` wide.

    MSMD rendered at 150 dpi and resized to 835 px; we rasterise directly at
    the scale that gives ``width_px`` (pdfium anti-aliases), so positions in
    points map to pixels by one factor, :attr:`PageImage.px_per_pt`.

    Returns
    -------
    list of PageImage
        In page order; files are ``<out_dir>/page-<book>-<page>.png``.
    """
    import pypdfium2 as pdfium

    from msmd_builder.cache import atomic_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pages: list[PageImage] = []
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            width_pt, height_pt = page.get_size()
            bitmap = page.render(scale=width_px / width_pt, grayscale=True)
            image = bitmap.to_pil().convert("L")
            if image.width != width_px:
                image = image.resize((width_px, round(image.height * width_px / image.width)))
            path = out / f"page-{book}-{index}.png"
            with atomic_path(path) as tmp:
                image.save(tmp, format="PNG", optimize=False)
            pages.append(
                PageImage(book, index, str(path), image.width, image.height, width_pt, height_pt)
            )
    finally:
        pdf.close()
    return pages


def add_pixel_boxes(table: np.ndarray, pages: list[PageImage]) -> np.ndarray:
    """Return a copy of a noteheads or systems table with its ``*_px`` fields filled.

    Rows whose (book, page) has no image keep NaN.
    """
    out = table.copy()
    scale = {(p.book, p.page): p.px_per_pt for p in pages}
    for i, row in enumerate(out):
        factor = scale.get((int(row["book"]), int(row["page"])))
        if factor is None:
            continue
        for axis in ("x0", "y0", "x1", "y1"):
            out[i][f"{axis}_px"] = row[f"{axis}_pt"] * factor
    return out


def read_geometry(render_dir: str | Path, pdf_files: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read the noteheads and systems of every book of a rendered piece.

    Returns
    -------
    noteheads : np.ndarray
        :data:`NOTEHEAD_DTYPE`, all books in order, ``notehead_id`` = row index.
    systems : np.ndarray
        :data:`SYSTEM_DTYPE`, all books in order.
    """
    folder = Path(render_dir)
    heads = [np.zeros(0, NOTEHEAD_DTYPE)]
    systems = [np.zeros(0, SYSTEM_DTYPE)]
    for book, pdf in enumerate(pdf_files):
        stem = Path(pdf).stem
        heads.append(read_noteheads_tsv(folder / f"{stem}.msmd-noteheads.tsv", book=book))
        systems.append(read_systems_tsv(folder / f"{stem}.msmd-systems.tsv", book=book))
    noteheads = np.concatenate(heads)
    noteheads["notehead_id"] = np.arange(len(noteheads))
    return noteheads, np.concatenate(systems)


#: Share of visible noteheads whose box must agree with the PDF's link box.
LINK_AGREEMENT_MIN = 0.99
_STAGE_VERSION = 1


@dataclass(frozen=True)
class ScoreResult:
    """Output record of the score stage (``score/score.json``).

    Attributes
    ----------
    piece_id : str
        The piece.
    score_dir : str
        Folder with ``geometry.npz`` and the page PNGs.
    pages : tuple of dict
        One :class:`PageImage` (as a dict) per rendered page.
    noteheads, systems : int
        Table sizes.
    link_agreement : float
        Share of visible noteheads whose box has IoU >= 0.9 with LilyPond's
        point-and-click rectangle at the same source location.
    cache_key : str
        Hash of the render result, the image width and the stage version.
    """

    piece_id: str
    score_dir: str
    pages: tuple[dict, ...]
    noteheads: int
    systems: int
    link_agreement: float
    cache_key: str

    @classmethod
    def read(cls, path: str | Path) -> ScoreResult:
        """Read a ``score.json`` record."""
        from msmd_builder.cache import read_json

        data = read_json(path)
        data["pages"] = tuple(data["pages"])
        return cls(**data)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(noteheads, systems)`` from ``geometry.npz``."""
        with np.load(Path(self.score_dir) / "geometry.npz") as data:
            return data["noteheads"], data["systems"]


def build_score(
    render: RenderResult, *, work_dir: str | Path, width_px: int = 835, force: bool = False
) -> ScoreResult:
    """Page images and geometry tables of one rendered piece.

    Writes ``pieces/<id>/score/page-<book>-<page>.png``, ``geometry.npz``
    (arrays ``noteheads`` and ``systems``, boxes in points and pixels) and
    ``score.json``.

    Raises
    ------
    NothingToAlignError
        If LilyPond laid out no notehead.
    VerificationError
        If fewer than :data:`LINK_AGREEMENT_MIN` of the visible noteheads agree
        with the PDF's own link rectangles.
    """
    import pypdfium2

    from msmd_builder.cache import atomic_path, atomic_write_json, stable_key
    from msmd_builder.errors import NothingToAlignError

    score_dir = Path(work_dir) / "pieces" / render.piece_id / "score"
    record_path = score_dir / "score.json"
    key = stable_key(
        {
            "stage": "score",
            "stage_version": _STAGE_VERSION,
            "render": render.cache_key,
            "width_px": width_px,
            "pdfium": str(pypdfium2.PDFIUM_INFO),
        }
    )
    if not force and record_path.exists():
        result = ScoreResult.read(record_path)
        if result.cache_key == key:
            _check_score(result)
            return result
    noteheads, systems = read_geometry(render.render_dir, list(render.pdf_files))
    if not len(noteheads):
        raise NothingToAlignError("LilyPond laid out no notehead")
    pages: list[PageImage] = []
    ious = []
    for book, pdf in enumerate(render.pdf_files):
        pdf_path = Path(render.render_dir) / pdf
        pages += render_pages(pdf_path, score_dir, book=book, width_px=width_px)
        iou = link_agreement(noteheads, pdf_path, book=book)
        ious.append(iou[~np.isnan(iou)])
    noteheads = add_pixel_boxes(noteheads, pages)
    systems = add_pixel_boxes(systems, pages)
    with atomic_path(score_dir / "geometry.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, noteheads=noteheads, systems=systems)
    checked = np.concatenate(ious) if ious else np.zeros(0)
    result = ScoreResult(
        piece_id=render.piece_id,
        score_dir=str(score_dir.resolve()),
        pages=tuple(
            {
                "book": p.book,
                "page": p.page,
                "path": Path(p.path).name,
                "width_px": p.width_px,
                "height_px": p.height_px,
                "width_pt": p.width_pt,
                "height_pt": p.height_pt,
            }
            for p in pages
        ),
        noteheads=int(len(noteheads)),
        systems=int(len(systems)),
        link_agreement=float((checked >= 0.9).mean()) if len(checked) else 1.0,
        cache_key=key,
    )
    atomic_write_json(record_path, asdict(result))
    _check_score(result)
    return result


def _check_score(result: ScoreResult) -> None:
    from msmd_builder.errors import VerificationError

    if result.link_agreement < LINK_AGREEMENT_MIN:
        raise VerificationError(
            f"only {100 * result.link_agreement:.1f} % of visible noteheads match the PDF's "
            f"link boxes (need {100 * LINK_AGREEMENT_MIN:.0f} %)"
        )
