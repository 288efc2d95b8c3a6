"""Written jumps realized in playing order: Dal Segno, Coda, Da Capo without Fine, Trio."""

from __future__ import annotations

import numpy as np
import pytest

from tests.stages.align.test_align import align, render

SEGNO = r'\mark \markup { \musicglyph #"scripts.segno" }'
CODA = r'\mark \markup { \musicglyph #"scripts.coda" }'


def score(music: str) -> str:
    """A one-score piece around ``music``, a quarter note per second."""
    return f"\\score {{ {music} \\layout {{ }} \\midi {{ \\tempo 4 = 60 }} }}\n"


def order(performed: np.ndarray) -> list[tuple[int, int]]:
    """(pitch, occurrence) of every performed note, in playing order."""
    rows = np.lexsort((performed["pitch"], performed["onset_sec"]))
    pitches, occurrences = performed["pitch"][rows], performed["occurrence"][rows]
    return list(zip(pitches.tolist(), occurrences.tolist(), strict=True))


def starts(performed: np.ndarray) -> list[float]:
    return np.round(np.sort(performed["onset_sec"]), 3).tolist()


def test_dal_segno_al_fine(make_piece, tmp_path):
    music = (
        rf"""{{ c'1 | {SEGNO} d'1 | e'1_\markup Fine |"""
        r""" f'1_\markup { D.S. al Fine } \bar "|." }"""
    )
    _, performed, stats = align(render(make_piece, tmp_path, "dsfine", score(music)))
    # Bars 1-4, then from the segno (bar 2) to the Fine (bar 3).
    assert order(performed) == [(60, 0), (62, 0), (64, 0), (65, 0), (62, 1), (64, 1)]
    assert starts(performed) == [0, 4, 8, 12, 16, 20]
    assert stats["realized_jumps"] == 1 and stats["jumps"] == "dal segno al fine"
    assert stats["reading_order_violations"] == 0


def test_dal_segno_al_coda(make_piece, tmp_path):
    music = (
        rf"""{{ c'1 | {SEGNO} d'1 | e'1^\markup {{ To Coda \musicglyph #"scripts.coda" }} |"""
        rf""" f'1_\markup {{ D.S. al Coda }} \bar "||" {CODA} g'1 | a'1 \bar "|." }}"""
    )
    _, performed, stats = align(render(make_piece, tmp_path, "dscoda", score(music)))
    # Bars 1-4 (the Coda is skipped), segno to "To Coda" (bars 2-3), then the Coda.
    assert order(performed) == [
        (60, 0),
        (62, 0),
        (64, 0),
        (65, 0),
        (62, 1),
        (64, 1),
        (67, 0),
        (69, 0),
    ]
    assert starts(performed) == [0, 4, 8, 12, 16, 20, 24, 28]
    assert stats["jumps"] == "dal segno al coda"


def test_da_capo_al_coda_skips_the_repeat_and_leaves_at_the_coda_sign(make_piece, tmp_path):
    music = (
        r"""{ \repeat volta 2 { c'2 d'2\coda } e'1 | f'1_\markup { D.C. al Coda }"""
        r""" \bar "||" g'1\coda \bar "|." }"""
    )
    _, performed, stats = align(render(make_piece, tmp_path, "dccoda", score(music)))
    assert order(performed) == [
        (60, 0),
        (62, 0),
        (60, 1),
        (62, 1),
        (64, 0),
        (65, 0),  # D.C.: once through, without the repeat, up to the coda sign on d'
        (60, 2),
        (62, 2),
        (67, 0),  # the Coda
    ]
    assert starts(performed) == [0, 2, 4, 6, 8, 12, 16, 18, 20]
    assert stats["jumps"] == "da capo al coda"


def test_da_capo_without_fine_plays_everything_once_more_without_repeats(make_piece, tmp_path):
    music = (
        r"""{ \repeat volta 2 { c'1 } \alternative { { d'1 } { e'1 } }"""
        r""" f'1_\markup { D.C. } \bar "|." }"""
    )
    _, performed, stats = align(render(make_piece, tmp_path, "dcend", score(music)))
    assert order(performed) == [
        (60, 0),
        (62, 0),
        (60, 1),
        (64, 0),
        (65, 0),
        (60, 2),  # D.C.: the last time through the repeat, second ending
        (64, 1),
        (65, 1),
    ]
    assert starts(performed) == [0, 4, 8, 12, 16, 20, 24, 28]
    assert stats["jumps"] == "da capo to the end"


