"""Stage ``score``: page images, systems and noteheads from LilyPond's layout.

Reads what the render stage's LilyPond hooks wrote beside each PDF (the
noteheads and systems tables; :mod:`msmd_builder.lilypond.logs`), renders every
page to a grayscale PNG of a fixed width (MSMD: 835 px), and stores noteheads
and systems as numpy structured arrays with positions both in PDF points and in
page-image pixels.  Nothing here is guessed from pixels: positions are
LilyPond's own extents; LilyPond's point-and-click link rectangles in the PDF,
drawn independently of our hooks, check them.  The measures LilyPond laid out
(:mod:`msmd_builder.stages.measures`) are stored beside them, every visible
notehead must lie in exactly one measure box of its system, and every system
and visible notehead must lie on its page image (:mod:`msmd_builder.lilypond.pages`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from msmd_builder.core.cache import (
    StageCache,
    atomic_path,
    load_npz,
    output_sizes,
    save_npz,
    sized_outputs,
)
from msmd_builder.core.errors import ConfigError, NothingToAlignError, VerificationError
from msmd_builder.core.tables import MEASURE_DTYPE, NOTEHEAD_DTYPE, SYSTEM_DTYPE
from msmd_builder.core.workdir import PieceDir
from msmd_builder.lilypond.logs import (
    noteheads_file,
    read_noteheads_tsv,
    read_systems_tsv,
    systems_file,
)
from msmd_builder.lilypond.pages import find_off_page
from msmd_builder.stages.measures import bar_number_order, notehead_measures, read_measures
from msmd_builder.stages.render import RenderResult

__all__ = [
    "PageImage",
    "pdf_note_links",
    "box_iou",
    "link_agreement",
    "render_pages",
    "add_pixel_boxes",
    "read_geometry",
    "LINK_AGREEMENT_MIN",
    "MEASURE_AGREEMENT_MIN",
    "RECORD_FORMAT",
    "GEOMETRY_FORMAT",
    "GEOMETRY_VERSION",
    "ScoreSettings",
    "ScoreResult",
    "run",
]


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
    heads = [np.zeros(0, NOTEHEAD_DTYPE)]
    systems = [np.zeros(0, SYSTEM_DTYPE)]
    for book, pdf in enumerate(pdf_files):
        heads.append(read_noteheads_tsv(noteheads_file(render_dir, pdf), book=book))
        systems.append(read_systems_tsv(systems_file(render_dir, pdf), book=book))
    noteheads = np.concatenate(heads)
    noteheads["notehead_id"] = np.arange(len(noteheads))
    return noteheads, np.concatenate(systems)


#: Share of visible noteheads whose box must agree with the PDF's link box.
LINK_AGREEMENT_MIN = 0.99
#: Share of visible noteheads that must lie in exactly one measure box of their
#: system, the box of the measure that holds their written onset.
MEASURE_AGREEMENT_MIN = 0.99
STAGE_VERSION = 3
#: ``format_name`` of ``score/score.json``.
RECORD_FORMAT = "msmd-builder/score-record"
#: Layout version of ``score/score.json`` (2: with the outputs' ``output_sizes``).
RECORD_VERSION = 2
#: ``format_name`` of ``score/geometry.npz`` (arrays ``noteheads``, ``systems``, ``measures``).
GEOMETRY_FORMAT = "msmd-builder/geometry"
GEOMETRY_VERSION = 2


@dataclass(frozen=True)
class ScoreSettings:
    """Settings of the score stage.

    Attributes
    ----------
    page_width_px : int
        Width of the page images (MSMD: 835 px).
    """

    page_width_px: int = 835

    def __post_init__(self) -> None:
        if not 100 <= self.page_width_px <= 10_000:
            raise ConfigError(f"page_width_px must be in 100..10000, got {self.page_width_px!r}")


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
        One :class:`PageImage` (as a dict, ``path`` relative to ``score_dir``)
        per rendered page.
    noteheads, systems : int
        Table sizes.
    link_agreement : float
        Share of visible noteheads whose box has IoU >= 0.9 with LilyPond's
        point-and-click rectangle at the same source location.
    cache_key : str
        Hash of the render result, the image width and the stage version.
    render : RenderResult
        The rendering this geometry comes from (the align stage reads its MIDI).
    measures : int
        Measures laid out (a measure broken over two systems counts once).
    measure_boxes : int
        Rows of the measures table (one per measure and system).
    measure_agreement : float
        Share of visible noteheads inside exactly one measure box of their
        system, the box of the measure holding their written onset
        (:func:`~msmd_builder.stages.measures.notehead_measures`).
    measure_problem : str
        The first notehead that is not (empty when all are).
    bar_number_decreases : int
        Bar numbers that go down in reading order outside repeats
        (:func:`~msmd_builder.stages.measures.bar_number_order`; flagged, not fatal).
    off_page : tuple of str
        Systems that reach past their page image (with their noteheads outside
        it), one line each; the piece then fails ``verification``.
    """

    piece_id: str
    score_dir: str
    pages: tuple[dict, ...]
    noteheads: int
    systems: int
    link_agreement: float
    cache_key: str
    render: RenderResult
    measures: int = 0
    measure_boxes: int = 0
    measure_agreement: float = 1.0
    measure_problem: str = ""
    bar_number_decreases: int = 0
    off_page: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        data = asdict(self)
        data["pages"] = list(self.pages)
        data["render"] = self.render.to_dict()
        data["off_page"] = list(self.off_page)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreResult:
        """Inverse of :meth:`to_dict` (a stage record's format fields are ignored)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["pages"] = tuple(values["pages"])
        values["off_page"] = tuple(values.get("off_page", ()))
        values["render"] = RenderResult.from_dict(values["render"])
        return cls(**values)

    def page_paths(self) -> list[Path]:
        """Return the page images, in page order."""
        return [Path(self.score_dir) / page["path"] for page in self.pages]

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(noteheads, systems)`` from ``geometry.npz``."""
        data = load_npz(
            Path(self.score_dir) / "geometry.npz",
            format_name=GEOMETRY_FORMAT,
            format_version=GEOMETRY_VERSION,
        )
        return data["noteheads"], data["systems"]

    def load_measures(self) -> np.ndarray:
        """Return the measures table (:data:`~msmd_builder.core.tables.MEASURE_DTYPE`)."""
        data = load_npz(
            Path(self.score_dir) / "geometry.npz",
            format_name=GEOMETRY_FORMAT,
            format_version=GEOMETRY_VERSION,
        )
        return data["measures"]

    def report_details(self) -> dict[str, Any]:
        """Return what the build report shows of this stage."""
        return {
            "link_agreement": self.link_agreement,
            "measures": self.measures,
            "measure_agreement": self.measure_agreement,
            "bar_number_decreases": self.bar_number_decreases,
        }


