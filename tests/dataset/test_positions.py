"""Frame-level score positions and system passages on a synthetic piece known exactly.

One page, two systems of two measures each.  The performance plays the four
measures at one second each, then goes back to the first system (a repeat)
and plays its two measures again, the last one 1.5 s long: six measure
occurrences, one note at the start of each.
"""

from __future__ import annotations

import numpy as np
import pytest

from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PerformanceRecord, PieceRecord
from msmd_builder.core.tables import (
    MEASURE_DTYPE,
    NOTEHEAD_DTYPE,
    PERFORMED_MEASURE_DTYPE,
    SYSTEM_DTYPE,
    empty_performed_events,
)
from msmd_builder.dataset.passages import (
    LCASR_2023,
    PassagePool,
    passage_snippets,
    system_passages,
)
from msmd_builder.dataset.positions import frame_positions, iter_frame_positions, onset_positions

N_FRAMES = 130
#: (system, measure, x0, x1) of the measure boxes; systems span x 10..210.
BOXES = [(0, 0, 10, 110), (0, 1, 110, 210), (1, 2, 10, 110), (1, 3, 110, 210)]
#: Each measure's note: centre x 22 at its start or 122 in the middle of the system.
HEAD_X = [22, 122, 22, 122]
#: Playing order: (notehead, onset second); measure occurrences follow it.
PLAYED = [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0), (0, 4.0), (1, 5.0)]
OCCURRENCES = [(0, 0, 0.0, 1.0), (1, 0, 1.0, 2.0), (2, 0, 2.0, 3.0), (3, 0, 3.0, 4.0)]
OCCURRENCES += [(0, 1, 4.0, 5.0), (1, 1, 5.0, 6.5)]


def synthetic_piece() -> PieceRecord:
    page = np.full((100, 400), 255, dtype=np.uint8)
    systems = np.zeros(2, dtype=SYSTEM_DTYPE)
    for i, (y0, y1) in enumerate([(20, 40), (60, 80)]):
        systems[i] = (i, 0, 0, 1, 0, 0, 0, 0, 10, y0, 210, y1)
    measures = np.zeros(4, dtype=MEASURE_DTYPE)
    system_of = np.array([b[0] for b in BOXES])
    measures["measure_id"] = measures["measure"] = [b[1] for b in BOXES]
    measures["system"] = system_of
    measures["bar_number"] = measures["measure"] + 1
    measures["n_parts"] = 1
    measures["x0_px"], measures["x1_px"] = [b[2] for b in BOXES], [b[3] for b in BOXES]
    measures["y0_px"], measures["y1_px"] = systems["y0_px"][system_of], systems["y1_px"][system_of]
    heads = np.zeros(4, dtype=NOTEHEAD_DTYPE)
    heads["notehead_id"] = np.arange(4)
    heads["system"] = system_of
    heads["visible"] = True
    heads["x0_px"], heads["x1_px"] = np.array(HEAD_X) - 2, np.array(HEAD_X) + 2
    y = np.where(system_of == 0, 30, 70)
    heads["y0_px"], heads["y1_px"] = y - 2, y + 2
    for x, yc in zip(HEAD_X, y, strict=True):
        page[yc - 2 : yc + 2, x - 2 : x + 2] = 0
    events = empty_performed_events(len(PLAYED))
    events["notehead_id"] = [h for h, _ in PLAYED]
    events["event_id"] = events["notehead_id"]
    events["onset_sec"] = [t for _, t in PLAYED]
    events["offset_sec"] = events["onset_sec"] + 0.5
    played = np.zeros(len(OCCURRENCES), dtype=PERFORMED_MEASURE_DTYPE)
    played["measure"] = [o[0] for o in OCCURRENCES]
    played["occurrence"] = [o[1] for o in OCCURRENCES]
    played["start_sec"] = [o[2] for o in OCCURRENCES]
    played["end_sec"] = [o[3] for o in OCCURRENCES]
    played["start_frame"] = np.ceil(played["start_sec"] * 20)
    played["end_frame"] = np.ceil(played["end_sec"] * 20)
    spectrogram = np.tile(np.arange(N_FRAMES, dtype=np.float32), (92, 1))
    performance = PerformanceRecord(
        performance_id="Synthetic__Op1__piece__tempo-1000__sf",
        plan={"tempo_ratio": 1.0, "soundfont": "sf"},
        spectrogram=spectrogram,
        events=events,
        onset_frame=np.ceil(events["onset_sec"] * 20).astype(np.int64),
        duration_sec=N_FRAMES / 20,
        measures=played,
    )
    return PieceRecord(
        piece_id="Synthetic__Op1__piece",
        metadata={},
        page_keys=np.array([[0, 0]], dtype=np.int16),
        pages=[page],
        systems=systems,
        noteheads=heads,
        performed=events,
        performances=[performance],
        measures=measures,
        performed_measures=played,
    )


