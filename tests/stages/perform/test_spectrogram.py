"""Tests of MSMD's 92-bin spectrogram.

The reference implementation below is deliberately naive and written from the
specification (one frame at a time, its own window formula, a full complex FFT,
filters built bin by bin from the literal bin lists), so that it shares no code
with the vectorised implementation it checks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from msmd_builder.core.errors import ConfigError
from msmd_builder.stages.perform import spectrogram
from msmd_builder.stages.perform.spectrogram import (
    N_BANDS,
    Filterbank,
    compute_spectrogram,
    msmd_filterbank,
    n_frames,
)

SR = 22050
HOP = 1102.5
FRAME = 2048
BIN_HZ = SR / FRAME  # 10.7666 Hz between FFT bins

# Computed once from the rule (440 * 2 ** (k / 16) Hz for 30 <= f <= 6000, k = -61 .. 60,
# each snapped to the nearest FFT bin, duplicates removed: 94 unique bins 3 .. 550) and
# spot-checked by hand in test_filterbank_bins_by_hand.  Filter k spans unique bins
# k, k + 1, k + 2 as (start, center, stop).
EXPECTED_START_BINS = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    28, 29, 30, 32, 33, 34, 36, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 58, 60, 63, 66, 69,
    72, 75, 78, 82, 85, 89, 93, 97, 102, 106, 111, 116, 121, 126, 132, 137, 144, 150, 157,
    163, 171, 178, 186, 194, 203, 212, 221, 231, 241, 252, 263, 275, 287, 300, 313, 327,
    341, 357, 372, 389, 406, 424, 443, 462, 483, 504,
]  # fmt: skip
EXPECTED_CENTER_BINS = [
    4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28,
    29, 30, 32, 33, 34, 36, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 58, 60, 63, 66, 69, 72,
    75, 78, 82, 85, 89, 93, 97, 102, 106, 111, 116, 121, 126, 132, 137, 144, 150, 157, 163,
    171, 178, 186, 194, 203, 212, 221, 231, 241, 252, 263, 275, 287, 300, 313, 327, 341,
    357, 372, 389, 406, 424, 443, 462, 483, 504, 527,
]  # fmt: skip
EXPECTED_STOP_BINS = [
    5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28,
    29, 30, 32, 33, 34, 36, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 58, 60, 63, 66, 69, 72,
    75, 78, 82, 85, 89, 93, 97, 102, 106, 111, 116, 121, 126, 132, 137, 144, 150, 157, 163,
    171, 178, 186, 194, 203, 212, 221, 231, 241, 252, 263, 275, 287, 300, 313, 327, 341,
    357, 372, 389, 406, 424, 443, 462, 483, 504, 527, 550,
]  # fmt: skip


# --------------------------------------------------------------------------- reference


def reference_filters() -> np.ndarray:
    """(1024, 92) unit-area triangles from the literal bins, one weight at a time."""
    fb = np.zeros((FRAME // 2, N_BANDS))
    for k in range(N_BANDS):
        s, c, e = EXPECTED_START_BINS[k], EXPECTED_CENTER_BINS[k], EXPECTED_STOP_BINS[k]
        for j in range(s, e):
            fb[j, k] = (j - s) / (c - s) if j < c else (e - j) / (e - c)
        fb[:, k] /= fb[:, k].sum()
    return fb


def reference_spectrogram(x: np.ndarray) -> np.ndarray:
    """Per-frame loop straight from the spec; ``x`` is float audio in [-1, 1]."""
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * n / (FRAME - 1)) for n in range(FRAME)])
    fb = reference_filters()
    count = math.ceil(len(x) / HOP)
    out = np.zeros((N_BANDS, count))
    for i in range(count):
        start = math.floor(i * HOP)
        frame = np.zeros(FRAME)
        piece = x[start : start + FRAME]
        frame[: len(piece)] = piece
        magnitude = np.abs(np.fft.fft(frame * window))[: FRAME // 2]
        out[:, i] = np.log10(1.0 + magnitude @ fb)
    return out


def synthetic_signal(seconds: float = 3.3, seed: int = 0) -> np.ndarray:
    """Sines at known frequencies, a click train and a little noise, float64 in [-1, 1]."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = (
        0.25 * np.sin(2 * np.pi * 110.0 * t)
        + 0.2 * np.sin(2 * np.pi * 440.0 * t)
        + 0.15 * np.sin(2 * np.pi * 1234.5 * t + 0.3)
        + 0.1 * np.sin(2 * np.pi * 5000.0 * t)
    )
    x[:: SR // 4] += 0.2  # clicks every 0.25 s
    x += 0.01 * np.random.default_rng(seed).standard_normal(n)
    return np.clip(x, -1.0, 1.0)


# --------------------------------------------------------------------------- filterbank


@pytest.fixture(autouse=True)
def _filterbank_built_afresh() -> None:
    """Every test builds the filterbank itself rather than finding it cached.

    Otherwise only the first test to build it would be seen calling the
    helpers that do (``_triangle``, ``_nearest_bins``), and mutation testing
    (docs/testing.md) would run only that test against their mutants.
    """
    msmd_filterbank.cache_clear()
    spectrogram._msmd_sparse_weights.cache_clear()


def test_filterbank_has_92_filters_with_the_expected_bins() -> None:
    fb = msmd_filterbank()
    assert isinstance(fb, Filterbank)
    assert fb.n_bands == N_BANDS == 92
    assert fb.weights.shape == (1024, 92)
    assert fb.weights.dtype == np.float32
    assert fb.start_bins.tolist() == EXPECTED_START_BINS
    assert fb.center_bins.tolist() == EXPECTED_CENTER_BINS
    assert fb.stop_bins.tolist() == EXPECTED_STOP_BINS
    np.testing.assert_allclose(fb.center_hz, np.array(EXPECTED_CENTER_BINS) * BIN_HZ)
    np.testing.assert_allclose(fb.bin_hz, np.arange(1024) * BIN_HZ)


def test_filterbank_bins_by_hand() -> None:
    # Nominal frequencies 440 * 2 ** (k / 16): k = -62 gives 29.98 Hz (< 30, excluded),
    # k = -61 gives 31.29 Hz = 2.906 bins -> bin 3; k = 60 gives 5919.9 Hz = 549.8 bins
    # -> bin 550; k = 61 gives 6178 Hz (> 6000, excluded).  440 Hz = 40.87 bins -> 41.
    assert 440 * 2 ** (-62 / 16) < 30 < 440 * 2 ** (-61 / 16)
    assert 440 * 2 ** (60 / 16) <= 6000 < 440 * 2 ** (61 / 16)
    assert round(440 * 2 ** (-61 / 16) / BIN_HZ) == 3
    assert round(440 * 2 ** (60 / 16) / BIN_HZ) == 550
    assert round(440 / BIN_HZ) == 41
    # Independent re-derivation of the unique bins from the rule.
    unique = sorted({math.floor(440 * 2 ** (k / 16) / BIN_HZ + 0.5) for k in range(-61, 61)})
    assert len(unique) == 94
    assert unique[:-2] == EXPECTED_START_BINS
    assert unique[1:-1] == EXPECTED_CENTER_BINS
    assert unique[2:] == EXPECTED_STOP_BINS


def test_filters_have_unit_area_and_triangular_support() -> None:
    fb = msmd_filterbank()
    w = fb.weights.astype(np.float64)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-6)
    for k in range(N_BANDS):
        s, c, e = EXPECTED_START_BINS[k], EXPECTED_CENTER_BINS[k], EXPECTED_STOP_BINS[k]
        nonzero = np.flatnonzero(w[:, k])
        assert nonzero[0] == s + 1  # the start bin itself weighs 0
        assert nonzero[-1] == e - 1
        assert int(np.argmax(w[:, k])) == c
    np.testing.assert_allclose(w, reference_filters(), atol=1e-7)