def test_menuetto_da_capo_after_a_trio_stops_at_the_trio(make_piece, tmp_path):
    music = (
        r"""{ \time 3/4 \repeat volta 2 { c'2. | d'2. }"""
        r""" \repeat volta 2 { e'2.^\markup Trio | f'2._\markup { Menuetto D.C. } } }"""
    )
    _, performed, stats = align(render(make_piece, tmp_path, "menuetto", score(music)))
    menuetto = [(60, 0), (62, 0), (60, 1), (62, 1)]
    trio = [(64, 0), (65, 0), (64, 1), (65, 1)]
    assert order(performed) == menuetto + trio + [(60, 2), (62, 2)]
    assert stats["jumps"] == "da capo to the trio"


def test_fine_on_a_whole_bar_skip_ends_the_replay_at_the_bar_line(make_piece, tmp_path):
    # The Fine is written under a spacer in a Dynamics line, not on a note:
    # the replay ends where that spacer ends, after all four quarters.
    music = (
        r"""<< \new Staff { c'4 d' e' f' | g' a' b' c'' | d''1 }"""
        r""" \new Dynamics { s1 | s1_\markup Fine | s1_\markup { D.C. al Fine } } >>"""
    )
    _, performed, _ = align(render(make_piece, tmp_path, "dynfine", score(music)))
    first = [60, 62, 64, 65, 67, 69, 71, 72, 74]
    assert [p for p, _ in order(performed)] == first + first[:8]


# A Fine written after the jump: from the segno, the replay would run through
# the jump again before reaching it.
FINE_AFTER_THE_JUMP = (
    rf"""{{ {SEGNO} c'1 | d'1 | e'1_\markup {{ D.S. al Fine }} | f'1_\markup Fine \bar "|." }}"""
)


def test_jumps_that_do_not_read_reliably_fail_the_piece(make_piece, tmp_path):
    from msmd_builder.core.errors import NotUnrollableError

    result = render(make_piece, tmp_path, "fineafter", score(FINE_AFTER_THE_JUMP))
    with pytest.raises(
        NotUnrollableError,
        match=r"Dal Segno with 1 segno sign\(s\) before the jump, none of which reads into one "
        r"playing order: the Fine is not between the jump's start and the jump",
    ):
        align(result)


def test_a_jump_that_does_not_read_falls_back_to_printed_order(make_piece, tmp_path):
    """The build performs such a piece as printed (MSMD's reading), flagged; strict, it fails."""
    from tests.conftest import build_through_align
    from tests.pipeline.test_dask import HEADER

    root, _ = make_piece("fineafter", HEADER + score(FINE_AFTER_THE_JUMP))

    def build(**kwargs):
        return build_through_align(root, "TestC__Op1__fineafter", tmp_path / "work", **kwargs)

    strict = build(repeats_fallback=False)
    assert (strict.status, strict.error_class) == ("failed", "not-unrollable")
    assert "the Fine is not between" in strict.message

    fallback = build()
    assert fallback.status == "ok", fallback.message
    assert fallback.details["repeats"] == "folded"
    assert fallback.details["repeats_fallback_class"] == "not-unrollable"
    assert "the Fine is not between" in fallback.details["repeats_fallback"]
    stats = fallback.details["alignment"]
    assert stats["performed_notes"] == 4 and not stats.get("jumps")
    # A rebuild goes straight to the printed order and still says why.
    again = build()
    assert again.details["repeats"] == "folded"
    assert again.details["repeats_fallback_class"] == "not-unrollable"


