"""Real recordings of built pieces: aligned to their noteheads and added as performances.

The modules, in the order they act:

1. :mod:`.audio` decodes a recording (any format libsndfile reads, any rate,
   mono or stereo) to 22,050 Hz mono, refusing unreadable, empty, silent and
   overlong files with their own error classes.
2. :mod:`.features` computes the synchronization features (chroma and DLNCO
   onsets, 50 per second) after estimating the recording's tuning.
3. :mod:`.reference` renders the deadpan reference of a playing order
   (:mod:`msmd_builder.stages.align.playing_orders`) with the perform stage's
   tools, and caches its features.
4. :mod:`.sync` chooses the playing order (a slope-bounded DTW cost) and
   synchronizes reference and recording with synctoolbox's MrMsDTW.
5. :mod:`.stage` carries every note's onset and offset to the recording and
   stores the recording as a performance of the piece (``perform/``, listed in
   ``perform.json``).

:mod:`.inputs` reads a dataset build's list of recordings, :mod:`.simulate`
makes known-truth recordings for the tests and ``bench/bench_recordings.py``.
See ``docs/recordings.md``.
"""
