"""Structured-array layouts shared between stages.

Large per-note tables travel between stages as numpy structured arrays (as in
partitura), with unit-named fields. The producing stage fills them; later
stages and the shards store them unchanged, so their field names are part of
the dataset format (see ``docs/format.md``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NOTEHEAD_DTYPE",
    "SYSTEM_DTYPE",
    "PERFORMED_EVENT_DTYPE",
    "PEDAL_EVENT_DTYPE",
    "empty_performed_events",
]

#: One row per notehead printed (or hidden) in the score, in engraving order.
NOTEHEAD_DTYPE = np.dtype(
    [
        ("notehead_id", np.int32),  # row index, unique within the piece
        ("event_id", np.int32),  # msmd-id of the note event that printed it
        ("score", np.int16),  # index of the \score (layout) within the file
        ("book", np.int16),  # index of the PDF (one per \book)
        ("page", np.int16),  # 0-based page within that PDF; -1 if not laid out
        ("system", np.int32),  # 0-based system within that PDF, reading order
        ("staff", np.int16),  # 0-based staff within the system, top to bottom
        ("x0_pt", np.float32),
        ("y0_pt", np.float32),
        ("x1_pt", np.float32),
        ("y1_pt", np.float32),
        ("pitch", np.int16),  # MIDI pitch of the written note
        ("onset_whole", np.float64),  # written (folded) moment, whole notes
        ("grace_whole", np.float64),  # grace offset before that moment (<= 0)
        ("duration_whole", np.float64),  # written duration (tuplets applied)
        ("tied", np.bool_),  # the right-hand end of a tie: it does not sound again
        ("grace", np.bool_),
        ("visible", np.bool_),
        ("source_line", np.int32),
        ("source_char", np.int32),  # 0-based character in the line, as in point-and-click links
        ("x0_px", np.float32),  # the same box in page-image pixels (NaN until rendered)
        ("y0_px", np.float32),
        ("x1_px", np.float32),
        ("y1_px", np.float32),
    ]
)


#: One row per system (line of music with all its staves).
SYSTEM_DTYPE = np.dtype(
    [
        ("system", np.int32),
        ("book", np.int16),
        ("page", np.int16),
        ("n_staves", np.int16),
        ("x0_pt", np.float32),
        ("y0_pt", np.float32),
        ("x1_pt", np.float32),
        ("y1_pt", np.float32),
        ("x0_px", np.float32),  # the same box in page-image pixels (NaN until rendered)
        ("y0_px", np.float32),
        ("x1_px", np.float32),
        ("y1_px", np.float32),
    ]
)

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


#: Sustain-pedal events (MIDI CC64) in performance time.
#:
#: ``time_sec``  when the pedal moves, in seconds
#: ``value``     CC64 value: 127 = down (sustain), 0 = up
PEDAL_EVENT_DTYPE = np.dtype([("time_sec", np.float64), ("value", np.int16)])
