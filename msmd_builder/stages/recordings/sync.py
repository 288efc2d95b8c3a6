"""Synchronize a reference rendering with a recording: synctoolbox's MrMsDTW.

Memory-restricted multi-scale DTW (Prätzlich, Driedger and Müller, ICASSP
2016; synctoolbox, Müller et al., JOSS 2021) aligns the two feature sequences
coarse to fine: chroma smoothed to 1, 2 and 10 frames per second first, then
chroma and DLNCO onsets at 50 frames per second inside the corridor the
coarser level found, in rectangles of bounded area.  Memory therefore stays
bounded for a long recording (a full DTW of a 20-minute recording at 50 frames
per second would need 60,000 x 60,000 cells).

Besides the path, this module measures how well the two sequences match along
it (the *normalized cost*: the mean chroma cosine distance over the path,
0 for identical pitch content, about 0.5 for unrelated music) and turns the
local cost around every note into a confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msmd_builder.stages.recordings.features import FEATURE_RATE, SyncFeatures

__all__ = [
    "SyncSettings",
    "Synchronization",
    "synchronize",
    "order_cost",
    "music_span",
    "pitch_class_distance",
]


@dataclass(frozen=True)
class SyncSettings:
    """Settings of the synchronization (synctoolbox's, as in its audio-audio tutorial).

    Attributes
    ----------
    step_weights : tuple of float
        DTW weights of the vertical, horizontal and diagonal steps.
    threshold_rec : int
        Largest area (cells) of one DTW rectangle at the finest level.  It
        bounds the memory: the rectangles along a path of ``L`` frames hold
        about ``L * sqrt(threshold_rec)`` cells of some 24 bytes.  10^5 placed
        notes as 10^6 did on five corpus pieces (99.9 % within 50 ms) at a
        third of the DTW time; 10^4 lost a fifth of one piece's notes.
    alpha : float
        Weight of the chroma cost against the onset cost at the finest level.
    confidence_window_sec : float
        Half-width of the stretch of path whose cost rates a note.
    """

    step_weights: tuple[float, float, float] = (1.5, 1.5, 2.0)
    threshold_rec: int = 10**5
    alpha: float = 0.5
    confidence_window_sec: float = 0.2

    def to_dict(self) -> dict:
        """Return the settings as a JSON-friendly dict."""
        return {
            "step_weights": list(self.step_weights),
            "threshold_rec": self.threshold_rec,
            "alpha": self.alpha,
            "confidence_window_sec": self.confidence_window_sec,
        }


def _unit_columns(features: np.ndarray) -> np.ndarray:
    """L2-normalize columns; columns without energy become the uniform unit vector."""
    from synctoolbox.feature.utils import normalize_feature

    return normalize_feature(features, norm_ord=2, threshold=0.001)


def _centered_columns(chroma: np.ndarray) -> np.ndarray:
    """Subtract each column's mean and L2-normalize; silent (flat) columns become zero."""
    centered = chroma - chroma.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centered, axis=0)
    return centered / np.where(norms > 1e-9, norms, np.inf)


