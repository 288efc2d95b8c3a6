"""Alignment core: MIDI notes <-> logged note events <-> noteheads, on pieces rendered here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from msmd_builder.stages.align.stage import align_rendered
from msmd_builder.stages.score import link_agreement
from tests.helpers.build import run_stages

HEADER = '\\version "2.24.0"\n\\header { title = "Test" }\n'


def render(make_piece, tmp_path, name, body, **options):
    root, main = make_piece(name, HEADER + body)
    return run_stages(root, main, tmp_path, "render", **options)


def align(result):
    """Noteheads, performed notes and counts of a rendered piece, as the align stage sees them."""
    aligned = align_rendered(
        result.render_dir,
        list(result.pdf_files),
        list(result.midi_files),
        repeats=result.repeats,
    )
    return aligned.noteheads, aligned.performed, aligned.stats


def test_volta_links_each_played_note_to_its_printed_head(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "volta",
        r"\score { \relative c' { \repeat volta 2 { c4 d e f } \alternative { { g1 } { a1 } } }"
        r" \layout { } \midi { \tempo 4 = 60 } }",
    )
    heads, table, stats = align(result)
    assert stats["midi_notes"] == stats["matched_midi_notes"] == 10
    # Played: c d e f g (first ending), c d e f a (second ending).
    assert table["pitch"].tolist() == [60, 62, 64, 65, 67, 60, 62, 64, 65, 69]
    assert table["notehead_id"].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 5]
    assert table["occurrence"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    np.testing.assert_allclose(table["onset_sec"], [0, 1, 2, 3, 4, 8, 9, 10, 11, 12])
    assert (heads["pitch"][table["notehead_id"]] == table["pitch"]).all()


def test_tie_continuation_starts_no_note_and_grace_is_linked(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "tiegrace",
        r"\score { { c'2~ c'2 | \grace d''8 e''1 | <c' e'>1~ | <c' e'>2 g'2 }"
        r" \layout { } \midi { } }",
    )
    heads, table, stats = align(result)
    assert heads["tied"].tolist() == [False, True, False, False, False, False, True, True, False]
    assert heads["grace"].tolist() == [False, False, True] + [False] * 6
    assert stats["matched_midi_notes"] == stats["midi_notes"] == 6
    assert table["notehead_id"].tolist() == [0, 2, 3, 4, 5, 8]
    # The tied c' sounds through the first bar, up to where LilyPond's MIDI
    # places the grace note before the next beat (it steals 11/384 of a whole).
    assert table["duration_whole"][0] == pytest.approx(1 - 44 / 1536)


def test_all_examples_align_completely(tmp_path):
    from msmd_builder.stages.corpus.scan import scan_corpus
    from tests.conftest import EXAMPLES_ROOT

    for entry in scan_corpus(EXAMPLES_ROOT):
        result = run_stages(EXAMPLES_ROOT, entry.main_file, tmp_path, "render")
        heads, table, stats = align(result)
        iou = link_agreement(heads, Path(result.render_dir) / result.pdf_files[0])
        visible = heads["visible"]
        assert visible.sum() > 50, entry.piece_id
        # Every visible notehead box agrees with LilyPond's own point-and-click link box.
        assert (iou[visible] >= 0.9).all(), entry.piece_id
        # Totals over the piece's scores: each score's matched count is at most its own total.
        assert stats["matched_midi_notes"] == stats["midi_notes"], entry.piece_id
        assert stats["matched_events"] == stats["sounding_events"], entry.piece_id
        # Every matched note's voice is known, and each voice plays in written order.
        assert stats["voice_order_checked"] == stats["matched_midi_notes"], entry.piece_id
        assert stats["voice_order_violations"] == 0, stats["voice_order_first_violation"]
        linked = table["notehead_id"]
        assert (linked >= 0).all()
        assert (heads["pitch"][linked] == table["pitch"]).all()  # notehead_id is the row index


def _table(onsets, occurrences=None):
    from msmd_builder.core.tables import empty_performed_events

    table = empty_performed_events(len(onsets))
    table["onset_whole"] = onsets
    table["duration_whole"] = 0.25
    table["onset_sec"] = np.asarray(onsets) * 2
    table["offset_sec"] = table["onset_sec"] + 0.5
    table["notehead_id"] = np.arange(len(onsets))
    table["event_id"] = np.arange(len(onsets))
    if occurrences is not None:
        table["occurrence"] = occurrences
    return table


def test_da_capo_al_fine_replays_up_to_the_fine():
    from fractions import Fraction

    from msmd_builder.lilypond.logs import Mark
    from msmd_builder.stages.align.jumps import realize_jumps

    table = _table([0, 0.25, 0.5, 0.75, 1.0, 1.25])
    marks = [
        Mark(0, Fraction(1, 4), "TextScript", "Fine"),
        Mark(0, Fraction(5, 4), "TextScript", "D.C. al Fine"),
    ]
    played, plans = realize_jumps(table, marks)
    assert [(p.kind, p.reading) for p in plans] == [("da capo al fine", "")]
    assert played["notehead_id"].tolist() == [0, 1, 2, 3, 4, 5, 0, 1]
    assert played["occurrence"].tolist() == [0] * 6 + [1, 1]
    np.testing.assert_allclose(played["onset_sec"][6:], [3.0, 3.5])  # right after the last release
    np.testing.assert_allclose(played["onset_whole"][6:], [1.5, 1.75])


@pytest.mark.parametrize(
    ("texts", "reason"),
    [
        (["D.S. al Coda"], "Dal Segno with no segno sign before the jump"),
        (
            ["[segno]", "[segno]", "D.S. al Fine"],
            "2 segno sign\\(s\\) before the jump, none of which reads.*no Fine is written",
        ),
        (["D.C.", "D.C. al Fine"], "no Fine is written"),
        (["D.C.", "D.C."], "the da capo to the end at 0.25 does not end its replay before"),
        (["Fine", "Fine", "D.C. al Fine"], "several Fine marks"),
        (["D.C. al Fine"], "says al Fine but no Fine is written"),
        (["D.C. al scripts.segno [segno]"], "Dal Segno with no segno sign before the jump"),
        (["To Coda [coda]", "D.C. al Coda"], "found 1 and 0"),
        (["D.C.", "Coda"], "does not say al Coda"),
        (["D.C.", "Fine"], "Fine is not between"),
    ],
)
def test_unreadable_jumps_are_not_unrollable(texts, reason):
    from fractions import Fraction

    from msmd_builder.core.errors import NotUnrollableError
    from msmd_builder.lilypond.logs import Mark
    from msmd_builder.stages.align.jumps import realize_jumps

    table = _table([0, 0.25, 0.5, 0.75, 1.0, 1.25])
    marks = [Mark(0, Fraction(i + 1, 4), "TextScript", t) for i, t in enumerate(texts)]
    with pytest.raises(NotUnrollableError, match=reason):
        realize_jumps(table, marks)


@pytest.mark.parametrize(
    ("texts", "reading"),
    [
        (["Trio", "", "", "Menuetto D.C."], "the score begins with its Trio"),
        (["", "", "", "Menuet da Capo."], "names music outside this score \\(menuet\\)"),
        (["", "", "", "Aria da Capo e Fine."], "names music outside this score \\(aria\\)"),
    ],
)
def test_a_da_capo_to_music_outside_the_score_ends_the_performance_with_it(texts, reading):
    """The Menuet after a separately engraved Trio, the Aria after the last variation."""
    from fractions import Fraction

    from msmd_builder.lilypond.logs import Mark
    from msmd_builder.stages.align.jumps import realize_jumps

    table = _table([0, 0.25, 0.5, 0.75, 1.0])
    marks = [
        Mark(0, Fraction(i, 4), "TextScript", text, Fraction(i + 1, 4))
        for i, text in enumerate(texts)
        if text
    ]
    played, plans = realize_jumps(table, marks)
    assert [p.kind for p in plans] == ["da capo out of the piece"]
    assert plans[0].leaves and re.search(reading, plans[0].reading)
    # Nothing is replayed; the final note after the jump's note is played.
    assert played["notehead_id"].tolist() == [0, 1, 2, 3, 4]


def test_same_text_in_several_staves_is_one_mark():
    from fractions import Fraction

    from msmd_builder.lilypond.logs import Mark
    from msmd_builder.stages.align.jumps import realize_jumps

    table = _table([0, 0.25, 0.5, 0.75, 1.0, 1.25])
    marks = [
        Mark(0, Fraction(1, 4), "TextScript", "Fine", Fraction(1, 2)),
        Mark(0, Fraction(1, 4), "TextScript", "Fine", Fraction(1, 2)),
        Mark(0, Fraction(5, 4), "TextScript", "D.C. al Fine", Fraction(3, 2)),
        Mark(0, Fraction(5, 4), "TextScript", "D.C. al Fine", Fraction(3, 2)),
    ]
    played, plans = realize_jumps(table, marks)
    assert [p.kind for p in plans] == ["da capo al fine"]
    assert played["notehead_id"].tolist() == [0, 1, 2, 3, 4, 5, 0, 1]


def test_fine_alone_is_no_jump():
    from fractions import Fraction

    from msmd_builder.lilypond.logs import Mark
    from msmd_builder.stages.align.jumps import realize_jumps

    table = _table([0, 0.5])
    played, plans = realize_jumps(table, [Mark(0, Fraction(1, 2), "TextScript", "Fine.")])
    assert plans == () and len(played) == 2


def test_da_capo_pass_skips_volta_repeats_but_keeps_tremolos():
    from msmd_builder.stages.align.jumps import without_repeats

    # Played: body (e0 e1), first ending (e2), body again, second ending (e3),
    # then a tremolo (e4 four times), all quarter notes, one second each.
    table = _table([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25])
    table["event_id"] = [0, 1, 2, 0, 1, 3, 4, 4, 4, 4]
    kept = without_repeats(table, measured_repeat_ids=frozenset({4}))
    assert kept["event_id"].tolist() == [0, 1, 3, 4, 4, 4, 4]
    np.testing.assert_allclose(kept["onset_whole"], [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5])
    np.testing.assert_allclose(kept["onset_sec"], [0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    # Without the flag, the tremolo's replays would look like a volta pass
    # and its first stroke would be dropped.
    assert without_repeats(table)["event_id"].tolist() == [0, 1, 3, 4, 4, 4]


def test_da_capo_al_fine_end_to_end(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "dacapo",
        r"\score { { \repeat volta 2 { c'4 d'4 } \alternative { { e'2 } { f'2 } }"
        r" \repeat tremolo 4 g'16 g'4_\markup Fine | a'2 b'2_\markup { D.C. al Fine } }"
        r" \layout { } \midi { \tempo 4 = 60 } }",
    )
    _, performed, stats = align(result)
    first = [60, 62, 64, 60, 62, 65, 67, 67, 67, 67, 67, 69, 71]
    # The Da Capo pass skips the volta repeat (and its first ending) but keeps the tremolo.
    assert performed["pitch"].tolist() == first + [60, 62, 65, 67, 67, 67, 67, 67]
    assert performed["occurrence"][len(first) :].tolist() == [2, 2, 1, 4, 5, 6, 7, 1]
    assert stats["realized_jumps"] == 1
    onsets = performed["onset_sec"][len(first) :]
    assert onsets[0] == pytest.approx(performed["offset_sec"][: len(first)].max())
    np.testing.assert_allclose(np.diff(onsets[:3]), [1.0, 1.0], atol=0.05)
