"""Exact notehead <-> performed-note links of grace notes.

As in :mod:`tests.stages.align.test_align_links`, every performed note names
the written note it is linked to, here also by its character on the line, so
two heads written alike (``d'16 d'16``) are told apart, and the notes are
listed in playing order (MIDI time), so a link to the wrong one of them shows
as written onsets going backwards.  LilyPond's MIDI plays grace time at 9/40
of its written length; the MIDI ticks (384 per quarter note, a quarter per
second here) are pinned too.
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from tests.stages.align.test_align import align, render
from tests.stages.align.test_align_links import written


def _render(make_piece, tmp_path, name: str, music: str):
    return render(
        make_piece,
        tmp_path,
        name,
        "\\score {\n" + music + "\n\\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )


def played(result, heads: np.ndarray, performed: np.ndarray) -> list[tuple]:
    """Per performed note, in playing order (pitch, then staff, within a tick): its written note.

    Each tuple is (body line, character, written note, staff, occurrence,
    onset in whole notes); the body's first line is the ``\\score {`` line.
    """
    rows = sorted(
        range(len(performed)),
        key=lambda r: (
            round(float(performed["onset_sec"][r]), 6),
            performed["pitch"][r],
            performed["staff"][r],
        ),
    )
    out = []
    for r in rows:
        head = int(performed["notehead_id"][r])
        assert head >= 0, performed[r]
        assert heads["pitch"][head] == performed["pitch"][r]
        line, note = written(result, heads, head)
        out.append(
            (
                line,
                int(heads["source_char"][head]),
                note,
                int(heads["staff"][head]),
                int(performed["occurrence"][r]),
                F(float(performed["onset_whole"][r])).limit_denominator(1536),
            )
        )
    return out


def midi_ticks(performed: np.ndarray) -> list[int]:
    """MIDI onsets in ticks, in playing order (a quarter note per second: 384 ticks a second)."""
    return sorted(round(float(t) * 384) for t in performed["onset_sec"])


def test_repeated_same_pitch_graces_link_in_written_order(make_piece, tmp_path):
    result = _render(
        make_piece,
        tmp_path,
        "samegraces",
        "{ c'4 \\grace { d'16 d'16 } e'4 \\grace { g'16 g' g' } f'4 \\grace { a'16 a' } a'4 }",
    )
    heads, performed, stats = align(result)
    assert played(result, heads, performed) == [
        (2, 2, "c'4", 0, 0, F(0)),
        (2, 15, "d'16", 0, 0, F(1, 8)),  # the first d' written sounds first
        (2, 20, "d'16", 0, 0, F(3, 16)),
        (2, 27, "e'4", 0, 0, F(1, 4)),
        (2, 40, "g'16", 0, 0, F(5, 16)),
        (2, 45, "g'", 0, 0, F(3, 8)),
        (2, 48, "g'", 0, 0, F(7, 16)),
        (2, 53, "f'4", 0, 0, F(1, 2)),
        (2, 66, "a'16", 0, 0, F(5, 8)),
        (2, 71, "a'", 0, 0, F(11, 16)),
        (2, 76, "a'4", 0, 0, F(3, 4)),  # the main note of the graces' pitch keeps its beat
    ]
    # Each sixteenth of grace time sounds as 9/40 of a sixteenth (21.6 ticks) before its beat.
    assert midi_ticks(performed) == [0, 340, 362, 384, 703, 724, 746, 768, 1108, 1130, 1152]
    assert stats["matched_midi_notes"] == stats["midi_notes"] == 11


@pytest.mark.parametrize(
    ("music", "expected", "ticks"),
    [
        (
            "{ \\grace f'8 c'4 d'4 }",
            [
                (2, 9, "f'8", 0, 0, F(-1, 8)),
                (2, 13, "c'4", 0, 0, F(0)),
                (2, 17, "d'4", 0, 0, F(1, 4)),
            ],
            # The grace delays the whole MIDI by its 43 ticks.
            [0, 43, 427],
        ),
        (
            "{ \\grace { c'16 c' } c'4 d'4 }",
            [
                (2, 11, "c'16", 0, 0, F(-1, 8)),
                (2, 16, "c'", 0, 0, F(-1, 16)),
                (2, 21, "c'4", 0, 0, F(0)),  # same pitch as the graces before it
                (2, 25, "d'4", 0, 0, F(1, 4)),
            ],
            [0, 22, 43, 427],
        ),
    ],
    ids=["other-pitch", "same-pitch"],
)
def test_graces_before_the_first_beat_link_with_the_start_delay(
    make_piece, tmp_path, music, expected, ticks
):
    result = _render(make_piece, tmp_path, "opening", music)
    heads, performed, stats = align(result)
    assert played(result, heads, performed) == expected
    assert midi_ticks(performed) == ticks
    assert stats["matched_midi_notes"] == stats["midi_notes"] == len(expected)


def test_graces_in_both_hands_at_once_keep_their_staves_and_order(make_piece, tmp_path):
    result = _render(
        make_piece,
        tmp_path,
        "bothhands",
        "\\new PianoStaff <<\n"
        "  \\new Staff { c''4 \\grace { d''16 d'' e'' } f''4 g''2 }\n"
        "  \\new Staff { \\clef bass c4 \\grace d8 e4 \\grace { g,16 g, } f2 }\n"
        ">>",
    )
    heads, performed, stats = align(result)
    assert played(result, heads, performed) == [
        (4, 26, "c4", 1, 0, F(0)),
        (3, 15, "c''4", 0, 0, F(0)),
        (3, 29, "d''16", 0, 0, F(1, 16)),
        (4, 36, "d8", 1, 0, F(1, 8)),  # the lower grace starts with the upper's second
        (3, 35, "d''", 0, 0, F(1, 8)),
        (3, 39, "e''", 0, 0, F(3, 16)),
        (4, 39, "e4", 1, 0, F(1, 4)),
        (3, 45, "f''4", 0, 0, F(1, 4)),
        (4, 51, "g,16", 1, 0, F(3, 8)),
        (4, 56, "g,", 1, 0, F(7, 16)),
        (4, 61, "f2", 1, 0, F(1, 2)),
        (3, 50, "g''2", 0, 0, F(1, 2)),
    ]
    assert midi_ticks(performed) == [0, 0, 319, 340, 340, 362, 384, 384, 724, 746, 768, 768]
    assert stats["matched_midi_notes"] == stats["midi_notes"] == 12


def test_same_pitch_in_both_hands_at_once_links_each_to_its_own_staff(make_piece, tmp_path):
    result = _render(
        make_piece,
        tmp_path,
        "unisonhands",
        "\\new PianoStaff <<\n"
        "  \\new Staff { c''4 \\grace g'16 a'4 g'2 }\n"
        "  \\new Staff { \\clef bass g'4 \\grace g'16 a'4 g'2 }\n"
        ">>",
    )
    heads, performed, stats = align(result)
    # Each staff is its own MIDI track: two notes for each unison, one per head.
    assert played(result, heads, performed) == [
        (4, 26, "g'4", 1, 0, F(0)),
        (3, 15, "c''4", 0, 0, F(0)),
        (3, 27, "g'16", 0, 0, F(3, 16)),
        (4, 37, "g'16", 1, 0, F(3, 16)),
        (3, 32, "a'4", 0, 0, F(1, 4)),
        (4, 42, "a'4", 1, 0, F(1, 4)),
        (3, 36, "g'2", 0, 0, F(1, 2)),
        (4, 46, "g'2", 1, 0, F(1, 2)),
    ]
    assert midi_ticks(performed) == [0, 0, 362, 362, 384, 384, 768, 768]
    assert stats["matched_midi_notes"] == stats["midi_notes"] == 8
    assert stats["unison_events"] == 0


def test_after_graces_link_at_the_end_of_their_note(make_piece, tmp_path):
    result = _render(
        make_piece,
        tmp_path,
        "aftergrace",
        "{ \\afterGrace c'2 { d'16 e' } f'2 | \\afterGrace g'2 { g'16 g' } a'2 }",
    )
    heads, performed, stats = align(result)
    # An after-grace group is written as graces before 3/4 of its note
    # (afterGraceFraction): it ends there, at 3/8 and 11/8.
    assert played(result, heads, performed) == [
        (2, 14, "c'2", 0, 0, F(0)),
        (2, 20, "d'16", 0, 0, F(1, 4)),
        (2, 25, "e'", 0, 0, F(5, 16)),
        (2, 30, "f'2", 0, 0, F(1, 2)),
        (2, 48, "g'2", 0, 0, F(1)),
        (2, 54, "g'16", 0, 0, F(5, 4)),  # the after-graces of the note's own pitch, in order
        (2, 59, "g'", 0, 0, F(21, 16)),
        (2, 64, "a'2", 0, 0, F(3, 2)),
    ]
    assert midi_ticks(performed) == [0, 532, 554, 768, 1536, 2068, 2090, 2304]
    # The g'2 is cut where its own pitch is struck again by the first after-grace.
    g_half = performed[(performed["pitch"] == 67) & (performed["onset_whole"] == 1)]
    assert g_half["duration_whole"].tolist() == [532 / 1536]
    assert stats["matched_midi_notes"] == stats["midi_notes"] == 8


@pytest.mark.corpus
def test_a_real_grace_group_with_a_repeated_pitch_plays_in_written_order(real_mutopia, tmp_path):
    """Foster's Old Folks at Home: ``cis'4. \\grace {d'16 ( [cis' bis cis']} d'8`` (line 187).

    The matcher of grace windows linked its two cis' graces the wrong way round.
    """
    from msmd_builder.core.cache import load_npz
    from msmd_builder.core.workdir import PieceDir
    from msmd_builder.stages.align.stage import ALIGNMENT_FORMAT, ALIGNMENT_VERSION
    from msmd_builder.stages.score import GEOMETRY_FORMAT, GEOMETRY_VERSION
    from tests.conftest import build_through_align

    piece_id = "FosterSC__oldfolks__oldfolks"
    outcome = build_through_align(real_mutopia, piece_id, tmp_path)
    assert outcome.status == "ok", outcome.message
    stats = outcome.details["alignment"]
    assert stats["voice_order_violations"] == 0
    assert stats["voice_order_checked"] == stats["matched_midi_notes"] == stats["midi_notes"]
    piece_dir = PieceDir.of(tmp_path, piece_id)
    heads = load_npz(
        piece_dir.geometry, format_name=GEOMETRY_FORMAT, format_version=GEOMETRY_VERSION
    )["noteheads"]
    performed = load_npz(
        piece_dir.alignment, format_name=ALIGNMENT_FORMAT, format_version=ALIGNMENT_VERSION
    )["performed"]
    linked = heads[performed["notehead_id"]]
    group = np.flatnonzero((linked["source_line"] == 187) & (linked["source_char"] < 45))
    assert len(group) > 0
    order = group[np.argsort(performed["onset_sec"][group], kind="stable")]
    for occurrence in np.unique(performed["occurrence"][order]):
        playing = order[performed["occurrence"][order] == occurrence]
        # cis'4. d'16 cis' bis cis' d'8, each once, in written order.
        assert linked["source_char"][playing].tolist() == [2, 17, 25, 30, 34, 41]
        assert performed["pitch"][playing].tolist() == [61, 62, 61, 60, 61, 62]
        assert np.all(np.diff(performed["onset_whole"][playing]) > 0)
