"""Pictures for people: page overlays that show what the dataset knows about a piece.

Each page image gets its system boxes (grey), its measure boxes (orange, the
bar number at the top left of each), and notehead boxes coloured by what the
alignment made of them: aligned (green), tie continuation (blue, it sounds
through the previous note), hidden or unaligned (red).  The first onset time
of each aligned notehead can be written beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from msmd_builder.core.workdir import PieceDir

__all__ = ["COLOURS", "draw_overlays", "write_piece_overlays"]

#: RGB colours of the overlay, by notehead category.
COLOURS = {
    "system": (140, 140, 140),
    "measure": (235, 140, 0),
    "aligned": (0, 150, 60),
    "tied": (40, 90, 230),
    "unaligned": (220, 30, 30),
}


def draw_overlays(
    noteheads: np.ndarray,
    systems: np.ndarray,
    performed: np.ndarray,
    pages: list[dict],
    *,
    image_dir: str | Path,
    out_dir: str | Path,
    labels: bool = False,
    measures: np.ndarray | None = None,
) -> list[Path]:
    """Draw one overlay PNG per page.

    Parameters
    ----------
    noteheads, systems : np.ndarray
        Geometry tables with pixel boxes (see :mod:`msmd_builder.stages.score`).
    performed : np.ndarray
        The performed-notes table (see :mod:`msmd_builder.stages.align`).
    pages : list of dict
        The score stage's page records (``book``, ``page``, ``path``).
    image_dir : path
        Folder holding the page PNGs.
    out_dir : path
        Where ``overlay-<book>-<page>.png`` files go.
    labels : bool
        Write each aligned notehead's first onset (seconds) beside it.
    measures : np.ndarray, optional
        The measures table (:data:`~msmd_builder.core.tables.MEASURE_DTYPE`),
        drawn with their bar numbers.

    Returns
    -------
    list of Path
        The written files, in page order.
    """
    from PIL import Image, ImageDraw

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first_onset: dict[int, float] = {}
    for row in performed[np.argsort(performed["onset_sec"], kind="stable")]:
        first_onset.setdefault(int(row["notehead_id"]), float(row["onset_sec"]))
    written = []
    for page in pages:
        book, number = page["book"], page["page"]
        image = Image.open(Path(image_dir) / page["path"]).convert("RGB")
        draw = ImageDraw.Draw(image)
        on_page = (systems["book"] == book) & (systems["page"] == number)
        for system in systems[on_page]:
            draw.rectangle(_box(system, pad=3), outline=COLOURS["system"], width=1)
        if measures is not None:
            here = (measures["book"] == book) & (measures["page"] == number)
            for box in measures[here]:
                draw.rectangle(_box(box, pad=1), outline=COLOURS["measure"], width=1)
                if box["part"] == 0:
                    where = (float(box["x0_px"]) + 2, float(box["y0_px"]) - 12)
                    draw.text(where, str(int(box["bar_number"])), fill=COLOURS["measure"])
        on_page = (noteheads["book"] == book) & (noteheads["page"] == number)
        for head in noteheads[on_page]:
            if head["tied"]:
                colour = COLOURS["tied"]
            elif int(head["notehead_id"]) in first_onset and head["visible"]:
                colour = COLOURS["aligned"]
            else:
                colour = COLOURS["unaligned"]
            draw.rectangle(_box(head, pad=1), outline=colour, width=1)
            onset = first_onset.get(int(head["notehead_id"]))
            if labels and onset is not None:
                draw.text(
                    (float(head["x1_px"]) + 1, float(head["y0_px"]) - 9),
                    f"{onset:.1f}",
                    fill=colour,
                )
        path = out / f"overlay-{book}-{number}.png"
        image.save(path)
        written.append(path)
    return written


def _box(row: np.void, *, pad: int) -> tuple[float, float, float, float]:
    return (
        float(row["x0_px"]) - pad,
        float(row["y0_px"]) - pad,
        float(row["x1_px"]) + pad,
        float(row["y1_px"]) + pad,
    )


def write_piece_overlays(
    piece_dir: PieceDir, out_dir: str | Path, *, labels: bool = False
) -> list[Path]:
    """Draw the overlays of one built piece (read with :class:`~msmd_builder.dataset.built.BuiltPiece`)."""  # noqa: E501
    from msmd_builder.dataset.built import BuiltPiece

    built = BuiltPiece.open(piece_dir, need_performances=False)
    noteheads, systems = built.geometry()
    return draw_overlays(
        noteheads,
        systems,
        built.performed(),
        list(built.score["pages"]),
        image_dir=piece_dir.score,
        out_dir=out_dir,
        labels=labels,
        measures=built.measures(),
    )
