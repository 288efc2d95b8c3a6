"""Repeats written in some voices only: every voice played by the score's repeat structure."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from msmd_builder.core.cache import load_npz
from msmd_builder.core.errors import NotUnrollableError, RepeatsOutOfStepError
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.align import stage as align_stage
from msmd_builder.stages.align.timeline import Segment, VoltaRepeat, shared_timeline
from msmd_builder.stages.score import ScoreSettings
from msmd_builder.stages.score import run as score_stage
from tests.conftest import build_through_align
from tests.stages.align.test_align import align, render

#: A header the corpus scan takes for a solo piano piece.
PIANO = r"""\version "2.24.0"
\header { title = "Test" mutopiainstrument = "Piano" mutopiacomposer = "TestC" }
"""


def piano(upper: str, lower: str) -> str:
    """A piano score, a quarter note per second."""
    return (
        rf"\score {{ \new PianoStaff << \new Staff {{ {upper} }}"
        rf" \new Staff {{ \clef bass {lower} }} >> \layout {{ }} \midi {{ \tempo 4 = 60 }} }}"
    )


def order(performed: np.ndarray) -> list[tuple[int, int]]:
    """(pitch, occurrence) of every performed note, in playing order (lower pitch first)."""
    rows = np.lexsort((performed["pitch"], np.round(performed["onset_sec"], 6)))
    return list(
        zip(performed["pitch"][rows].tolist(), performed["occurrence"][rows].tolist(), strict=True)
    )


def starts(performed: np.ndarray) -> list[float]:
    return np.round(np.sort(performed["onset_sec"]), 6).tolist()


def aligned_in_unfolded_mode(make_piece, tmp_path, name, body):
    """Run the align stage on the piece rendered with LilyPond's unfolded MIDI."""
    result = render(make_piece, tmp_path, name, body)
    piece_dir = PieceDir.of(tmp_path, result.piece_id)
    score = score_stage(result, ScoreSettings(), piece_dir)
    return align_stage.run(score, align_stage.AlignSettings(), piece_dir)


# A repeat written in the right hand only; the left hand writes its bar once.
RIGHT_HAND_ONLY = piano(r"\repeat volta 2 { c''4 d'' e'' f'' } g''1", r"c2 e | g1")


def test_a_repeat_in_the_right_hand_only_repeats_the_left_hand_too(make_piece, tmp_path):
    heads, performed, stats = align(
        render(make_piece, tmp_path, "rh", RIGHT_HAND_ONLY, repeats="timeline")
    )
    first = [(48, 0), (72, 0), (74, 0), (52, 0), (76, 0), (77, 0)]
    again = [(48, 1), (72, 1), (74, 1), (52, 1), (76, 1), (77, 1)]
    assert order(performed) == first + again + [(55, 0), (79, 0)]
    assert starts(performed) == [0, 0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, 8]
    assert stats["timeline_repeats"] == 1
    assert stats["reading_order_violations"] == 0
    assert stats["matched_midi_notes"] == stats["midi_notes"] == 8
    # Each playing is linked to its notehead: the six heads of the repeated
    # bar (both hands) twice, the two g's once.
    assert (heads["pitch"][performed["notehead_id"]] == performed["pitch"]).all()
    assert sorted(np.bincount(performed["notehead_id"]).tolist()) == [1, 1] + [2] * 6
    assert sorted(heads["pitch"][np.bincount(performed["notehead_id"]) == 1]) == [55, 79]


def test_lilypond_unfolding_out_of_step_with_the_repeat_is_refused(make_piece, tmp_path):
    with pytest.raises(
        RepeatsOutOfStepError,
        match=r"written in some voices only: the note printed at 0 .* played 1 time\(s\) by "
        r"LilyPond's unfolded MIDI, 2 by \\repeat volta 2 at rh\.ly:\d+:\d+ \(printed 0 to 1\)",
    ):
        aligned_in_unfolded_mode(make_piece, tmp_path, "rh", RIGHT_HAND_ONLY)


