"""Stage 5: link every performed note to the notehead that printed it.

Inputs, all written by one LilyPond run (see ``lilypond_patches/``):

* the noteheads table (layout side), each row carrying the ``event_id`` of the
  note event that caused it;
* the performed log (MIDI side): every note event the unfolded (or, with
  ``repeats="timeline"``, printed-timeline, or with ``repeats="folded"``,
  printed-order) MIDI score played, with its ``event_id`` and musical moment,
  in playing order;
* the marks log: texts and signs where jumps (D.C., D.S., Fine, Coda) are written;
* the repeats table: every volta repeat of each score as printed;
* LilyPond's MIDI file, for the note-ons and note-offs in ticks, velocities
  and the tempo map that turns ticks into seconds.

Event ids make the notehead side exact.  The only step that is matched rather
than read is MIDI note -> logged event, because a MIDI file carries no ids:
notes are paired per pitch, in time order, with the logged events that start
a sound (tie continuations do not), each at the MIDI tick LilyPond gives its
moment (grace time counts 9/40), allowing for the delay of the whole MIDI by
graces before the first beat and for its MIDI running late after some grace
constructs.  Whatever stays unpaired on either side is counted and
reported, never dropped silently.  The performance follows the score's
repeat structure in every voice (:mod:`.timeline`: LilyPond's unfolding is
checked against it, or a printed-timeline rendering is unrolled by it),
written jumps are then realized (:func:`realize_jumps`), and the result is
checked to walk the printed systems in reading order except where it jumps
(:func:`reading_order`).
"""
