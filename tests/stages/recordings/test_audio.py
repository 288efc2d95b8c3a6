"""Reading recordings: formats, rates, channels, and the classified refusals."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from msmd_builder.core.errors import (
    EmptyRecordingError,
    SilentRecordingError,
    UnreadableRecordingError,
)
from msmd_builder.stages.recordings.audio import read_recording
from msmd_builder.stages.recordings.features import estimate_tuning_cents, sync_features
from msmd_builder.stages.recordings.inputs import read_recordings


def tone(seconds: float, rate: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("suffix", "rate", "channels"),
    [("wav", 44100, 2), ("flac", 48000, 1), ("ogg", 32000, 2), ("mp3", 44100, 1)],
)
def test_any_format_rate_and_channels_become_22050_hz_mono(tmp_path, suffix, rate, channels):
    signal = tone(3.0, rate)
    if channels == 2:
        signal = np.stack([signal, signal], axis=1)
    path = tmp_path / f"take.{suffix}"
    soundfile.write(str(path), signal, rate)
    audio = read_recording(path)
    assert audio.audio.dtype == np.float32 and audio.audio.ndim == 1
    assert (audio.sample_rate, audio.channels) == (rate, channels)
    # MP3 encoders pad a few milliseconds.
    assert audio.duration_sec == pytest.approx(3.0, abs=0.01 if suffix != "mp3" else 0.1)
    assert audio.describe()["file"] == f"take.{suffix}"


def test_refusals(tmp_path):
    with pytest.raises(UnreadableRecordingError, match="no such file"):
        read_recording(tmp_path / "missing.wav")
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"fLaC" + bytes(100))
    with pytest.raises(UnreadableRecordingError, match="broken.flac is not an audio file"):
        read_recording(broken)
    short = tmp_path / "short.wav"
    soundfile.write(str(short), tone(0.3, 22050), 22050)
    with pytest.raises(EmptyRecordingError, match=r"holds 0.30 s of audio"):
        read_recording(short)
    hiss = tmp_path / "hiss.wav"
    rng = np.random.default_rng(0)
    soundfile.write(str(hiss), (1e-4 * rng.standard_normal(22050 * 4)).astype(np.float32), 22050)
    with pytest.raises(SilentRecordingError, match="dBFS"):
        read_recording(hiss)


def test_tuning_is_estimated_in_cents():
    sharp = tone(12.0, 22050, 440.0 * 2 ** (30 / 1200))
    assert estimate_tuning_cents(sharp) == pytest.approx(30.0, abs=3.0)
    features = sync_features(sharp, tuning_cents=30.0)
    # 1 + n // 441 frames; the A pitch class dominates the chroma.
    assert features.chroma.shape == (12, 1 + len(sharp) // 441)
    assert int(np.argmax(features.chroma[:, 100])) == 9


def test_recordings_folder_and_csv(tmp_path):
    ids = ["A__B__piece", "A__B__piece__long-name", "C__D__other"]
    folder = tmp_path / "takes"
    folder.mkdir()
    for name in ("A__B__piece.wav", "A__B__piece__gould.flac", "A__B__piece__long-name.mp3"):
        (folder / name).write_bytes(b"")
    (folder / "unknown.ogg").write_bytes(b"")
    (folder / "notes.txt").write_text("-")
    requests = read_recordings(folder, ids)
    assert [(r.piece_id, r.path.name, r.role) for r in requests] == [
        ("A__B__piece", "A__B__piece.wav", "test"),
        ("A__B__piece", "A__B__piece__gould.flac", "test"),
        ("A__B__piece__long-name", "A__B__piece__long-name.mp3", "test"),
        ("", "unknown.ogg", "test"),
    ]
    listing = tmp_path / "list.csv"
    listing.write_text("piece_id,path,role\nC__D__other,takes/unknown.ogg,train\n")
    [request] = read_recordings(listing, ids)
    assert (request.piece_id, request.path, request.role) == (
        "C__D__other",
        (folder / "unknown.ogg").resolve(),
        "train",
    )
    listing.write_text("piece_id,path,role\nC__D__other,x.wav,final\n")
    from msmd_builder.core.errors import ConfigError

    with pytest.raises(ConfigError, match="line 2: role must be one of"):
        read_recordings(listing, ids)
