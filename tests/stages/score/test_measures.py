"""Measures as LilyPond laid them out: bar numbers, written times, flags and boxes.

Each piece is rendered here; the expected measures follow from the music as
written.  Box edges are checked against what the PDF itself draws: inside a
system every edge between two measures lies on a bar line drawn there, and a
system's boxes tile it from its start to its end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from msmd_builder.stages.measures import bar_number_order, notehead_measures
from tests.helpers.build import run_stages

HEADER = '\\version "2.24.0"\n'

#: Pickup, a repeat that opens in the middle of the system, two endings, a
#: compressed rest of three measures.
VOLTA = r"""
\score { \relative c'' { \time 3/4 \partial 4 g4 | c2. |
  \repeat volta 2 { d4 e f | g2. } \alternative { { a2. } { b2. } } |
  \compressMMRests { R2.*3 } | c2. \bar "|." }
  \layout { } \midi { \tempo 4 = 60 } }
"""
#: A cadenza without bar lines, broken over two systems; LilyPond's timing
#: counts it and the bar after it as one measure.
CADENZA = r"""
\score { \relative c'' { c1 | \cadenzaOn c8[ d e f] \bar "" \break g[ a b c]
  \cadenzaOff \bar "|" d1 | e1 \bar "|." } \layout { } \midi { \tempo 4 = 60 } }
"""
#: Da Capo al Fine.
DA_CAPO = r"""
\score { \relative c' { c1 | d1_\markup Fine \bar "||" e1 |
  f1_\markup { D.C. al Fine } \bar "|." } \layout { } \midi { \tempo 4 = 60 } }
"""


def score_stage(make_piece, tmp_path, name, body):
    root, main = make_piece(name, HEADER + body)
    return run_stages(root, main, tmp_path / "work", "score")


def columns(measures: np.ndarray, *names: str) -> list[tuple]:
    return [tuple(row[n].item() for n in names) for row in measures]


def drawn_bar_lines(pdf: Path, page: int, y0_pt: float, y1_pt: float) -> list[tuple[float, float]]:
    """Horizontal spans of the thin, staff-high vertical strokes the PDF draws on a system."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    document = pdfium.PdfDocument(str(pdf))
    try:
        sheet = document[page]
        height = sheet.get_height()
        spans = []
        for obj in sheet.get_objects(max_depth=5):
            if obj.type != raw.FPDF_PAGEOBJ_PATH:
                continue
            left, bottom, right, top = obj.get_bounds()
            if right - left < 4 and height - top <= y0_pt + 1 and height - bottom >= y1_pt - 1:
                spans.append((left, right))
        return spans
    finally:
        document.close()


def check_boxes_against_pdf(result, measures: np.ndarray, systems: np.ndarray) -> None:
    """Boxes tile each system; every inner edge lies on a bar line the PDF draws."""
    pdf = Path(result.render.render_dir) / result.render.pdf_files[0]
    for system in systems:
        boxes = measures[measures["system"] == system["system"]]
        boxes = boxes[np.argsort(boxes["x0_pt"])]
        assert boxes["x0_pt"][0] == system["x0_pt"]
        assert boxes["x1_pt"][-1] == system["x1_pt"]
        assert (boxes["x1_pt"][:-1] == boxes["x0_pt"][1:]).all()
        assert (boxes["y0_pt"] == system["y0_pt"]).all()
        assert (boxes["y1_pt"] == system["y1_pt"]).all()
        bars = drawn_bar_lines(pdf, int(system["page"]), system["y0_pt"], system["y1_pt"])
        for edge in boxes["x0_pt"][1:]:
            assert any(left - 2 <= edge <= right + 2 for left, right in bars), edge


