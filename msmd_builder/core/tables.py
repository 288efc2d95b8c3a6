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
    "MEASURE_DTYPE",
    "PERFORMED_MEASURE_DTYPE",
    "empty_performed_events",
]

#: A box in PDF points: ``x0, y0`` top-left, ``x1, y1`` bottom-right (noteheads,
#: systems and measures share it).
_BOX_PT = [
    ("x0_pt", np.float32),
    ("y0_pt", np.float32),
    ("x1_pt", np.float32),
    ("y1_pt", np.float32),
]
#: The same box in page-image pixels (NaN until the page is rendered).
_BOX_PX = [
    ("x0_px", np.float32),
    ("y0_px", np.float32),
    ("x1_px", np.float32),
    ("y1_px", np.float32),
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
        *_BOX_PT,
        ("pitch", np.int16),  # MIDI pitch of the written note
        ("onset_whole", np.float64),  # written (folded) moment, whole notes
        ("grace_whole", np.float64),  # grace offset before that moment (<= 0)
        ("duration_whole", np.float64),  # written duration (tuplets applied)
        ("tied", np.bool_),  # the right-hand end of a tie: it does not sound again
        ("grace", np.bool_),
        ("visible", np.bool_),
        ("source_line", np.int32),
        ("source_char", np.int32),  # 0-based character in the line, as in point-and-click links
        *_BOX_PX,
    ]
)


#: One row per system (line of music with all its staves).
SYSTEM_DTYPE = np.dtype(
    [
        ("system", np.int32),
        ("book", np.int16),
        ("page", np.int16),
        ("n_staves", np.int16),
        *_BOX_PT,
        *_BOX_PX,
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


#: One row per measure box, in printed order: a measure as LilyPond laid it out
#: on one system, from its opening bar line (or the system's start) to its
#: closing bar line (or the system's end), over all the system's staves.  A
#: measure broken by a line or page break has one row per system (``part``).
#:
#: ``measure_id``       row index, unique within the piece
#: ``measure``          index of the measure in the piece (its boxes share it),
#:                      in (book, score, onset) order
#: ``part``, ``n_parts``  which box of the measure this is, and how many it has
#: ``bar_number``       the bar number as LilyPond counts it (0 for a pickup)
#: ``n_measures``       measures the box stands for: > 1 for a compressed
#:                      multi-measure rest, else 1
#: ``onset_whole``      written (folded) onset, whole notes of its score
#: ``length_whole``     written length, whole notes
#: ``nominal_whole``    the time signature's measure length, whole notes
#: ``volta``            repeat ending (LilyPond's alternative number), 0 outside
#: ``pickup``           an anacrusis (starts after ``\partial``)
#: ``partial``          shorter than its time signature (not a pickup)
#: ``cadenza``          timing was off (``\cadenzaOn``) in the measure
#: ``multi_measure_rest``  a compressed multi-measure rest (``n_measures`` > 1)
#: ``repeat_start``     a start-repeat sign at its opening bar line or inside it
#: ``repeat_end``       an end-repeat sign at its closing bar line or inside it
MEASURE_DTYPE = np.dtype(
    [
        ("measure_id", np.int32),
        ("measure", np.int32),
        ("part", np.int16),
        ("n_parts", np.int16),
        ("score", np.int16),
        ("book", np.int16),
        ("page", np.int16),  # 0-based page within its PDF; -1 if not laid out
        ("system", np.int32),  # 0-based system within its PDF (joins systems.system)
        ("bar_number", np.int32),
        ("n_measures", np.int16),
        ("onset_whole", np.float64),
        ("length_whole", np.float64),
        ("nominal_whole", np.float64),
        ("volta", np.int16),
        ("pickup", np.bool_),
        ("partial", np.bool_),
        ("cadenza", np.bool_),
        ("multi_measure_rest", np.bool_),
        ("repeat_start", np.bool_),
        ("repeat_end", np.bool_),
        *_BOX_PT,
        *_BOX_PX,
    ]
)


#: One row per measure occurrence, in playing order: a measure as a
#: performance plays it, repeats and jumps unrolled ("measure 12, second time"
#: is one row).  In the align stage's table the times are score seconds; each
#: performance has its own table in performance seconds.
#:
#: ``measure``          the measure (joins ``MEASURE_DTYPE.measure``)
#: ``occurrence``       0 the first time it is played, 1 the second, ...
#: ``score``, ``bar_number``  copied from the measure
#: ``start_whole``, ``end_whole``  the span in unrolled musical time, whole notes
#:                      (the time of ``PERFORMED_EVENT_DTYPE.onset_whole``)
#: ``printed_start_whole``, ``printed_end_whole``  the part of the measure played,
#:                      in its written time: the whole measure, or less where a
#:                      repeat or jump leaves or enters it inside
#: ``start_sec``, ``end_sec``  the span in seconds
#: ``start_frame``, ``end_frame``  the spectrogram frames of the span,
#:                      ``[start_frame, end_frame)`` by MSMD's onset rule
#:                      (``units.sec_to_frame``)
PERFORMED_MEASURE_DTYPE = np.dtype(
    [
        ("measure", np.int32),
        ("occurrence", np.int16),
        ("score", np.int16),
        ("bar_number", np.int32),
        ("start_whole", np.float64),
        ("end_whole", np.float64),
        ("printed_start_whole", np.float64),
        ("printed_end_whole", np.float64),
        ("start_sec", np.float64),
        ("end_sec", np.float64),
        ("start_frame", np.int64),
        ("end_frame", np.int64),
    ]
)
