"""Performed measures: every measure occurrence with its unrolled span and seconds.

The pieces play a quarter note per second (a whole note in 4 s), so every
expected time follows from counting beats in the music as played.
"""

from __future__ import annotations

import numpy as np

from msmd_builder.stages.align.measures import check_note_measures, performed_measures
from tests.helpers.build import run_stages
from tests.stages.score.test_measures import CADENZA, DA_CAPO, HEADER, VOLTA

#: A repeat after a pickup: it closes in the middle of a measure, where the
#: performance goes back to the pickup.
PICKUP_REPEAT = r"""
\score { \relative c'' { \time 3/4 \partial 4 \repeat volta 2 { g4 | c2. | d2 } e4 | f2.
  \bar "|." } \layout { } \midi { \tempo 4 = 60 } }
"""
#: Percent repeats print a measure once and play it twice in a row.
PERCENT = r"""
\score { \relative c'' { \repeat percent 2 { c4 d e f } | g1 \bar "|." }
  \layout { } \midi { \tempo 4 = 60 } }
"""


def align_stage(make_piece, tmp_path, name, body):
    root, main = make_piece(name, HEADER + body)
    work = tmp_path / "work"
    score = run_stages(root, main, work, "score")
    return score, run_stages(root, main, work, "align")


def occurrences(table: np.ndarray) -> list[tuple]:
    names = ("measure", "occurrence", "bar_number", "start_sec", "end_sec")
    return [tuple(row[n].item() for n in names) for row in table]


def test_volta_pickup_and_multi_measure_rest(make_piece, tmp_path):
    _, aligned = align_stage(make_piece, tmp_path, "volta", VOLTA)
    table = aligned.load_measures()
    assert occurrences(table) == [
        (0, 0, 0, 0.0, 1.0),  # pickup
        (1, 0, 1, 1.0, 4.0),
        (2, 0, 2, 4.0, 7.0),
        (3, 0, 3, 7.0, 10.0),
        (4, 0, 4, 10.0, 13.0),  # first ending
        (2, 1, 2, 13.0, 16.0),  # the repeat, second time
        (3, 1, 3, 16.0, 19.0),
        (5, 0, 5, 19.0, 22.0),  # second ending
        (6, 0, 6, 22.0, 31.0),  # three measures' rest
        (7, 0, 9, 31.0, 34.0),
    ]
    assert table["start_frame"].tolist() == [0, 20, 80, 140, 200, 260, 320, 380, 440, 620]
    assert table["end_frame"].tolist() == [20, 80, 140, 200, 260, 320, 380, 440, 620, 680]
    np.testing.assert_array_equal(table["start_whole"], table["start_sec"] / 4)
    assert (table["printed_end_whole"] - table["printed_start_whole"]).tolist() == [
        0.25,
        0.75,
        0.75,
        0.75,
        0.75,
        0.75,
        0.75,
        0.75,
        2.25,
        0.75,
    ]
    stats = aligned.stats
    assert stats["measure_occurrences"] == 10
    assert stats["guessed_jumps"] == stats["notes_outside_measures"] == 0


def test_cadenza_measure_is_played_once(make_piece, tmp_path):
    _, aligned = align_stage(make_piece, tmp_path, "cadenza", CADENZA)
    assert occurrences(aligned.load_measures()) == [
        (0, 0, 1, 0.0, 4.0),
        (1, 0, 2, 4.0, 12.0),  # eight eighths of cadenza, then d1
        (2, 0, 3, 12.0, 16.0),
    ]


def test_da_capo_al_fine_plays_up_to_the_fine_again(make_piece, tmp_path):
    _, aligned = align_stage(make_piece, tmp_path, "dacapo", DA_CAPO)
    assert occurrences(aligned.load_measures()) == [
        (0, 0, 1, 0.0, 4.0),
        (1, 0, 2, 4.0, 8.0),
        (2, 0, 3, 8.0, 12.0),
        (3, 0, 4, 12.0, 16.0),
        (0, 1, 1, 16.0, 20.0),  # da capo
        (1, 1, 2, 20.0, 24.0),  # ... al Fine
    ]
    assert aligned.stats["jumps"] == "da capo al fine"