def run(
    render: RenderResult, settings: ScoreSettings, piece_dir: PieceDir, *, force: bool = False
) -> ScoreResult:
    """Page images and geometry tables of one rendered piece.

    Writes ``score/page-<book>-<page>.png``, ``geometry.npz`` (arrays
    ``noteheads``, ``systems`` and ``measures``, boxes in points and pixels)
    and ``score.json``.  A cached result counts only while all of these exist with
    the sizes the record gives them.

    Raises
    ------
    NothingToAlignError
        If LilyPond laid out no notehead.
    VerificationError
        If fewer than :data:`LINK_AGREEMENT_MIN` of the visible noteheads agree
        with the PDF's own link rectangles, fewer than
        :data:`MEASURE_AGREEMENT_MIN` lie in exactly one measure box, or a
        system or visible notehead lies outside its page image (naming page and
        system).
    """
    import pypdfium2

    score_dir = piece_dir.score
    cache = StageCache.for_document(
        piece_dir.score_record,
        {
            "stage": "score",
            "stage_version": STAGE_VERSION,
            "render": render.cache_key,
            "width_px": settings.page_width_px,
            "pdfium": str(pypdfium2.PDFIUM_INFO),
        },
        format_name=RECORD_FORMAT,
        format_version=RECORD_VERSION,
    )
    hit = cache.lookup(lambda record: sized_outputs(score_dir, record["output_sizes"]), force=force)
    if hit is not None:
        result = ScoreResult.from_dict(hit)
        _check_score(result)
        return result
    noteheads, systems = read_geometry(render.render_dir, list(render.pdf_files))
    if not len(noteheads):
        raise NothingToAlignError("LilyPond laid out no notehead")
    pages: list[PageImage] = []
    ious = []
    for book, pdf in enumerate(render.pdf_files):
        pdf_path = Path(render.render_dir) / pdf
        pages += render_pages(pdf_path, score_dir, book=book, width_px=settings.page_width_px)
        iou = link_agreement(noteheads, pdf_path, book=book)
        ious.append(iou[~np.isnan(iou)])
    noteheads = add_pixel_boxes(noteheads, pages)
    systems = add_pixel_boxes(systems, pages)
    measures = add_pixel_boxes(read_measures(render.render_dir, list(render.pdf_files)), pages)
    check = notehead_measures(noteheads, measures)
    decreases, _ = bar_number_order(measures)
    save_npz(
        piece_dir.geometry,
        format_name=GEOMETRY_FORMAT,
        format_version=GEOMETRY_VERSION,
        noteheads=noteheads,
        systems=systems,
        measures=np.asarray(measures, dtype=MEASURE_DTYPE),
    )
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
        cache_key=cache.key,
        render=render,
        measures=int(len(np.unique(measures["measure"]))),
        measure_boxes=int(len(measures)),
        measure_agreement=float(check.share),
        measure_problem=check.first_problem,
        bar_number_decreases=decreases,
        off_page=tuple(
            place.describe()
            for place in find_off_page(
                noteheads, systems, {(p.book, p.page): (p.width_pt, p.height_pt) for p in pages}
            )
        ),
    )
    names = [piece_dir.geometry.name, *(page["path"] for page in result.pages)]
    cache.store({**result.to_dict(), "output_sizes": output_sizes(score_dir, names)})
    _check_score(result)
    return result


def _check_score(result: ScoreResult) -> None:
    if result.off_page:
        more = f" (and {len(result.off_page) - 1} more)" if len(result.off_page) > 1 else ""
        relayout = result.render.layout
        tried = f" after re-layout {relayout!r}" if relayout else ""
        raise VerificationError(
            f"music runs off the page{tried}: {result.off_page[0]}{more}",
            detail="\n".join(result.off_page),
        )
    if result.link_agreement < LINK_AGREEMENT_MIN:
        raise VerificationError(
            f"only {100 * result.link_agreement:.1f} % of visible noteheads match the PDF's "
            f"link boxes (need {100 * LINK_AGREEMENT_MIN:.0f} %)"
        )
    if result.measure_agreement < MEASURE_AGREEMENT_MIN:
        raise VerificationError(
            f"only {100 * result.measure_agreement:.1f} % of visible noteheads lie in exactly one "
            f"measure box of their system (need {100 * MEASURE_AGREEMENT_MIN:.0f} %); first: "
            f"{result.measure_problem}"
        )