def test_filterbank_is_cached_and_read_only() -> None:
    fb = msmd_filterbank()
    assert msmd_filterbank() is fb
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        fb.weights[0, 0] = 1.0


def test_fmax_above_nyquist_snaps_to_last_bin_like_madmom() -> None:
    # The MSMD README's "16 kHz" would give 107 bands, not 92.
    assert msmd_filterbank(fmax=16000.0).n_bands == 107


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fmin": 0.0}, "need 0 < fmin < fmax, got fmin=0.0, fmax=6000.0"),
        ({"fmin": 7000.0}, "need 0 < fmin < fmax, got fmin=7000.0, fmax=6000.0"),
        ({"fmax": float("nan")}, "fmin and fmax must be finite, got fmin=30.0, fmax=nan"),
        ({"frame_size": 2047}, "frame_size must be an even int >= 4, got 2047"),
        ({"bands_per_octave": 0}, "bands_per_octave must be a positive int, got 0"),
        ({"sample_rate": -1}, r"sample_rate must be a positive int \(Hz\), got -1"),
        (  # fewer than 3 distinct bins
            {"fmin": 100.0, "fmax": 101.0},
            "fmin=100.0 .. fmax=101.0 Hz covers only 1 distinct FFT bins at frame_size=2048, "
            "sample_rate=22050; need at least 3",
        ),
    ],
)
def test_filterbank_rejects_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        msmd_filterbank(**kwargs)


