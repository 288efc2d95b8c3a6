"""A recording's measure occurrences: placed by its alignment, or none for another order."""

from __future__ import annotations

import numpy as np

from msmd_builder.core.tables import PERFORMED_EVENT_DTYPE, PERFORMED_MEASURE_DTYPE
from msmd_builder.stages.perform.measures import recording_measures


def _events(onsets, occurrence=None):
    events = np.zeros(len(onsets), dtype=PERFORMED_EVENT_DTYPE)
    events["event_id"] = np.arange(len(onsets)) % 2
    events["occurrence"] = np.arange(len(onsets)) // 2 if occurrence is None else occurrence
    events["onset_sec"] = onsets
    events["offset_sec"] = np.asarray(onsets, dtype=float) + 0.5
    return events


def _measures(starts, ends):
    measures = np.zeros(len(starts), dtype=PERFORMED_MEASURE_DTYPE)
    measures["start_sec"] = starts
    measures["end_sec"] = ends
    return measures


def test_measures_follow_the_alignment_between_the_notes():
    score = _events([0.0, 1.0, 2.0, 3.0])
    recorded = _events([10.0, 12.0, 13.0, 17.0])  # slower, then faster, then slower
    placed = recording_measures(_measures([0.0, 1.5, 3.0], [1.5, 3.0, 3.5]), score, recorded)
    np.testing.assert_allclose(placed["start_sec"], [10.0, 12.5, 17.0])
    # The last measure ends with the last note-off, mapped likewise.
    np.testing.assert_allclose(placed["end_sec"], [12.5, 17.0, 17.5])
    assert placed["start_frame"].tolist() == [200, 250, 340]


def test_a_recording_of_another_order_gets_no_measures():
    score = _events([0.0, 1.0, 2.0, 3.0])
    measures = _measures([0.0, 2.0], [2.0, 3.5])
    fewer = recording_measures(measures, score, _events([10.0, 12.0]))
    assert fewer.dtype == PERFORMED_MEASURE_DTYPE and len(fewer) == 0
    other = recording_measures(measures, score, _events([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 2]))
    assert len(other) == 0
