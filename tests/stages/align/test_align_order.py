"""Reading-order check: performed notes walk the systems forwards except at jumps."""

from __future__ import annotations

import dataclasses
from fractions import Fraction as F

import numpy as np
import pytest

from msmd_builder.core.cache import save_npz
from msmd_builder.core.errors import VoiceOrderError
from msmd_builder.core.tables import NOTEHEAD_DTYPE, empty_performed_events
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.align.order import VoiceOrder, reading_order, voice_order
from msmd_builder.stages.align.stage import AlignSettings
from msmd_builder.stages.align.stage import run as align_stage
from msmd_builder.stages.score import GEOMETRY_FORMAT, GEOMETRY_VERSION, ScoreSettings
from msmd_builder.stages.score import run as score_stage
from tests.stages.align.test_align import align, render


def _heads(printed, systems):
    heads = np.zeros(len(printed), dtype=NOTEHEAD_DTYPE)
    heads["notehead_id"] = np.arange(len(printed))
    heads["onset_whole"] = printed
    heads["system"] = systems
    heads["page"] = np.asarray(systems) // 2
    return heads


def _played(heads_played, onsets, occurrences):
    table = empty_performed_events(len(onsets))
    table["notehead_id"] = heads_played
    table["event_id"] = heads_played
    table["onset_whole"] = onsets
    table["onset_sec"] = np.asarray(onsets) * 2.0
    table["occurrence"] = occurrences
    return table


def test_repeat_back_to_an_earlier_system_is_a_jump_not_a_violation():
    # Printed: four notes on systems 0, 0, 1, 1, all repeated once.
    heads = _heads([0, 1, 2, 3], [0, 0, 1, 1])
    played = _played([0, 1, 2, 3, 0, 1, 2, 3], range(8), [0, 0, 0, 0, 1, 1, 1, 1])
    walk = reading_order(played, heads)
    assert (walk.back_jumps, walk.violations) == (1, 0)


def test_going_back_to_a_note_never_played_is_a_violation():
    # A note printed on system 0 but first played after system 1: no repeat explains it.
    heads = _heads([0, 1, 2, 3], [0, 0, 1, 0])
    played = _played([0, 1, 2, 3], range(4), [0, 0, 0, 0])
    walk = reading_order(played, heads)
    assert (walk.back_jumps, walk.violations) == (0, 1)
    assert "notehead 3 (book 1 page 1 system 1, playing 1)" in walk.first_violation
    assert walk.first_violation.endswith("after book 1 page 1 system 2")


def test_a_replay_that_does_not_go_back_in_printed_time_is_a_violation():
    # Notehead 3 is printed after notehead 2 yet on an earlier system: even as
    # a replay, that is a geometry error, not a jump.
    heads = _heads([0, 1, 2, 3], [0, 0, 1, 0])
    played = _played([0, 1, 2, 3, 0, 1, 2, 3], range(8), [0, 0, 0, 1, 1, 1, 1, 2])
    walk = reading_order(played, heads)
    assert walk.violations == 2  # notehead 3 both times it is played after system 1


def test_voices_may_jump_back_at_different_times():
    # The upper voice (heads 0, 1) repeats its bar; the lower voice (heads 2-5)
    # is written out and runs on to system 1.  The replayed upper notes are
    # behind the furthest system reached, and allowed, being replays; a first
    # playing there (a voice out of step with the print) is not.
    heads = _heads([0, 1 / 2, 0, 1 / 2, 1, 3 / 2], [0, 0, 0, 0, 1, 1])
    played = _played(
        [0, 2, 1, 3, 0, 4, 1, 5],
        [0, 0, 1 / 2, 1 / 2, 1, 1, 3 / 2, 3 / 2],
        [0, 0, 0, 0, 1, 0, 1, 0],
    )
    walk = reading_order(played, heads)
    assert (walk.back_jumps, walk.violations) == (1, 0)
    played["occurrence"][6] = 0  # the same note as a first playing is not explained
    assert reading_order(played, heads).violations == 1


VOLTA_OVER_A_BREAK = (
    r"\score { { \repeat volta 2 { c'4 d' e' f' | \break g'1 }"
    r" \alternative { { a'1 } { b'1 } } | \break c''1 }"
    r" \layout { } \midi { \tempo 4 = 60 } }"
)


def test_volta_over_a_system_break_jumps_back_once(make_piece, tmp_path):
    result = render(make_piece, tmp_path, "voltabreak", VOLTA_OVER_A_BREAK)
    heads, performed, stats = align(result)
    assert heads["system"].tolist() == [0, 0, 0, 0, 1, 1, 1, 2]
    # Played: c d e f g a | c d e f g b c'': back from system 1 to 0 once.
    expected = [0, 0, 0, 0, 1, 1] + [0, 0, 0, 0, 1, 1, 2]
    assert heads["system"][performed["notehead_id"]].tolist() == expected
    assert stats["reading_order_back_jumps"] == 1
    assert stats["reading_order_violations"] == 0


def test_systems_out_of_reading_order_fail_the_piece(make_piece, tmp_path):
    from msmd_builder.core.errors import VerificationError

    result = render(make_piece, tmp_path, "voltabreak", VOLTA_OVER_A_BREAK)
    piece_dir = PieceDir.of(tmp_path, result.piece_id)
    score = score_stage(result, ScoreSettings(), piece_dir)
    assert align_stage(score, AlignSettings(), piece_dir).stats["reading_order_violations"] == 0
    # Geometry whose first two systems are numbered the wrong way round.
    noteheads, systems = score.load()
    noteheads["system"] = np.array([1, 0, 2])[noteheads["system"]]
    corrupted = tmp_path / "corrupted"
    corrupted.mkdir()
    save_npz(
        corrupted / "geometry.npz",
        format_name=GEOMETRY_FORMAT,
        format_version=GEOMETRY_VERSION,
        noteheads=noteheads,
        systems=systems,
        measures=score.load_measures(),
    )
    bad = dataclasses.replace(score, score_dir=str(corrupted), cache_key="corrupted")
    with pytest.raises(VerificationError, match="earlier system outside a repeat"):
        align_stage(bad, AlignSettings(), piece_dir)


