"""Recordings whose every onset is known, to measure the aligner without annotated recordings.

A *known-truth recording* is a humanized performance of one playing order --
tempo curve, final ritardando, chord asynchrony, dynamics, sustain pedal
(:data:`~msmd_builder.stages.perform.plans.HUMANIZED_RECIPE`'s settings), at a
tempo of its own, on the held-out soundfont -- rendered by the perform stage's
tools, then degraded as a room and a microphone would with pedalboard
(Spotify's audio-effects library): a tuning offset (pitch shift that keeps
time), a high-pass and a peak filter and a high shelf (microphone colouring),
room reverb, noise at a set signal-to-noise ratio, and seconds of silence,
noise or applause-like bursts before and after.  Every effect keeps the
timing (the pitch shifter's latency is compensated), so the truth is the
performance's onsets plus the leading seconds.

``bench/bench_recordings.py`` and the tests make their recordings here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from msmd_builder.core.units import SAMPLE_RATE
from msmd_builder.stages.perform.fluidsynth import SoundfontCache
from msmd_builder.stages.perform.plans import HUMANIZED_RECIPE, PerformancePlan
from msmd_builder.stages.perform.soundfonts import SoundfontSpec

__all__ = ["HELD_OUT_SOUNDFONT", "Degradation", "humanized_plan", "known_truth_recording"]

#: The test soundfont: never used for a reference.
HELD_OUT_SOUNDFONT = "musescore-general-grand"


@dataclass(frozen=True)
class Degradation:
    """What happens to a performance between the piano and the file.

    Attributes
    ----------
    tuning_cents : float
        Pitch shift (the piano's tuning), cents.
    highpass_hz : float or None
        Microphone low cut.
    peak_hz, peak_gain_db : float
        A presence peak or dip.
    shelf_gain_db : float
        High shelf above 5 kHz.
    reverb_room : float or None
        pedalboard ``Reverb`` room size (0 to 1); None for no reverb.
    reverb_wet : float
        Reverb wet level (the dry level is 0.8).
    snr_db : float or None
        Noise level against the performance's RMS; None for no noise.
    lead_sec, trail_sec : float
        Seconds before and after the performance.
    lead_kind : {'silence', 'noise', 'applause'}
        What fills them (noise at the recording's noise level; applause: noise
        in bursts up to 20 times louder).
    """

    tuning_cents: float = 0.0
    highpass_hz: float | None = None
    peak_hz: float = 2000.0
    peak_gain_db: float = 0.0
    shelf_gain_db: float = 0.0
    reverb_room: float | None = None
    reverb_wet: float = 0.25
    snr_db: float | None = None
    lead_sec: float = 0.0
    trail_sec: float = 0.0
    lead_kind: str = "silence"

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Degradation:
        """Draw a room, microphone and noise: reverb, colouring, 20-30 dB SNR, 15-50 cents."""
        return cls(
            tuning_cents=float(rng.uniform(15, 50) * rng.choice([-1, 1])),
            highpass_hz=float(rng.uniform(60, 150)),
            peak_hz=float(rng.uniform(800, 4000)),
            peak_gain_db=float(rng.uniform(-6, 6)),
            shelf_gain_db=float(rng.uniform(-8, 2)),
            reverb_room=float(rng.uniform(0.3, 0.8)),
            reverb_wet=float(rng.uniform(0.15, 0.35)),
            snr_db=float(rng.uniform(20, 30)),
            lead_sec=float(rng.uniform(1, 4)),
            trail_sec=float(rng.uniform(1, 4)),
            lead_kind=str(rng.choice(["silence", "noise", "applause"])),
        )

    def to_dict(self) -> dict:
        """Return the degradation as a JSON-friendly dict."""
        return asdict(self)

    def apply(self, audio: np.ndarray, *, seed: int = 0) -> np.ndarray:
        """Degrade mono 22,050 Hz audio; the result starts :attr:`lead_sec` earlier."""
        import pedalboard

        rng = np.random.default_rng(seed)
        effects = []
        if self.tuning_cents:
            effects.append(pedalboard.PitchShift(semitones=self.tuning_cents / 100.0))
        if self.highpass_hz:
            effects.append(pedalboard.HighpassFilter(cutoff_frequency_hz=self.highpass_hz))
        if self.peak_gain_db:
            effects.append(
                pedalboard.PeakFilter(
                    cutoff_frequency_hz=self.peak_hz, gain_db=self.peak_gain_db, q=1.0
                )
            )
        if self.shelf_gain_db:
            effects.append(
                pedalboard.HighShelfFilter(cutoff_frequency_hz=5000, gain_db=self.shelf_gain_db)
            )
        if self.reverb_room is not None:
            effects.append(
                pedalboard.Reverb(
                    room_size=self.reverb_room,
                    damping=0.5,
                    wet_level=self.reverb_wet,
                    dry_level=0.8,
                )
            )
        signal = np.asarray(audio, dtype=np.float32)
        if effects:
            signal = pedalboard.Pedalboard(effects)(signal, SAMPLE_RATE)
        rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) or 1e-3
        noise_rms = rms / 10 ** (self.snr_db / 20) if self.snr_db is not None else 0.0

        def noise(n: int) -> np.ndarray:
            # Pink-ish: white noise through a 4-sample moving average.
            white = rng.standard_normal(n + 3)
            shaped = np.convolve(white, np.ones(4) / 4, mode="valid")
            return (shaped * noise_rms / max(float(np.std(shaped)), 1e-12)).astype(np.float32)

        if noise_rms:
            signal = signal + noise(len(signal))

        def filler(seconds: float) -> np.ndarray:
            n = int(round(seconds * SAMPLE_RATE))
            if self.lead_kind == "silence" or not n:
                return np.zeros(n, dtype=np.float32)
            fill = noise(n) if noise_rms else rng.standard_normal(n).astype(np.float32) * 1e-3
            if self.lead_kind == "applause":
                envelope = np.abs(np.convolve(rng.standard_normal(n), np.ones(2000) / 2000, "same"))
                fill = fill * (1.0 + 20.0 * envelope / (envelope.max() or 1.0))
            return fill.astype(np.float32)

        signal = np.concatenate([filler(self.lead_sec), signal, filler(self.trail_sec)])
        peak = float(np.max(np.abs(signal))) or 1.0
        return (signal / max(1.0, peak / 0.99)).astype(np.float32)

    @property
    def offset_sec(self) -> float:
        """How much later the performance's onsets lie in the degraded audio."""
        return int(round(self.lead_sec * SAMPLE_RATE)) / SAMPLE_RATE


def humanized_plan(piece_id: str, *, tempo_ratio: float, seed: int) -> PerformancePlan:
    """Return the humanized recipe's performance of a piece, on the held-out soundfont."""
    humanize = HUMANIZED_RECIPE.train.humanize
    return PerformancePlan(
        performance_id=f"{piece_id}__known-truth",
        piece_id=piece_id,
        soundfont=HELD_OUT_SOUNDFONT,
        tempo_ratio=tempo_ratio,
        velocity=None,
        humanize=humanize,
        seed=seed,
    )


def known_truth_recording(
    events: np.ndarray,
    plan: PerformancePlan,
    degradation: Degradation,
    *,
    soundfonts: Sequence[SoundfontSpec],
    cache: SoundfontCache,
) -> tuple[np.ndarray, np.ndarray]:
    """Perform a playing order's events and degrade the audio.

    Parameters
    ----------
    events : np.ndarray
        The playing order's events (score seconds).
    plan : PerformancePlan
        The performance (:func:`humanized_plan`).
    degradation : Degradation
        Room, microphone, noise, tuning, leading and trailing seconds.
    soundfonts, cache
        As in :func:`~msmd_builder.stages.perform.stage.perform_piece`.

    Returns
    -------
    audio : np.ndarray [dtype=float32]
        Mono, 22,050 Hz.
    truth : np.ndarray
        The performed events, in the rows of ``events``, with ``onset_sec``
        and ``offset_sec`` in the degraded audio's seconds.
    """
    from msmd_builder.stages.perform.fluidsynth import synthesize
    from msmd_builder.stages.perform.realize import realize, realize_pedal, snap_to_render_grid
    from msmd_builder.stages.perform.soundfonts import find_soundfont
    from msmd_builder.stages.perform.stage import checked_soundfont

    spec = find_soundfont(soundfonts, plan.soundfont)
    performed = snap_to_render_grid(realize(plan, events))
    pedal = snap_to_render_grid(realize_pedal(plan, events))
    audio = synthesize(
        performed,
        soundfont_path=checked_soundfont(spec, cache),
        bank=spec.bank,
        program=spec.program,
        pedal=pedal,
        cache=cache,
    )
    degraded = degradation.apply(audio, seed=plan.seed)
    truth = performed.copy()
    truth["onset_sec"] += degradation.offset_sec
    truth["offset_sec"] += degradation.offset_sec
    return degraded, truth
