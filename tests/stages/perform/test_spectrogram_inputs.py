"""Every integer width madmom accepted is scaled by its own maximum.

Found by mutation testing (docs/testing.md): the spectrogram tests used int16
and float audio only, so int32 (24-bit WAVs read as int32) and int8 could
have been refused or scaled wrongly unnoticed.
"""

from __future__ import annotations

import numpy as np
import pytest

from msmd_builder.stages.perform.spectrogram import compute_spectrogram


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32])
def test_integer_audio_is_scaled_by_its_maximum(dtype):
    top = np.iinfo(dtype).max
    t = np.arange(22050) / 22050
    samples = np.round(0.5 * top * np.sin(2 * np.pi * 440 * t)).astype(dtype)
    np.testing.assert_allclose(
        compute_spectrogram(samples), compute_spectrogram(samples / top), atol=1e-6, rtol=0
    )
