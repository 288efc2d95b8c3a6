"""Performances: plans, humanization, in-process FluidSynth synthesis, onset checks.

Stage ``perform``.  Reads a piece's performed note events (a
:data:`~msmd_builder.tables.PERFORMED_EVENT_DTYPE` table at tempo ratio 1.0, times
in *score seconds*) and writes one file per performance::

    <out_dir>/<performance_id>.npz      arrays below (always)
    <out_dir>/<performance_id>.flac     16-bit mono audio (only with keep_audio=True)

The pieces of the stage, in the order they run:

1. :func:`plan_performances` decides which performances a piece gets (tempo
   ratio, soundfont, velocity, humanization, seed), deterministically from a
   global seed and the piece id, following a :class:`PerformanceRecipe`
   (MSMD's by default).
2. :func:`realize` maps the score-time events to performance time: a tempo
   ratio ``r`` makes the performance ``r`` times as fast (``t_perf = t_score /
   r``); an optional :class:`HumanizeSettings` adds a smooth, bounded local
   tempo curve, dynamics, chord asynchrony and sustain pedal
   (:func:`realize_pedal`).  The mapping is monotone and evaluated exactly, so
   every note's performance onset and offset are known.
3. :func:`snap_to_render_grid` moves every event to FluidSynth's 64-sample
   rendering grid (at most 1.45 ms at 22,050 Hz): FluidSynth starts a note only
   at the beginning of one of its 64-sample blocks, so this is the only way the
   stored times can equal the times at which notes sound, sample for sample.
4. :func:`synthesize` renders the events with libfluidsynth in-process
   (pyfluidsynth), block-exact, mono, float32, 22,050 Hz.
5. :func:`verify_onsets` checks, independently of the synthesizer, that the
   audio has an onset within one spectrogram frame of every recorded onset.
6. :func:`perform_piece` ties it together, computes the spectrogram
   (:func:`msmd_builder.spectrogram.compute_spectrogram`) and writes the file
   atomically, skipping performances whose cache key is unchanged.

NPZ layout (``format_name = "msmd-builder/performance"``, ``format_version = 1``;
read it back with :func:`load_performance`):

==========================  =====================================================
``format_name``             str
``format_version``          int64 scalar
``performance_id``          str
``piece_id``                str
``plan_json``               str, :meth:`PerformancePlan.to_dict` as JSON
``synth_json``              str, :meth:`SynthSettings.to_dict` and the soundfont
``cache_key``               str, hex SHA-256 (see :func:`performance_cache_key`)
``sample_rate``             int64 scalar, Hz
``n_samples``               int64 scalar, length of the audio
``duration_sec``            float64 scalar
``spectrogram``             float32 (92, n_frames), log-frequency spectrogram
``events``                  PERFORMED_EVENT_DTYPE (n_events,): performance times,
                            snapped to the render grid, in the input's row order
``onset_frame``             int64 (n_events,), ``units.sec_to_frame(onset_sec)``
``pedal``                   PEDAL_EVENT_DTYPE (n_pedal,), sustain pedal (CC64)
``onset_check_fraction``    float64 scalar, :func:`verify_onsets` result (NaN if
                            not verified)
==========================  =====================================================

Synthesis settings (:class:`SynthSettings`): gain 0.2, reverb and chorus on
with FluidSynth's defaults -- the ``fluidsynth`` command line MSMD used ran
with those defaults, and the spectrogram's value range depends on the gain.
The stereo output is clipped to [-1, 1] per channel (as the 16-bit FLAC files
MSMD wrote were) and mixed to mono as ``(left + right) / 2`` (as madmom's
loader did).  See ``docs/performances.md`` for the measured costs.
"""