#: A Da Capo whose last bar ends with a rest: the replay starts as the last note
#: ends (where the jump realization puts it), not at the bar line.
DA_CAPO_AFTER_A_REST = r"""
\score { \relative c' { c1 | d1_\markup Fine \bar "||" e2 r2_\markup { D.C. al Fine }
  \bar "|." } \layout { } \midi { \tempo 4 = 60 } }
"""


def test_a_da_capo_after_a_rest_leaves_the_last_bar_when_its_note_ends(make_piece, tmp_path):
    _, aligned = align_stage(make_piece, tmp_path, "dacaporest", DA_CAPO_AFTER_A_REST)
    table = aligned.load_measures()
    assert occurrences(table) == [
        (0, 0, 1, 0.0, 4.0),
        (1, 0, 2, 4.0, 8.0),
        (2, 0, 3, 8.0, 10.0),  # e2, then straight back to the start
        (0, 1, 1, 10.0, 14.0),
        (1, 1, 2, 14.0, 18.0),
    ]
    assert table["printed_end_whole"][2] == 2.5
    assert aligned.stats["guessed_jumps"] == 0


def test_a_repeat_that_closes_inside_a_measure_splits_its_occurrences(make_piece, tmp_path):
    score, aligned = align_stage(make_piece, tmp_path, "pickuprepeat", PICKUP_REPEAT)
    measures = score.load_measures()
    assert measures["repeat_end"].tolist() == [False, False, True, False]  # ":|." after d2
    table = aligned.load_measures()
    assert occurrences(table) == [
        (0, 0, 0, 0.0, 1.0),
        (1, 0, 1, 1.0, 4.0),
        (2, 0, 2, 4.0, 6.0),  # d2, then back to the pickup
        (0, 1, 0, 6.0, 7.0),
        (1, 1, 1, 7.0, 10.0),
        (2, 1, 2, 10.0, 13.0),  # d2 e4
        (3, 0, 3, 13.0, 16.0),
    ]
    assert table["printed_start_whole"].tolist() == [0.0, 0.25, 1.0, 0.0, 0.25, 1.0, 1.75]
    assert table["printed_end_whole"].tolist() == [0.25, 1.0, 1.5, 0.25, 1.0, 1.75, 2.5]
    assert aligned.stats["guessed_jumps"] == 0


def test_percent_repeat_plays_its_printed_measures_in_order(make_piece, tmp_path):
    score, aligned = align_stage(make_piece, tmp_path, "percent", PERCENT)
    assert score.load_measures()["bar_number"].tolist() == [1, 2, 3]
    assert occurrences(aligned.load_measures()) == [
        (0, 0, 1, 0.0, 4.0),
        (1, 0, 2, 4.0, 8.0),  # the measure with the percent sign
        (2, 0, 3, 8.0, 12.0),
    ]
    assert aligned.stats["notes_outside_measures"] == 0


def test_a_note_outside_its_occurrence_is_counted(make_piece, tmp_path):
    score, aligned = align_stage(make_piece, tmp_path, "dacapo", DA_CAPO)
    noteheads, _ = score.load()
    measures = score.load_measures()
    performed = aligned.load()
    times = performed_measures(performed, noteheads, measures, [])
    assert check_note_measures(performed, noteheads, measures, times) == (0, "")
    late = performed.copy()
    late["onset_sec"][1] += 4.0  # d1 sounds in the time of bar 3
    outside, first = check_note_measures(late, noteheads, measures, times)
    assert outside == 1
    assert first == (
        "the note of notehead 1 at 8.000 s (written at 1) is outside its measure occurrence"
    )
