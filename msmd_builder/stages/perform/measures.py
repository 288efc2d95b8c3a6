"""A performance's measure occurrences, in its own seconds and frames.

The align stage's measure occurrences (:mod:`msmd_builder.stages.align.measures`)
are in score seconds.  A performance plays the same notes through its tempo
map (:func:`~msmd_builder.stages.perform.realize.tempo_map`: a tempo ratio, and
a smooth local tempo curve when humanized), the same monotone map that placed
its notes, so a measure's start and end in the performance are that map's
values at the score times.  Chord asynchrony and FluidSynth's 64-sample grid
move single notes by a few milliseconds at most and do not move bar lines.
"""

from __future__ import annotations

import numpy as np

from msmd_builder.core.units import sec_to_frame
from msmd_builder.stages.perform.plans import PerformancePlan
from msmd_builder.stages.perform.realize import tempo_map

__all__ = ["performance_measures"]


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