def test_of_two_segno_signs_the_nearest_before_the_jump_that_reads(make_piece, tmp_path):
    # The nearer sign (bar 3) comes after the Fine, so from there no Fine
    # ends the replay; the first sign reads: from bar 1 to the Fine.
    music = (
        rf"""{{ {SEGNO} c'1 | d'1_\markup Fine | {SEGNO} e'1 |"""
        r""" f'1_\markup { D.S. al Fine } \bar "|." }"""
    )
    _, performed, stats = align(render(make_piece, tmp_path, "twosegni", score(music)))
    assert order(performed) == [(60, 0), (62, 0), (64, 0), (65, 0), (60, 1), (62, 1)]
    assert stats["jumps"] == "dal segno al fine"
    assert stats["jump_readings"] == "of 2 segno signs before the jump, the nearest that reads (0)"
    # With nothing but the signs, the nearest one is the start.
    music = rf"""{{ {SEGNO} c'1 | {SEGNO} d'1 | e'1_\markup {{ D.S. }} \bar "|." }}"""
    _, performed, stats = align(render(make_piece, tmp_path, "nearest", score(music)))
    assert order(performed) == [(60, 0), (62, 0), (64, 0), (62, 1), (64, 1)]
    assert stats["jumps"] == "dal segno to the end"


def test_da_capo_al_segno_goes_back_to_the_sign(make_piece, tmp_path):
    # As in the Swedish dances of the corpus: a segno in mid-section, the Fine
    # at its end, "D.C. al" and the sign drawn at the end of the next section.
    music = (
        rf"""{{ \repeat volta 2 {{ c'1 | d'1 {SEGNO} | e'1 | f'1 \mark "Fine" }}"""
        r""" g'1 | a'1 \mark \markup { "D.C. al" \musicglyph #"scripts.segno" } \bar "|." }"""
    )
    _, performed, stats = align(render(make_piece, tmp_path, "dcalsegno", score(music)))
    section = [60, 62, 64, 65]
    assert order(performed) == (
        [(p, 0) for p in section]
        + [(p, 1) for p in section]
        + [(67, 0), (69, 0), (64, 2), (65, 2)]  # from the sign to the Fine, once
    )
    assert starts(performed) == [4.0 * i for i in range(12)]
    assert stats["jumps"] == "dal segno al fine"
    assert stats["jump_readings"] == "D.C. al Segno read as back to the segno sign"


def test_several_jumps_read_in_order_as_a_rondo(make_piece, tmp_path):
    # As Kreutzer's Lodiska writes it: a segno on the first note, "Fine" at the
    # end of A, "D.C. al" followed by a segno mark at the end of B and of C.
    dc_al = r"""^\markup { D.C. al } """ + SEGNO
    music = (
        r"""{ c'1^\segno | d'1 \mark "Fine" | e'2 e'2"""
        + dc_al
        + r""" | f'2 f'2"""
        + dc_al
        + r""" \bar "|." }"""
    )
    _, performed, stats = align(render(make_piece, tmp_path, "rondo", score(music)))
    a = [(60, 0), (62, 0)]
    assert order(performed) == (
        a + [(64, 0), (64, 0)] + [(60, 1), (62, 1)] + [(65, 0), (65, 0)] + [(60, 2), (62, 2)]
    )
    assert starts(performed) == [0, 4, 8, 10, 12, 16, 20, 22, 24, 28]
    assert stats["jumps"] == "dal segno al fine; dal segno al fine"
    assert stats["jump_readings"] == (
        "D.C. al Segno read as back to the segno sign; 2 jump marks read in printed order, "
        "each but the last returning to the music after it"
    )
    assert stats["reading_order_violations"] == 0


def test_a_da_capo_naming_a_movement_in_another_file_ends_the_piece(make_piece, tmp_path):
    """A Trio engraved on its own whose last bar says "Menuet D.C.": the Menuet is elsewhere."""
    from tests.conftest import build_through_align
    from tests.pipeline.test_dask import HEADER

    trio = score(r"""{ \repeat volta 2 { c'1 | d'1_\markup { Menuet D.C. } } }""")
    menuet = score(r"""{ \repeat volta 2 { g'1 | a'1 } }""")
    root, _ = make_piece("trio", HEADER + trio, extra={"menuet.ly": HEADER + menuet})
    outcome = build_through_align(root, "TestC__Op1__trio", tmp_path / "work")
    assert outcome.status == "ok", outcome.message
    assert outcome.details["repeats"] == "unfolded" and "repeats_fallback" not in outcome.details
    stats = outcome.details["alignment"]
    assert stats["jumps"] == "da capo out of the piece"
    assert stats["jump_readings"] == (
        "the Da Capo names music outside this score (menuet): the performance ends with the score"
    )
    # The Trio's own repeat is played; nothing of it is replayed for the Da Capo.
    assert stats["performed_notes"] == 4 and stats["reading_order_violations"] == 0
