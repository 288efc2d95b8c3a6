"""The score-following layout of ``CPJKU/cyolo_score_following``, one file per performance.

Henkel and Widmer's score follower (Frontiers 2021; EUSIPCO 2021) reads, per
performance ``<name>``, ``<name>.npz`` and a 22,050 Hz ``<name>.wav`` from a
folder, and a YAML list of names per set (``utils/data_utils.py::load_piece``
and ``load_sequences``, ``dataset.py::load_dataset``).  :func:`cyolo_arrays`
fills every field that code reads, with its conventions:

* ``sheets``: uint8 ``(n_pages, height, width)``, 255 = paper; the loader pads
  the width to a square on both sides and shifts every x by the left pad, so
  x here is unpadded page pixels.  Pages of one piece share a size; if they
  do not, smaller pages are padded with paper at the bottom and right (no
  coordinate moves).
* ``coords``: one dict per aligned note in playing order, ``note_x`` (centre of
  the notehead, > 0), ``note_y`` (the system's vertical centre, as the loader
  recomputes it), ``onset`` in **seconds** (the loader turns it into
  ``int(onset * 22050 / 1102)``), ``system_idx`` (into ``systems``),
  ``bar_idx`` (into ``bars``) and ``page_nr`` (into ``sheets``).
* ``systems``, ``bars``: dicts with the box as **centre** ``x``, ``y`` and
  ``w``, ``h`` (the YOLO convention of ``utils/general.py::xywh2xyxy``) and
  ``page_nr``: systems in reading order, bars one per measure box (a measure
  broken over two systems is two bars).
* ``synthesized``: a 0-d bool array, True (the loader calls ``.item()``).

Notes without a visible notehead on a page image, or whose notehead lies in no
measure box, are left out of ``coords`` (the loader would index ``bars`` with
them).  ``msmd_builder_json`` says where the file came from.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from msmd_builder.core.records import PerformanceRecord, PieceRecord
from msmd_builder.dataset.positions import notehead_boxes

__all__ = ["CYOLO_FORMAT", "CYOLO_VERSION", "stacked_pages", "cyolo_arrays"]

#: ``format_name`` stored beside the fields cyolo reads.
CYOLO_FORMAT = "msmd-builder/export-cyolo"
CYOLO_VERSION = 1


def stacked_pages(piece: PieceRecord) -> np.ndarray:
    """Return the piece's pages as one uint8 array, smaller pages padded with paper."""
    height = max(page.shape[0] for page in piece.pages)
    width = max(page.shape[1] for page in piece.pages)
    sheets = np.full((len(piece.pages), height, width), 255, dtype=np.uint8)
    for i, page in enumerate(piece.pages):
        sheets[i, : page.shape[0], : page.shape[1]] = page
    return sheets


def _box(row: np.void, page_nr: int) -> dict[str, Any]:
    x0, y0, x1, y1 = (float(row[k]) for k in ("x0_px", "y0_px", "x1_px", "y1_px"))
    return {
        "x": (x0 + x1) / 2,
        "y": (y0 + y1) / 2,
        "w": x1 - x0,
        "h": y1 - y0,
        "page_nr": page_nr,
    }


def cyolo_arrays(piece: PieceRecord, performance: PerformanceRecord) -> dict[str, Any]:
    """Return the arrays of one performance's cyolo ``.npz`` (module docstring).

    Parameters
    ----------
    piece : PieceRecord
        Pages, systems, measures and noteheads.
    performance : PerformanceRecord
        Its events (performance seconds).

    Returns
    -------
    dict
        ``sheets``, ``coords``, ``systems``, ``bars``, ``synthesized`` and
        ``msmd_builder_json``, ready for ``np.savez``.
    """
    page_of = {
        (int(b), int(p)): i for i, (b, p) in enumerate(piece.page_keys.reshape(-1, 2).tolist())
    }

    def page_nr(row: np.void) -> int:
        return page_of.get((int(row["book"]), int(row["page"])), -1)

    systems = [_box(row, page_nr(row)) for row in piece.systems]
    bars = [_box(row, page_nr(row)) for row in piece.measures]
    system_of = {
        (int(b), int(s)): i
        for i, (b, s) in enumerate(zip(piece.systems["book"], piece.systems["system"], strict=True))
    }
    heads = piece.noteheads
    box_of = notehead_boxes(piece)
    coords = []
    left_out = 0
    for event in performance.events:
        n = int(event["notehead_id"])
        if n < 0:
            continue
        head = heads[n]
        if not head["visible"] or head["page"] < 0 or not np.isfinite(head["x0_px"]):
            left_out += 1
            continue
        if box_of[n] < 0:
            left_out += 1
            continue
        system = system_of[(int(head["book"]), int(head["system"]))]
        coords.append(
            {
                "note_x": (float(head["x0_px"]) + float(head["x1_px"])) / 2,
                "note_y": systems[system]["y"],
                "onset": float(event["onset_sec"]),
                "system_idx": system,
                "bar_idx": int(box_of[n]),
                "page_nr": page_nr(head),
            }
        )
    provenance = {
        "format_name": CYOLO_FORMAT,
        "format_version": CYOLO_VERSION,
        "piece_id": piece.piece_id,
        "performance_id": performance.performance_id,
        "plan": performance.plan,
        "notes_left_out": left_out,
        "units": "pixels of the unpadded page images; onset in seconds",
    }
    return {
        "sheets": stacked_pages(piece),
        "coords": np.array(coords, dtype=object),
        "systems": np.array(systems, dtype=object),
        "bars": np.array(bars, dtype=object),
        "synthesized": np.array(True),
        "msmd_builder_json": np.array(json.dumps(provenance, sort_keys=True)),
    }
