"""Structured-array layouts shared between stages.

Large per-note tables travel between stages as numpy structured arrays (as in
partitura), with unit-named fields. The producing stage fills them; later
stages and the shards store them unchanged, so their field names are part of
the dataset format (see ``docs/format.md``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PERFORMED_EVENT_DTYPE", "empty_performed_events"]

#: One row per note that sounds, in playing order (repeats unrolled).
#:
#: ``event_id``      unique id of the source note event (shared by all repetitions)
#: ``notehead_id``   id of the notehead the note belongs to, -1 if none (e.g. hidden)
#: ``occurrence``    0 for the first time the event is played, 1 for the second, ...
#: ``pitch``         MIDI pitch
#: ``velocity``      MIDI velocity, 1..127
#: ``onset_whole``   onset in unrolled musical time, whole notes
#: ``duration_whole``  sounding duration (ties merged), whole notes
#: ``onset_sec``     onset in seconds
#: ``offset_sec``    offset (note-off) in seconds
#: ``staff``         0-based staff index within the system, top to bottom
PERFORMED_EVENT_DTYPE = np.dtype(
    [
        ("event_id", np.int32),
        ("notehead_id", np.int32),
        ("occurrence", np.int16),
        ("pitch", np.int16),
        ("velocity", np.int16),
        ("onset_whole", np.float64),
        ("duration_whole", np.float64),
        ("onset_sec", np.float64),
        ("offset_sec", np.float64),
        ("staff", np.int16),
    ]
)


def empty_performed_events(n: int = 0) -> np.ndarray:
    """Return a zero-filled performed-events table with ``n`` rows."""
    return np.zeros(n, dtype=PERFORMED_EVENT_DTYPE)