# --------------------------------------------------------------------------- spectrogram


def test_matches_naive_reference_implementation() -> None:
    x = synthetic_signal()
    ours = compute_spectrogram(x)
    ref = reference_spectrogram(x)
    assert ours.shape == ref.shape == (92, math.ceil(len(x) / HOP))
    assert ours.dtype == np.float32
    assert float(np.abs(ours - ref).max()) < 1e-5
    assert ref.max() > 0.5  # the comparison is not between near-zero arrays


@pytest.mark.parametrize("block_frames", [1, 7])
def test_block_size_does_not_change_the_result(block_frames: int) -> None:
    x = synthetic_signal(seconds=2.0, seed=1)
    np.testing.assert_allclose(
        compute_spectrogram(x, block_frames=block_frames),
        compute_spectrogram(x),
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("n_samples", "expected"),
    [(0, 0), (1, 1), (1102, 1), (1103, 2), (2205, 2), (2206, 3), (SR, 20), (SR + 1, 21)],
)
def test_frame_count(n_samples: int, expected: int) -> None:
    assert n_frames(n_samples) == expected
    spec = compute_spectrogram(np.zeros(n_samples, dtype=np.int16))
    assert spec.shape == (92, expected)
    assert not spec.any()


def _active_frames(spec: np.ndarray) -> list[int]:
    return np.flatnonzero(spec.any(axis=0)).tolist()


def test_impulse_appears_in_the_frames_whose_window_covers_it() -> None:
    n = 30_000
    starts = [math.floor(i * HOP) for i in range(math.ceil(n / HOP))]
    for s in (0, 5000, 12_345, 29_999):
        x = np.zeros(n)
        x[s] = 0.5
        # Covered with non-zero weight: strictly inside [start, start + 2047], since the
        # symmetric Hann window is 0 at both ends.
        expected = [i for i, st in enumerate(starts) if st < s < st + FRAME - 1]
        assert _active_frames(compute_spectrogram(x)) == expected, s


def test_window_is_symmetric_hann_zero_at_both_ends() -> None:
    n = 20_000
    j = 5
    start = math.floor(j * HOP)  # 5512
    # At the frame's first sample: frame j sees nothing, frame j - 1 does.
    x = np.zeros(n)
    x[start] = 1.0
    active = _active_frames(compute_spectrogram(x))
    assert j not in active and j - 1 in active
    # At its last sample (start + 2047): zero weight too (a periodic Hann would not be
    # zero there), while frame j + 1 covers it.
    x = np.zeros(n)
    x[start + FRAME - 1] = 1.0
    active = _active_frames(compute_spectrogram(x))
    assert j not in active and j + 1 in active


def test_sine_at_440_hz_peaks_in_the_band_centred_on_440() -> None:
    fb = msmd_filterbank()
    band = int(np.flatnonzero(fb.center_bins == 41)[0])
    assert abs(fb.center_hz[band] - 440.0) < BIN_HZ / 2
    t = np.arange(2 * SR) / SR
    spec = compute_spectrogram(0.5 * np.sin(2 * np.pi * 440.0 * t))
    inside = spec[:, : n_frames(2 * SR - FRAME)]  # frames fully inside the signal
    assert (np.argmax(inside, axis=0) == band).all()


def test_int16_and_float_inputs_agree() -> None:
    x = 0.8 * synthetic_signal(seconds=1.5, seed=2)
    xi = np.round(x * 32767).astype(np.int16)
    from_int = compute_spectrogram(xi)
    np.testing.assert_allclose(from_int, compute_spectrogram(xi / 32767.0), atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        from_int, compute_spectrogram((xi / 32767.0).astype(np.float32)), atol=1e-5, rtol=0
    )
    # Against the unquantised signal: only 16-bit quantisation noise remains.
    np.testing.assert_allclose(from_int, compute_spectrogram(x), atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    ("audio", "kwargs", "match"),
    [
        (np.zeros(100), {"sample_rate": 44100}, "44100"),
        (np.zeros((100, 2)), {}, r"\(100, 2\)"),
        (np.zeros(100, dtype=np.uint8), {}, "uint8"),
        (np.zeros(100, dtype=np.int64), {}, "int64"),
        (np.array([0.0, np.nan, 0.0]), {}, "sample 1"),
        (np.zeros(100), {"block_frames": 0}, r"^block_frames must be a positive int, got 0$"),
        (np.zeros(100), {"block_frames": True}, r"^block_frames must be .*, got True$"),
        (np.zeros(100), {"block_frames": 2.0}, r"^block_frames must be .*, got 2\.0$"),
    ],
)
def test_rejects_bad_input(audio: np.ndarray, kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        compute_spectrogram(audio, **kwargs)