def test_a_volta_with_alternatives_in_one_staff_only(make_piece, tmp_path):
    body = piano(
        r"\repeat volta 2 { c''2 d'' } \alternative { { e''1 } { f''1 } } g''1",
        r"c2 d | e1 | f1 | g1",
    )
    _, performed, stats = align(render(make_piece, tmp_path, "alts", body, repeats="timeline"))
    # Body, first ending; body, second ending; then on: both hands alike.
    assert order(performed) == [
        (48, 0),
        (72, 0),
        (50, 0),
        (74, 0),
        (52, 0),
        (76, 0),
        (48, 1),
        (72, 1),
        (50, 1),
        (74, 1),
        (53, 0),
        (77, 0),
        (55, 0),
        (79, 0),
    ]
    assert starts(performed) == [0, 0, 2, 2, 4, 4, 8, 8, 10, 10, 12, 12, 16, 16]
    assert stats["reading_order_violations"] == 0 and stats["reading_order_back_jumps"] == 0


def test_a_repeat_in_one_voice_of_a_two_voice_staff(make_piece, tmp_path):
    body = (
        r"\score { \new Staff << { \voiceOne \repeat volta 2 { e''4 f'' g'' a'' } b''1 }"
        r" \new Voice { \voiceTwo c''2 d'' | e''1 } >> \layout { } \midi { \tempo 4 = 60 } }"
    )
    with pytest.raises(RepeatsOutOfStepError, match="written in some voices only"):
        aligned_in_unfolded_mode(make_piece, tmp_path, "voices", body)
    _, performed, _ = align(render(make_piece, tmp_path, "voices", body, repeats="timeline"))
    bar = [(72, 0), (76, 0), (77, 0), (74, 0), (79, 0), (81, 0)]
    assert order(performed) == bar + [(p, 1) for p, _ in bar] + [(76, 0), (83, 0)]
    assert starts(performed)[:6] == [0, 0, 1, 2, 2, 3]
    assert starts(performed)[6:] == [4, 4, 5, 6, 6, 7, 8, 8]


def test_a_structure_voice_of_spacers_carries_the_repeat_for_all(make_piece, tmp_path):
    """LilyPond's unfolded MIDI would repeat only the spacers: the notes must repeat too."""
    body = (
        r"\score { << \new Staff { c'4 d' e' f' | g'1 }"
        r" \new Dynamics { \repeat volta 2 { s1 } s1 } >>"
        r" \layout { } \midi { \tempo 4 = 60 } }"
    )
    with pytest.raises(RepeatsOutOfStepError, match="played 1 time\\(s\\).*, 2 by"):
        aligned_in_unfolded_mode(make_piece, tmp_path, "spacers", body)
    _, performed, _ = align(render(make_piece, tmp_path, "spacers", body, repeats="timeline"))
    bar = [60, 62, 64, 65]
    assert order(performed) == [(p, 0) for p in bar] + [(p, 1) for p in bar] + [(67, 0)]
    assert starts(performed) == [0, 1, 2, 3, 4, 5, 6, 7, 8]


def test_repeats_written_in_every_voice_keep_lilypond_unfolding(make_piece, tmp_path):
    body = piano(r"\repeat volta 2 { c''1 } d''1", r"\repeat volta 2 { c1 } d1")
    aligned = aligned_in_unfolded_mode(make_piece, tmp_path, "every", body)
    assert aligned.repeats == "unfolded"
    assert "repeats_out_of_step" not in aligned.stats
    assert order(aligned.load()) == [(48, 0), (72, 0), (48, 1), (72, 1), (50, 0), (74, 0)]


def test_the_build_goes_to_the_timeline_by_itself_and_remembers(make_piece, tmp_path):
    root, _ = make_piece("rh", PIANO + RIGHT_HAND_ONLY)

    def build(**kwargs):
        return build_through_align(root, "TestC__Op1__rh", tmp_path / "work", **kwargs)

    outcome = build(repeats_fallback=False)  # the timeline is a reading, not a fallback
    assert outcome.status == "ok", outcome.message
    assert outcome.details["repeats"] == "timeline"
    assert "written in some voices only" in outcome.details["repeats_timeline"]
    assert "repeats_fallback" not in outcome.details
    assert outcome.details["alignment"]["performed_notes"] == 14
    performed = load_npz(
        PieceDir.of(tmp_path / "work", "TestC__Op1__rh").alignment,
        format_name=align_stage.ALIGNMENT_FORMAT,
        format_version=align_stage.ALIGNMENT_VERSION,
    )["performed"]
    assert order(performed)[-2:] == [(55, 0), (79, 0)]
    again = build()
    assert again.details["repeats"] == "timeline"
    assert "written in some voices only" in again.details["repeats_timeline"]
    assert again.seconds["render"] < 0.5  # straight to the cached timeline rendering