def test_pickup_volta_repeat_and_multi_measure_rest(make_piece, tmp_path):
    result = score_stage(make_piece, tmp_path, "volta", VOLTA)
    noteheads, systems = result.load()
    measures = result.load_measures()
    assert len(systems) == 1
    assert columns(measures, "measure", "bar_number", "onset_whole", "length_whole") == [
        (0, 0, 0.0, 0.25),
        (1, 1, 0.25, 0.75),
        (2, 2, 1.0, 0.75),
        (3, 3, 1.75, 0.75),
        (4, 4, 2.5, 0.75),
        (5, 5, 3.25, 0.75),
        (6, 6, 4.0, 2.25),
        (7, 9, 6.25, 0.75),
    ]
    flags = ("pickup", "partial", "volta", "repeat_start", "repeat_end", "n_measures")
    assert columns(measures, *flags) == [
        (True, False, 0, False, False, 1),
        (False, False, 0, False, False, 1),
        (False, False, 0, True, False, 1),  # the repeat opens in mid-system
        (False, False, 0, False, False, 1),
        (False, False, 1, False, True, 1),
        (False, False, 2, False, False, 1),
        (False, False, 0, False, False, 3),  # R2.*3 compressed: one box, three measures
        (False, False, 0, False, False, 1),
    ]
    assert measures["multi_measure_rest"].tolist() == [False] * 6 + [True, False]
    assert (measures["nominal_whole"] == 0.75).all()
    assert (measures["n_parts"] == 1).all() and (measures["part"] == 0).all()
    assert result.measures == 8 and result.measure_boxes == 8
    check_boxes_against_pdf(result, measures, systems)
    check = notehead_measures(noteheads, measures)
    assert check.checked == check.in_one_box == 9 and check.wrong_measure == 0
    assert result.measure_agreement == 1.0
    # g (pickup), c, d e f, g, a, b, c: the box of the measure they are written in.
    assert measures["measure"][check.measure_id].tolist() == [0, 1, 2, 2, 2, 3, 4, 5, 7]
    assert bar_number_order(measures) == (0, "")


def test_cadenza_broken_over_two_systems_is_one_measure_of_two_boxes(make_piece, tmp_path):
    result = score_stage(make_piece, tmp_path, "cadenza", CADENZA)
    noteheads, systems = result.load()
    measures = result.load_measures()
    assert len(systems) == 2
    names = ("measure", "part", "n_parts", "system", "bar_number", "onset_whole", "length_whole")
    assert columns(measures, *names) == [
        (0, 0, 1, 0, 1, 0.0, 1.0),
        (1, 0, 2, 0, 2, 1.0, 2.0),  # cadenza (1 whole) and the bar after it, up to the next start
        (1, 1, 2, 1, 2, 1.0, 2.0),
        (2, 0, 1, 1, 3, 3.0, 1.0),
    ]
    assert measures["cadenza"].tolist() == [False, True, True, False]
    assert not measures["partial"].any() and not measures["pickup"].any()
    # The first box runs to the end of the first system, the second from the start of the next.
    assert measures["x1_pt"][1] == systems["x1_pt"][0]
    assert measures["x0_pt"][2] == systems["x0_pt"][1]
    check_boxes_against_pdf(result, measures, systems)
    check = notehead_measures(noteheads, measures)
    assert check.checked == check.in_one_box == 11
    assert measures["measure_id"][check.measure_id].tolist() == [0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3]


def test_da_capo_al_fine_measures_are_printed_once(make_piece, tmp_path):
    result = score_stage(make_piece, tmp_path, "dacapo", DA_CAPO)
    noteheads, systems = result.load()
    measures = result.load_measures()
    assert columns(measures, "bar_number", "onset_whole", "length_whole") == [
        (1, 0.0, 1.0),
        (2, 1.0, 1.0),
        (3, 2.0, 1.0),
        (4, 3.0, 1.0),
    ]
    assert not (measures["repeat_start"] | measures["repeat_end"]).any()
    check_boxes_against_pdf(result, measures, systems)
    assert notehead_measures(noteheads, measures).in_one_box == 4
    # The pixel boxes are the point boxes scaled to the page image.
    scale = result.pages[0]["width_px"] / result.pages[0]["width_pt"]
    np.testing.assert_allclose(measures["x0_px"], measures["x0_pt"] * scale, rtol=1e-6)
    np.testing.assert_allclose(measures["y1_px"], measures["y1_pt"] * scale, rtol=1e-6)


def test_a_notehead_outside_every_box_is_reported():
    from msmd_builder.core.tables import MEASURE_DTYPE, NOTEHEAD_DTYPE

    measures = np.zeros(2, dtype=MEASURE_DTYPE)
    measures["measure_id"] = measures["measure"] = [0, 1]
    measures["x0_pt"], measures["x1_pt"] = [10, 50], [50, 90]
    measures["onset_whole"], measures["length_whole"] = [0, 1], [1, 1]
    heads = np.zeros(3, dtype=NOTEHEAD_DTYPE)
    heads["visible"] = True
    heads["x0_pt"], heads["x1_pt"] = [20, 60, 95], [24, 64, 99]
    heads["onset_whole"] = [0.5, 0.5, 1.5]  # the second is drawn in the box of bar 2
    heads["source_line"] = [3, 4, 5]
    check = notehead_measures(heads, measures)
    assert check.measure_id.tolist() == [0, -1, -1]
    assert (check.checked, check.in_one_box, check.in_no_box, check.wrong_measure) == (3, 2, 1, 1)
    assert check.share == pytest.approx(1 / 3)
    assert check.first_problem == (
        "notehead 1 (source line 4, page 1, system 1) is in the box of bar 0, written at 0.5"
    )
