"""Playing orders: repeats taken or skipped and written jumps taken or not, on rendered pieces."""

from __future__ import annotations

import numpy as np
import pytest

from msmd_builder.core.cache import read_json
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.align.jumps import drop_passes, repeat_passes
from msmd_builder.stages.align.playing_orders import orders_of_rendering
from msmd_builder.stages.align.stage import AlignResult
from msmd_builder.stages.score import ScoreResult
from tests.conftest import EXAMPLES_ROOT
from tests.helpers.build import run_piece_stages
from tests.stages.align.test_align import _table


def test_repeat_passes_are_the_spans_a_skipped_repeat_drops():
    # Body (e0 e1), first ending (e2), body again, second ending (e3), then e4 twice
    # as a repeated one-note passage; quarter notes, half a second each.
    table = _table([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    table["event_id"] = [0, 1, 2, 0, 1, 3, 4, 4]
    passes = repeat_passes(table)
    assert passes == [(0.0, 0.75), (1.5, 1.75)]
    first_only = drop_passes(table, passes[1:])
    assert first_only["event_id"].tolist() == [0, 1, 2, 0, 1, 3, 4]
    neither = drop_passes(table, passes)
    assert neither["event_id"].tolist() == [0, 1, 3, 4]
    np.testing.assert_allclose(neither["onset_whole"], [0, 0.25, 0.5, 0.75])


def orders(work, piece_id):
    run_piece_stages(EXAMPLES_ROOT, piece_id, work, "align")
    piece_dir = PieceDir.of(work, piece_id)
    score = ScoreResult.from_dict(read_json(piece_dir.score_record))
    noteheads, _ = score.load()
    built = AlignResult.from_dict(read_json(piece_dir.align_record)).load()
    found = orders_of_rendering(
        noteheads, piece_dir.render, list(score.render.midi_files), rendered=score.render.repeats
    )
    return found, built


@pytest.mark.slow
def test_orders_of_a_piece_with_two_repeats(tmp_path):
    found, built = orders(tmp_path, "ExampleA__O1__volta-minuet")
    assert [(o.name, len(o.events)) for o in found] == [
        ("all repeats", 163),
        ("no repeats", 81),
        ("repeats 1 of 2", 123),
        ("repeats 2 of 2", 121),
    ]
    # The first order is the align stage's table, row for row.
    assert np.array_equal(found[0].events, built)
    # Skipping plays each passage once (first endings dropped), keeps each note's
    # event and notehead, and leaves the music contiguous.
    none = found[1].events
    assert set(none["event_id"].tolist()) < set(built["event_id"].tolist())
    assert len(set(none["event_id"].tolist())) == len(none)
    pairs = set(zip(built["event_id"].tolist(), built["notehead_id"].tolist(), strict=True))
    assert set(zip(none["event_id"].tolist(), none["notehead_id"].tolist(), strict=True)) <= pairs
    gaps = np.diff(np.unique(none["onset_sec"]))
    assert gaps.max() <= np.diff(np.unique(built["onset_sec"])).max() + 1e-9


@pytest.mark.slow
def test_orders_of_a_da_capo_piece(tmp_path):
    found, built = orders(tmp_path, "ExampleB__O15__da-capo-waltz")
    assert [(o.name, len(o.events)) for o in found] == [
        ("all repeats", 216),
        ("all repeats, da capo al fine not taken", 145),
    ]
    assert np.array_equal(found[0].events, built)
    assert found[1].jumps == ("da capo al fine",) and not found[1].jumps_taken