def test_onset_positions_are_the_noteheads_of_each_onset_frame():
    piece = synthetic_piece()
    onsets = onset_positions(piece, piece.performances[0])
    assert onsets["frame"].tolist() == [0, 20, 40, 60, 80, 100]
    assert onsets["x_px"].tolist() == [22, 122, 22, 122, 22, 122]
    assert onsets["y_px"].tolist() == [30, 30, 70, 70, 30, 30]
    assert onsets["system"].tolist() == [0, 0, 1, 1, 0, 0]
    assert onsets["measure_id"].tolist() == [0, 1, 2, 3, 0, 1]


def test_previous_mode_holds_the_last_onset_and_flags_the_ends():
    piece = synthetic_piece()
    positions = frame_positions(piece, piece.performances[0], mode="previous")
    assert len(positions) == N_FRAMES
    expected_x = np.repeat([22, 122, 22, 122, 22, 122], [20, 20, 20, 20, 20, 30])
    np.testing.assert_array_equal(positions["x_px"], expected_x)
    assert positions["onset"].tolist() == np.repeat(np.arange(6), [20] * 5 + [30]).tolist()
    assert positions["after_last"].sum() == 29 and not positions["before_first"].any()
    # The measure playing comes from the measure occurrences, exactly.
    lengths = [20] * 5 + [30]
    assert positions["measure"].tolist() == np.repeat([0, 1, 2, 3, 0, 1], lengths).tolist()
    assert positions["occurrence"].tolist() == np.repeat([0, 0, 0, 0, 1, 1], lengths).tolist()


def test_frames_before_the_first_onset_take_its_position():
    piece = synthetic_piece()
    later = piece.performances[0].onset_frame + 5
    positions = frame_positions(piece, piece.performances[0], onset_frame=later)
    assert positions["before_first"].tolist()[:6] == [True] * 5 + [False]
    assert positions["x_px"][:5].tolist() == [22] * 5
    assert positions["onset"][:5].tolist() == [-1] * 5


def test_interpolated_mode_moves_along_the_unrolled_systems():
    piece = synthetic_piece()
    positions = frame_positions(piece, piece.performances[0], mode="interpolated")
    # 100 px of strip per 20 frames from the first note to the second: 5 px a frame.
    assert positions["x_px"][:21].tolist() == [22 + 5 * f for f in range(21)]
    assert positions["measure_id"][:21].tolist() == [0] * 18 + [1, 1, 1]
    # From the second note (strip 112) to the third (strip 212) the line break is crossed.
    assert positions["x_px"][37:40].tolist() == [207, 12, 17]
    assert positions["system"][37:40].tolist() == [0, 1, 1]
    assert positions["y_px"][37:40].tolist() == [30, 70, 70]
    # The fourth note is followed by one behind it in the strip (the repeat): held.
    assert positions["x_px"][60:80].tolist() == [122] * 20
    with pytest.raises(ConfigError, match="mode must be one of"):
        frame_positions(piece, piece.performances[0], mode="linear")


def test_iterator_walks_every_performance():
    piece = synthetic_piece()
    (item,) = list(iter_frame_positions([piece]))
    assert item[0] is piece and item[1] is piece.performances[0] and len(item[2]) == N_FRAMES


def test_system_passages_follow_the_repeat():
    piece = synthetic_piece()
    passages = system_passages(piece, piece.performances[0])
    summary = [
        (p.system, p.occurrence, p.start_sec, p.end_sec, p.start_frame, p.end_frame)
        for p in passages
    ]
    assert summary == [
        (0, 0, 0.0, 2.0, 0, 40),
        (1, 0, 2.0, 4.0, 40, 80),
        (0, 1, 4.0, 6.5, 80, 130),
    ]
    assert [(p.strip_x0_px, p.strip_x1_px) for p in passages] == [(0, 200), (200, 400), (0, 200)]
    assert passages[1].box_px == (10.0, 60.0, 210.0, 80.0)
    assert [(p.first_measure, p.last_measure) for p in passages] == [(0, 1), (2, 3), (4, 5)]

    pool = PassagePool([piece])
    assert len(pool) == 3
    sheet, excerpt = pool.get(2)
    assert sheet.shape == (200, 200) and excerpt.shape == (92, 50)
    assert excerpt[0].tolist() == list(range(80, 130))
    # The notes of the first system are in its strip: ink rows 98..101 around the centre.
    assert sheet[98:102, 10:14].min() == 1.0 and sheet[98:102, 110:114].min() == 1.0

    sheets, audio = passage_snippets(sheet, excerpt, LCASR_2023)
    assert sheets.shape == (2, 80, 90)  # starts 0 and 81 over 20 + 100 columns
    assert audio.shape == (3, 92, 20)  # starts 0, 18, 36 over 50 frames
    assert audio[1, 0].tolist() == list(range(98, 118))
