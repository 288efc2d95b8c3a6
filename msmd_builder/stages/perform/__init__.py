"""Stage ``perform``: performances of an aligned piece, synthesized with FluidSynth.

Reads a piece's performed note events (a
:data:`~msmd_builder.core.tables.PERFORMED_EVENT_DTYPE` table at tempo ratio 1.0,
times in *score seconds*) and writes one file per performance into the piece's
``perform/`` folder (:mod:`.npz` describes the format), indexed by ``perform.json``.

The modules, in the order they act:

1. :mod:`.plans` decides which performances a piece gets (tempo ratio,
   soundfont, velocity, humanization, seed), deterministically from a global seed
   and the piece id, following a recipe (MSMD's by default);
   :mod:`.humanize` holds the settings of humanized performances.
2. :mod:`.realize` maps score time to performance time (tempo ratio, optional
   humanization and pedal) and snaps every event to FluidSynth's 64-sample
   rendering grid, so the stored times are the times notes sound.
3. :mod:`.fluidsynth` renders the events in-process, block-exact (the soundfonts
   are listed and checked by :mod:`.soundfonts`).
4. :mod:`.spectrogram` computes MSMD's 92-bin log-frequency spectrogram.
5. :mod:`.onsets` checks, independently of the synthesizer, that the audio has an
   onset within one spectrogram frame of every recorded onset.
6. :mod:`.stage` ties it together: the stage's ``run``, its cache and ``perform.json``.

See ``docs/performances.md`` for the measured costs.
"""