def _written_heads(onsets, graces=None):
    heads = _heads(onsets, [0] * len(onsets))
    heads["grace_whole"] = 0.0 if graces is None else graces
    heads["source_line"] = 3
    heads["source_char"] = np.arange(len(onsets)) * 5
    return heads


def test_same_pitch_graces_linked_the_wrong_way_round_break_voice_order():
    # d'16 d'16 graces before e'4 at 1/4, linked in reverse: the second d'
    # written sounds first.
    heads = _written_heads([0, 1 / 4, 1 / 4, 1 / 4], [0, -1 / 8, -1 / 16, 0])
    played = _played([0, 2, 1, 3], [0, 0.2, 0.22, 0.25], [0, 0, 0, 0])
    walk = voice_order(played, np.zeros(4, dtype=int), heads)
    assert (walk.checked, walk.violations) == (4, 1)
    assert walk.first_violation == (
        "notehead 1 (line 3:5, moment 0.25-0.125) sounds at 0.440 s, right after notehead 2 "
        "(line 3:10, moment 0.25-0.0625), written later in the same voice (both playing 1)"
    )
    in_order = _played([0, 1, 2, 3], [0, 0.2, 0.22, 0.25], [0, 0, 0, 0])
    assert voice_order(in_order, np.zeros(4, dtype=int), heads).violations == 0


def test_voice_order_allows_repeats_and_other_voices_and_skips_unknown_voices():
    # Nested volta repeats: A B B C A B B C (heads 0 1 2 at 0, 1/4, 1/2); the
    # second A follows the second B, with a different occurrence than the C before it.
    heads = _written_heads([0, 1 / 4, 1 / 2, 0, 1 / 4])
    nested = _played([0, 1, 1, 2, 0, 1, 1, 2], np.arange(8) / 4, [0, 0, 1, 0, 1, 2, 3, 1])
    assert voice_order(nested, np.zeros(8, dtype=int), heads) == VoiceOrder(8, 0)
    # Two voices, the second running a little late in the MIDI (as a track can
    # after a grace cadenza): its 1/4 sounds after the first voice's 9/32.
    heads = _written_heads([0, 9 / 32, 0, 1 / 4])
    late = _played([0, 2, 1, 3], [0, 0.01, 9 / 32, 0.29], [0, 0, 0, 0])
    assert voice_order(late, np.array([0, 1, 0, 1]), heads) == VoiceOrder(4, 0)
    # Taken for one voice, the same notes go back from 9/32 to 1/4.
    assert voice_order(late, np.zeros(4, dtype=int), heads).violations == 1
    # Notes whose voice is unknown (unmatched events) are not checked.
    assert voice_order(late, np.array([0, -1, 0, -1]), heads) == VoiceOrder(2, 0)


def test_each_voice_context_of_the_midi_score_is_logged_with_its_own_number(make_piece, tmp_path):
    from pathlib import Path

    from msmd_builder.lilypond.logs import read_performed_log

    result = render(
        make_piece,
        tmp_path,
        "twovoices",
        r"\score { \new PianoStaff << \new Staff << { \voiceOne e''4 d'' } \\ { c''2 } >>"
        r" \new Staff { \clef bass c4 d } >> \layout { } \midi { } }",
    )
    log = read_performed_log(next(Path(result.render_dir).glob("*.msmd-performed.tsv")))
    voices = {(e.pitch, e.moment_main): e.voice for e in log}
    upper, lower, bass = voices[(76, 0)], voices[(72, 0)], voices[(48, 0)]
    assert len({upper, lower, bass}) == 3
    assert voices[(74, F(1, 4))] == upper and voices[(50, F(1, 4))] == bass
    assert min(voices.values()) == 0 and max(voices.values()) <= 3


def test_a_voice_played_out_of_written_order_fails_the_piece(make_piece, tmp_path):
    import shutil

    result = render(
        make_piece,
        tmp_path,
        "graceswap",
        r"\score { { c'4 \grace { d'16 d'16 } e'4 } \layout { } \midi { \tempo 4 = 60 } }",
    )
    piece_dir = PieceDir.of(tmp_path, result.piece_id)
    score = score_stage(result, ScoreSettings(), piece_dir)
    stats = align_stage(score, AlignSettings(), piece_dir).stats
    assert (stats["voice_order_checked"], stats["voice_order_violations"]) == (4, 0)
    # A log that gives the two d' graces each other's moments: the matcher then
    # links the first d' played to the second written, as it once did.
    corrupted = tmp_path / "corrupted"
    shutil.copytree(result.render_dir, corrupted)
    log = next(corrupted.glob("*.msmd-performed.tsv"))
    text = log.read_text(encoding="utf-8")
    assert text.count("\t-1/8\t62\t") == 1 and text.count("\t-1/16\t62\t") == 1
    text = text.replace("\t-1/8\t62\t", "\tX\t62\t").replace("\t-1/16\t62\t", "\t-1/8\t62\t")
    log.write_text(text.replace("\tX\t62\t", "\t-1/16\t62\t"), encoding="utf-8")
    render_record = dataclasses.replace(result, render_dir=str(corrupted), cache_key="corrupted")
    bad = dataclasses.replace(score, render=render_record, cache_key="corrupted")
    with pytest.raises(VoiceOrderError, match=r"1 performed notes follow a note written later"):
        align_stage(bad, AlignSettings(), piece_dir)
