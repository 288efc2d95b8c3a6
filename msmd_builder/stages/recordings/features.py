"""Synchronization features: chroma and decaying chroma onsets at 50 frames per second.

The features are those of Ewert, Müller and Grosche's high-resolution audio
synchronization (ICASSP 2009), which synctoolbox's MrMsDTW is built for:

* chroma: the energy of each of the 88 piano pitches, summed into 12 pitch
  classes and log-compressed;
* DLNCO (decaying locally adaptively normalized chroma onsets): the increase of
  each pitch's log energy from one frame to the next, folded into 12 pitch
  classes, divided by its local maximum over 0.8 s (so soft passages count as
  much as loud ones) and spread over the following 10 frames with the decay
  ``sqrt(1 / n)``.  They pin notes to within a frame where chroma alone only
  knows which chord sounds.

The pitch energies come from one magnitude STFT (2048-sample Hann window,
hop 441 samples = 20 ms at 22,050 Hz, frame ``i`` centred on sample
``441 i``) through a bank of triangular filters, one per pitch, shifted by the
recording's tuning.  synctoolbox's own IIR filterbank features (the
reference implementation) were 28 times slower here and no more accurate on the
known-truth recordings (``docs/recordings.md``).  The STFT is taken in blocks
of 30 seconds, so a long recording needs memory for its pitch energies
(88 values per frame), not for its spectrogram.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy.ndimage import maximum_filter1d

from msmd_builder.core.units import SAMPLE_RATE

__all__ = [
    "FEATURE_RATE",
    "HOP_SAMPLES",
    "FFT_SIZE",
    "SyncFeatures",
    "pitch_energy",
    "sync_features",
    "estimate_tuning_cents",
]

#: Feature frames per second.
FEATURE_RATE: int = 50
#: Hop between feature frames at 22,050 Hz.
HOP_SAMPLES: int = SAMPLE_RATE // FEATURE_RATE
#: STFT window length.
FFT_SIZE: int = 2048
#: Lowest and highest piano pitch (MIDI numbers).
PITCH_RANGE: tuple[int, int] = (21, 108)
#: Frames of one STFT block (30 seconds).
_BLOCK_FRAMES = 30 * FEATURE_RATE
#: Log compression, relative to the signal's peak: ``log(1 + gamma * energy / peak)``,
#: of the pitch-class energies (chroma) and of the pitch energies (onsets).  A
#: stronger chroma compression (1e3, 1e5) flattens every vector towards the
#: noise floor, and silence and music then look alike: alignment fell from
#: 99.7 % to 96 % and 91 % of notes within 50 ms on five test pieces.
CHROMA_GAMMA: float = 100.0
ONSET_GAMMA: float = 1e4
#: Local normalization of the chroma onsets: window (seconds) and floor
#: (share of the largest onset strength).
ONSET_NORM_SEC: float = 0.8
ONSET_NORM_FLOOR: float = 0.1
#: Decay of a chroma onset over the following frames.
ONSET_DECAY: np.ndarray = np.sqrt(1.0 / np.arange(1, 11))


@dataclass(frozen=True)
class SyncFeatures:
    """Features of one signal.

    Attributes
    ----------
    chroma : np.ndarray [shape=(12, n_frames), dtype=float64]
        Log-compressed pitch-class energies (not normalized: synctoolbox
        normalizes after each smoothing).
    onsets : np.ndarray [shape=(12, n_frames), dtype=float64]
        DLNCO features, in [0, 1].
    """

    chroma: np.ndarray
    onsets: np.ndarray

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.chroma.shape[1])


@functools.lru_cache(maxsize=16)
def _pitch_filterbank(tuning_cents: float) -> scipy.sparse.csr_array:
    """Triangular filters (in semitones) of the 88 piano pitches over the STFT bins."""
    freqs = np.arange(FFT_SIZE // 2 + 1) * SAMPLE_RATE / FFT_SIZE
    pitches = np.arange(PITCH_RANGE[0], PITCH_RANGE[1] + 1)
    midi = 69.0 + 12.0 * np.log2(np.maximum(freqs, 1e-6) / 440.0) - tuning_cents / 100.0
    weights = np.maximum(0.0, 1.0 - np.abs(midi[None, :] - pitches[:, None]))
    return scipy.sparse.csr_array(weights.astype(np.float32))


def pitch_energy(
    audio: np.ndarray, *, tuning_cents: float = 0.0, pad_samples: int = 0
) -> np.ndarray:
    """Return the energy of every piano pitch at 50 frames per second.

    Parameters
    ----------
    audio : np.ndarray [shape=(n,)]
        Mono audio at 22,050 Hz.
    tuning_cents : float
        The recording's tuning relative to A = 440 Hz (the filters move with it).
    pad_samples : int
        Silence to add before and after (without copying the signal).

    Returns
    -------
    np.ndarray [shape=(88, 1 + (n + 2 * pad_samples) // 441), dtype=float32]
        Frame ``i`` is centred on sample ``441 i`` of the padded signal (zeros
        beyond its ends).
    """
    import librosa

    signal = np.asarray(audio, dtype=np.float32)
    n_frames = 1 + (len(signal) + 2 * pad_samples) // HOP_SAMPLES
    offset = FFT_SIZE // 2 + pad_samples  # signal sample 0 sits here in the framed timeline
    bank = _pitch_filterbank(float(tuning_cents))
    energy = np.zeros((bank.shape[0], n_frames), dtype=np.float32)
    for start in range(0, n_frames, _BLOCK_FRAMES):
        stop = min(n_frames, start + _BLOCK_FRAMES)
        first = start * HOP_SAMPLES
        block = np.zeros((stop - 1 - start) * HOP_SAMPLES + FFT_SIZE, dtype=np.float32)
        lo, hi = max(first - offset, 0), min(first - offset + len(block), len(signal))
        if hi > lo:
            block[lo - (first - offset) : hi - (first - offset)] = signal[lo:hi]
        spectrum = librosa.stft(block, n_fft=FFT_SIZE, hop_length=HOP_SAMPLES, center=False)
        energy[:, start:stop] = bank @ (np.abs(spectrum) ** 2)
    return energy


def _fold(pitch_rows: np.ndarray) -> np.ndarray:
    """Sum the 88 pitch rows into 12 pitch classes (row 0 = C)."""
    pitches = np.arange(PITCH_RANGE[0], PITCH_RANGE[1] + 1)
    folded = np.zeros((12, pitch_rows.shape[1]), dtype=np.float64)
    np.add.at(folded, pitches % 12, pitch_rows)
    return folded


def sync_features(
    audio: np.ndarray, *, tuning_cents: float = 0.0, pad_samples: int = 0
) -> SyncFeatures:
    """Compute the chroma and DLNCO features of a signal (see the module docstring).

    Parameters
    ----------
    audio : np.ndarray [shape=(n,)]
        Mono audio at 22,050 Hz.
    tuning_cents : float
        The signal's tuning (:func:`estimate_tuning_cents`).
    pad_samples : int
        Silence before and after the signal.

    Returns
    -------
    SyncFeatures
        ``1 + (n + 2 * pad_samples) // 441`` frames.
    """
    energy = pitch_energy(audio, tuning_cents=tuning_cents, pad_samples=pad_samples)
    peak = float(energy.max()) or 1.0
    folded = _fold(energy)
    chroma = np.log1p(CHROMA_GAMMA * folded / (float(folded.max()) or 1.0))
    log_energy = np.log1p(ONSET_GAMMA * energy / peak)
    rise = np.maximum(0.0, np.diff(log_energy, axis=1, prepend=log_energy[:, :1]))
    strength = _fold(rise)
    norm = np.linalg.norm(strength, axis=0)
    floor = ONSET_NORM_FLOOR * float(norm.max()) if norm.max() > 0 else 1.0
    window = int(ONSET_NORM_SEC * FEATURE_RATE) + 1
    normalized = strength / np.maximum(maximum_filter1d(norm, size=window), floor)
    onsets = np.zeros_like(normalized)
    for lag, weight in enumerate(ONSET_DECAY):
        later = onsets[:, lag:]
        np.maximum(later, weight * normalized[:, : normalized.shape[1] - lag], out=later)
    return SyncFeatures(chroma, onsets)


#: Tuning is estimated from at most this many excerpts of this many seconds.
_TUNING_EXCERPTS = 6
_TUNING_EXCERPT_SEC = 10.0


def estimate_tuning_cents(audio: np.ndarray) -> float:
    """Estimate a recording's tuning relative to A = 440 Hz, in cents (-50 to +50).

    librosa's estimate (peaks of an STFT, their deviation from the equal-tempered
    grid) over up to six 10-second excerpts spread over the recording, so a
    long recording costs no more than a minute of audio.
    """
    import librosa

    signal = np.asarray(audio, dtype=np.float32)
    excerpt = int(_TUNING_EXCERPT_SEC * SAMPLE_RATE)
    if len(signal) > _TUNING_EXCERPTS * excerpt:
        starts = np.linspace(0, len(signal) - excerpt, _TUNING_EXCERPTS).astype(int)
        signal = np.concatenate([signal[s : s + excerpt] for s in starts])
    if not np.any(signal):
        return 0.0
    return float(100.0 * librosa.estimate_tuning(y=signal, sr=SAMPLE_RATE, bins_per_octave=12))
