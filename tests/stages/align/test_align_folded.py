"""``repeats="folded"``: MSMD's printed-order MIDI, each notehead played once."""

from __future__ import annotations

import numpy as np
import pytest

from msmd_builder.core.errors import ConfigError
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.align import stage as align_stage
from msmd_builder.stages.score import ScoreSettings
from msmd_builder.stages.score import run as score_stage
from tests.stages.align.test_align import align, render

# A volta repeat with two endings, a tremolo, a percent repeat and a D.C. al Fine.
REPEATS = (
    r"\score { { \repeat volta 2 { c'4 d' } \alternative { { e'2 } { f'2 } }"
    r" \repeat tremolo 4 g'16 a'4_\markup Fine | \break \repeat percent 2 { b'4 c''4 }"
    r" \break d''1_\markup { D.C. al Fine } }"
    r" \layout { } \midi { \tempo 4 = 60 } }"
)


def test_folded_plays_every_notehead_once_in_printed_order(make_piece, tmp_path):
    result = render(make_piece, tmp_path, "folded", REPEATS, repeats="folded")
    assert result.repeats == "folded"
    heads, performed, stats = align(result)
    printed = np.lexsort((heads["pitch"], heads["onset_whole"]))
    # c d | e (first ending) f (second ending) | g (tremolo, once) a | b c'' (once) | d''
    assert performed["notehead_id"].tolist() == printed.tolist() == list(range(9))
    assert performed["pitch"].tolist() == [60, 62, 64, 65, 67, 69, 71, 72, 74]
    assert performed["occurrence"].tolist() == [0] * 9
    # Time is printed time: a quarter per second, the tremolo one quarter note,
    # and the percent repeat's bar left silent.
    np.testing.assert_allclose(performed["onset_whole"], heads["onset_whole"][printed])
    np.testing.assert_allclose(performed["onset_sec"], 4 * heads["onset_whole"][printed])
    np.testing.assert_allclose(performed["duration_whole"][4], 0.25)
    # Neither the Da Capo is realized nor does anything go back a system.
    assert "realized_jumps" not in stats
    assert stats["reading_order_back_jumps"] == 0
    assert stats["matched_midi_notes"] == stats["midi_notes"] == 9


def test_unfolded_plays_the_same_piece_as_performed(make_piece, tmp_path):
    result = render(make_piece, tmp_path, "unfolded", REPEATS)
    assert result.repeats == "unfolded"
    _, performed, stats = align(result)
    # c d e, c d f, g x4, a, b c'' b c'', d'', then D.C. (no repeats) to the Fine.
    first = [60, 62, 64, 60, 62, 65, 67, 67, 67, 67, 69, 71, 72, 71, 72, 74]
    assert performed["pitch"].tolist() == first + [60, 62, 65, 67, 67, 67, 67, 69]
    assert stats["realized_jumps"] == 1
    # Repeats within a system do not go back a system; the Da Capo does.
    assert stats["reading_order_back_jumps"] == 1


def test_repeats_setting_is_checked(make_piece, tmp_path):
    with pytest.raises(ConfigError, match="repeats must be one of"):
        render(make_piece, tmp_path, "badmode", REPEATS, repeats="sideways")
    result = render(make_piece, tmp_path, "folded", REPEATS, repeats="folded")
    # The align stage plays what the rendering was made with; there is no second setting.
    piece_dir = PieceDir.of(tmp_path, result.piece_id)
    score = score_stage(result, ScoreSettings(), piece_dir)
    aligned = align_stage.run(score, align_stage.AlignSettings(), piece_dir)
    assert aligned.repeats == "folded" and aligned.stats["performed_notes"] == 9