def test_voices_writing_different_repeats_fall_back_to_printed_order(make_piece, tmp_path):
    body = piano(r"\repeat volta 2 { c''1 d''1 } e''1", r"c1 \repeat volta 2 { d1 e1 }")
    root, _ = make_piece("clash", PIANO + body)
    outcome = build_through_align(root, "TestC__Op1__clash", tmp_path / "work")
    assert outcome.status == "ok", outcome.message
    assert outcome.details["repeats"] == "folded"
    assert outcome.details["repeats_fallback_class"] == "not-unrollable"
    assert (
        "voices write different repeats over the same music"
        in (outcome.details["repeats_fallback"])
    )


def test_nested_repeats_and_volte_unroll_like_lilypond():
    # A three-time repeat whose first ending serves volte 1 and 2, with a
    # repeated half bar inside its body.
    outer = VoltaRepeat(Fraction(0), Fraction(1), 3, ((Fraction(2), (1, 2)), (Fraction(3), (3,))))
    inner = VoltaRepeat(Fraction(1, 2), Fraction(1), 2)
    timeline = shared_timeline((outer, inner))
    half, one, two, three = Fraction(1, 2), Fraction(1), Fraction(2), Fraction(3)
    assert timeline.segments == (
        Segment(0, one, 0),  # body with the inner repeat's first pass
        Segment(half, two, Fraction(1)),  # inner second pass, first ending
        Segment(0, one, Fraction(5, 2)),
        Segment(half, two, Fraction(7, 2)),
        Segment(0, one, Fraction(5)),
        Segment(half, one, Fraction(6)),
        Segment(two, None, Fraction(13, 2)),  # third ending, then to the end
    )
    assert timeline.performed_moments(0.75) == [0.75, 1.25, 3.25, 3.75, 5.75, 6.25]
    assert timeline.performed_moments(2.5) == [7.0]
    assert timeline.performed_moments(three + 1) == [8.5]


def test_repeats_that_overlap_have_no_shared_timeline():
    first = VoltaRepeat(Fraction(0), Fraction(2), 2, source="a.ly:1:1")
    second = VoltaRepeat(Fraction(1), Fraction(3), 2, source="a.ly:2:1")
    with pytest.raises(NotUnrollableError, match=r"at a\.ly:1:1 .* and .* at a\.ly:2:1"):
        shared_timeline((first, second))


def test_music_held_in_several_places_is_not_taken_for_an_unwritten_repeat(make_piece, tmp_path):
    """One note event the music holds four times (built in Scheme) has four noteheads, one id."""
    body = (
        r"\score { { #(let ((note #{ c'4 #})) (make-sequential-music (list note note note note)))"
        r" d'1 } \layout { } \midi { \tempo 4 = 60 } }"
    )
    aligned = aligned_in_unfolded_mode(make_piece, tmp_path, "shared", body)
    assert aligned.repeats == "unfolded" and "repeats_out_of_step" not in aligned.stats
    assert order(aligned.load()) == [(60, 0), (60, 1), (60, 2), (60, 3), (62, 0)]


def test_tremolo_and_percent_repeats_sound_in_every_pass(make_piece, tmp_path):
    body = piano(
        r"\repeat volta 2 { \repeat tremolo 4 c''16 d''4 \repeat percent 2 { e''4 } }", "c1"
    )
    _, performed, _ = align(render(make_piece, tmp_path, "measured", body, repeats="timeline"))
    strokes = [(72, k) for k in range(4)]
    first = [(48, 0), *strokes, (74, 0), (76, 0), (76, 1)]
    again = [(48, 1), *((72, k + 4) for k in range(4)), (74, 1), (76, 2), (76, 3)]
    assert order(performed) == first + again
    assert starts(performed) == [0, 0, 0.25, 0.5, 0.75, 1, 2, 3] + [4, 4, 4.25, 4.5, 4.75, 5, 6, 7]
