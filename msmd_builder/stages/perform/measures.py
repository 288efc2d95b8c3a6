"""A performance's measure occurrences, in its own seconds and frames.

The align stage's measure occurrences (:mod:`msmd_builder.stages.align.measures`)
are in score seconds.  A performance plays the same notes through its tempo
map (:func:`~msmd_builder.stages.perform.realize.tempo_map`: a tempo ratio, and
a smooth local tempo curve when humanized), the same monotone map that placed
its notes, so a measure's start and end in the performance are that map's
values at the score times.  Chord asynchrony and FluidSynth's 64-sample grid
move single notes by a few milliseconds at most and do not move bar lines.
An aligned recording's measures follow the alignment's map instead
(:func:`recording_measures`).
"""

from __future__ import annotations

import numpy as np

from msmd_builder.core.units import sec_to_frame
from msmd_builder.stages.perform.plans import PerformancePlan
from msmd_builder.stages.perform.realize import tempo_map

__all__ = ["performance_measures", "recording_measures"]


def performance_measures(
    score_measures: np.ndarray, plan: PerformancePlan, score_events: np.ndarray
) -> np.ndarray:
    """Map measure occurrences from score time to a performance's time.

    Parameters
    ----------
    score_measures : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_MEASURE_DTYPE` of the align
        stage (score seconds).
    plan : PerformancePlan
        The performance.
    score_events : np.ndarray
        The performed notes at score time the performance was rendered from
        (their last offset bounds the humanized tempo curve, as in the perform
        stage).

    Returns
    -------
    np.ndarray
        A copy with ``start_sec``/``end_sec`` in performance seconds and
        ``start_frame``/``end_frame`` recomputed (``units.sec_to_frame``).
    """
    out = np.array(score_measures, copy=True)
    if not len(out):
        return out
    end_sec = float(score_events["offset_sec"].max()) if len(score_events) else 0.0
    tmap = tempo_map(plan, end_sec=end_sec)
    out["start_sec"] = tmap(out["start_sec"])
    out["end_sec"] = tmap(out["end_sec"])
    out["start_frame"] = sec_to_frame(out["start_sec"])
    out["end_frame"] = sec_to_frame(out["end_sec"])
    return out


def recording_measures(
    score_measures: np.ndarray, score_events: np.ndarray, recording_events: np.ndarray
) -> np.ndarray:
    """Map measure occurrences from score time to an aligned recording's time.

    The align stage's measure occurrences follow its own playing order (every
    repeat taken, the written jumps taken).  A recording that played that
    order has one event per performed note, row for row (same ``event_id``
    and ``occurrence``); its measures are placed by the alignment's own map,
    interpolated monotonically between the notes' onsets (score seconds to
    recording seconds) and extended to the last note-off.  A recording that
    took another order (repeats skipped, a jump not taken) plays other
    measure occurrences, which are not derived: it gets none.

    Parameters
    ----------
    score_measures : np.ndarray
        :data:`~msmd_builder.core.tables.PERFORMED_MEASURE_DTYPE` of the align
        stage (score seconds).
    score_events : np.ndarray
        The align stage's performed notes (score seconds).
    recording_events : np.ndarray
        The recording's events (recording seconds).

    Returns
    -------
    np.ndarray
        A copy of ``score_measures`` in recording seconds and frames, or an
        empty table of that dtype.
    """
    same_order = len(recording_events) == len(score_events) and all(
        np.array_equal(recording_events[name], score_events[name])
        for name in ("event_id", "occurrence")
    )
    if not same_order or not len(score_events):
        return np.zeros(0, dtype=score_measures.dtype)
    score_sec = np.append(score_events["onset_sec"], score_events["offset_sec"].max())
    recording_sec = np.append(recording_events["onset_sec"], recording_events["offset_sec"].max())
    order = np.argsort(score_sec, kind="stable")
    xs, first = np.unique(score_sec[order], return_index=True)
    ys = np.maximum.accumulate(recording_sec[order][first])
    out = np.array(score_measures, copy=True)
    out["start_sec"] = np.interp(out["start_sec"], xs, ys)
    out["end_sec"] = np.interp(out["end_sec"], xs, ys)
    out["start_frame"] = sec_to_frame(out["start_sec"])
    out["end_frame"] = sec_to_frame(out["end_sec"])
    return out