def pitch_class_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Distance of paired chroma columns, 0 (same pitch classes) to 1 (opposite).

    ``(1 - r) / 2`` with ``r`` the correlation of the two 12-vectors: the
    chroma's log compression makes every vector mostly its floor, so plain
    cosine distances are all small; the correlation compares which pitch
    classes stand out.  Unrelated music scores about 0.5; two silent columns
    0, a silent one against sound 0.5.
    """
    a, b = _centered_columns(first), _centered_columns(second)
    distance = (1.0 - np.sum(a * b, axis=0)) / 2.0
    silent = ~np.any(a, axis=0) & ~np.any(b, axis=0)
    return np.where(silent, 0.0, distance)


@dataclass(frozen=True)
class Synchronization:
    """A warping path between a reference and a recording, and its costs.

    Attributes
    ----------
    path : np.ndarray [shape=(2, n), dtype=int64]
        Strictly monotonic pairs (reference frame, recording frame), 50 per second.
    chroma_cost : np.ndarray [shape=(n,)]
        :func:`pitch_class_distance` of the two chroma vectors at each pair.
    onset_cost : np.ndarray [shape=(n,)]
        Euclidean distance of the two DLNCO vectors at each pair.
    chroma_shift : int
        Semitones the recording's pitch classes were rotated by (0, 1 or -1):
        a tuning estimate near +-50 cents can land a semitone off.
    """

    path: np.ndarray
    chroma_cost: np.ndarray
    onset_cost: np.ndarray
    chroma_shift: int = 0

    @property
    def normalized_cost(self) -> float:
        """Mean chroma distance along the path."""
        return float(np.mean(self.chroma_cost))

    def to_recording_sec(self, reference_sec: np.ndarray) -> np.ndarray:
        """Map reference times to recording times (linear between path points)."""
        frames = np.asarray(reference_sec, dtype=np.float64) * FEATURE_RATE
        return np.interp(frames, self.path[0], self.path[1]) / FEATURE_RATE

    def local_cost(self, reference_sec: np.ndarray, *, window_sec: float) -> np.ndarray:
        """Mean combined cost of the path within ``window_sec`` of each reference time."""
        combined = self.chroma_cost + self.onset_cost
        cumulative = np.concatenate([[0.0], np.cumsum(combined)])
        position = np.asarray(reference_sec, dtype=np.float64) * FEATURE_RATE
        lo = np.searchsorted(self.path[0], position - window_sec * FEATURE_RATE, side="left")
        hi = np.searchsorted(self.path[0], position + window_sec * FEATURE_RATE, side="right")
        hi = np.maximum(hi, lo + 1)
        lo = np.minimum(lo, len(combined) - 1)
        hi = np.minimum(hi, len(combined))
        return (cumulative[hi] - cumulative[lo]) / np.maximum(hi - lo, 1)


def _best_chroma_shift(reference: np.ndarray, recording: np.ndarray) -> int:
    """Return 0, 1 or -1: the pitch-class rotation of the recording that matches best.

    synctoolbox's test (DTW cost of 1 Hz CENS features under each rotation),
    restricted to one semitone either way: a larger transposition is a
    different recording, which the normalized cost reports.
    """
    from synctoolbox.dtw.utils import compute_optimal_chroma_shift
    from synctoolbox.feature.chroma import quantize_chroma, quantized_chroma_to_CENS

    def cens(chroma: np.ndarray) -> np.ndarray:
        quantized = quantize_chroma(chroma)
        return quantized_chroma_to_CENS(quantized, 201, 50, FEATURE_RATE)[0]

    shift = int(
        compute_optimal_chroma_shift(
            cens(reference), cens(recording), chroma_transpositions=np.array([0, 1, 11])
        )
    )
    return shift - 12 if shift > 6 else shift


def synchronize(
    reference: SyncFeatures,
    recording: SyncFeatures,
    settings: SyncSettings | None = None,
    *,
    allow_semitone_shift: bool = True,
) -> Synchronization:
    """Align a recording's features to a reference's with MrMsDTW.

    Parameters
    ----------
    reference, recording : SyncFeatures
        Features at :data:`FEATURE_RATE` frames per second.
    settings : SyncSettings, optional
        DTW weights and bounds.
    allow_semitone_shift : bool
        Test rotating the recording's pitch classes by one semitone either way.

    Returns
    -------
    Synchronization
    """
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
    from synctoolbox.dtw.utils import make_path_strictly_monotonic
    from synctoolbox.feature.utils import shift_chroma_vectors

    settings = settings or SyncSettings()
    chroma_rec, onsets_rec = recording.chroma, recording.onsets
    shift = _best_chroma_shift(reference.chroma, chroma_rec) if allow_semitone_shift else 0
    if shift:
        chroma_rec = shift_chroma_vectors(chroma_rec, shift % 12)
        onsets_rec = shift_chroma_vectors(onsets_rec, shift % 12)
    path = sync_via_mrmsdtw(
        f_chroma1=reference.chroma,
        f_chroma2=chroma_rec,
        f_onset1=reference.onsets,
        f_onset2=onsets_rec,
        input_feature_rate=FEATURE_RATE,
        step_weights=np.array(settings.step_weights, dtype=np.float64),
        threshold_rec=settings.threshold_rec,
        alpha=settings.alpha,
    )
    path = np.asarray(make_path_strictly_monotonic(path), dtype=np.int64)
    chroma_cost = pitch_class_distance(reference.chroma[:, path[0]], chroma_rec[:, path[1]])
    onset_cost = np.linalg.norm(reference.onsets[:, path[0]] - onsets_rec[:, path[1]], axis=0)
    return Synchronization(path, chroma_cost, onset_cost, shift)


#: Most frames per sequence in :func:`order_cost` (its cost matrix is this squared).
ORDER_COST_MAX_FRAMES = 2000
#: Frames per second of :func:`order_cost`'s chroma, at most.
ORDER_COST_RATE = 10.0
#: Added to the cost of every step of :func:`order_cost`'s path off the diagonal.
ORDER_COST_SLOPE_PENALTY = 0.05


def _coarse(chroma: np.ndarray, n_frames: int, factor: int) -> np.ndarray:
    """Stretch chroma to ``n_frames`` (linear in time), then average ``factor`` frames."""
    if chroma.shape[1] != n_frames:
        source = np.linspace(0.0, chroma.shape[1] - 1, n_frames)
        chroma = np.stack([np.interp(source, np.arange(chroma.shape[1]), row) for row in chroma])
    usable = max(n_frames // factor, 1) * factor
    if usable > chroma.shape[1]:
        chroma = np.pad(chroma, ((0, 0), (0, usable - chroma.shape[1])), mode="edge")
    return chroma[:, :usable].reshape(chroma.shape[0], -1, factor).mean(axis=2)


def music_span(
    reference_chroma: np.ndarray, reference_pad_frames: int, recording_chroma: np.ndarray
) -> tuple[int, int]:
    """Find where the music lies in a recording (its frames matched to the reference's ends).

    A chroma-only MrMsDTW at 10 frames per second of the padded reference
    against the recording; its path maps the reference's pads onto the
    recording's leading and trailing silence, noise or applause.  Every
    playing order of a piece starts alike, and each ends on the piece's last
    bars, so the span found with one order serves them all.

    Returns
    -------
    (int, int)
        First and last recording frame (50 per second) of the music.
    """
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw

    factor = FEATURE_RATE // 10
    reference = _coarse(reference_chroma, reference_chroma.shape[1], factor)
    recording = _coarse(recording_chroma, recording_chroma.shape[1], factor)
    path = sync_via_mrmsdtw(
        f_chroma1=reference,
        f_chroma2=recording,
        input_feature_rate=FEATURE_RATE / factor,
        win_len_smooth=np.array([21, 1]),
        downsamp_smooth=np.array([5, 1]),
        step_weights=np.array([1.5, 1.5, 2.0]),
        threshold_rec=10**6,
    ).astype(np.float64)
    last = reference_chroma.shape[1] - reference_pad_frames
    start, stop = np.interp([reference_pad_frames / factor, last / factor], path[0], path[1])
    n = recording_chroma.shape[1]
    return int(np.clip(start * factor, 0, n - 1)), int(np.clip(stop * factor, 1, n))


def order_cost(reference_chroma: np.ndarray, recording_chroma: np.ndarray) -> float:
    """How well a playing order's music matches the music of a recording: 0 (same) to 1.

    Both chroma sequences should hold music only (the reference without its
    pads, the recording cut to its :func:`music_span`).  The reference is
    stretched to the recording's length (the overall tempo does not matter),
    both are averaged down to at most :data:`ORDER_COST_RATE` frames per
    second and aligned by DTW (librosa) with the local tempo held between
    half and twice the average (steps (1, 1), (2, 1), (1, 2)), each step off
    the diagonal costing :data:`ORDER_COST_SLOPE_PENALTY` more.  The result is
    the accumulated cost over the path's length, the local cost being
    :func:`pitch_class_distance`.  The slope bound and penalty are what tell
    playing orders apart: an order with a repeat the player skipped has to
    squeeze a whole section into an instant, which they forbid, so it pays
    for matching the wrong music instead; a plain DTW warps past it at little
    cost.

    Returns
    -------
    float
        The cost: about 0.1 for a recording of the order, 0.25 and more for
        another piece (``docs/recordings.md``).
    """
    import librosa

    n_frames = recording_chroma.shape[1]
    seconds = n_frames / FEATURE_RATE
    rate = min(ORDER_COST_RATE, ORDER_COST_MAX_FRAMES / max(seconds, 1e-9))
    factor = max(1, int(np.ceil(FEATURE_RATE / rate)))
    reference = _centered_columns(_coarse(reference_chroma, n_frames, factor))
    recording = _centered_columns(_coarse(recording_chroma, n_frames, factor))
    cost = (1.0 - reference.T @ recording) / 2.0
    cost[~np.any(reference, axis=0)[:, None] & ~np.any(recording, axis=0)[None, :]] = 0.0
    if min(cost.shape) < 2:
        return float(np.mean(cost))
    penalty = ORDER_COST_SLOPE_PENALTY
    accumulated, path = librosa.sequence.dtw(
        C=cost,
        step_sizes_sigma=np.array([[1, 1], [2, 1], [1, 2]]),
        weights_add=np.array([0.0, penalty, penalty]),
        weights_mul=np.array([1.0, 1.0, 1.0]),
    )
    return float(accumulated[-1, -1] / len(path))
