"""Reading a recording: any format libsndfile reads, any rate, mono or stereo, to 22,050 Hz mono.

libsndfile (through soundfile; the pinned wheel bundles libsndfile 1.2) reads
WAV, FLAC, Ogg Vorbis/Opus and MP3, among others.  The file is decoded in
blocks and resampled as it is read (soxr's streaming resampler, high quality),
so memory holds the 22,050 Hz mono signal only -- about 5 MB a minute -- and
a long recording is refused from its header before it is decoded.
Channels are averaged, as madmom (and so MSMD) mixed stereo files.

Every failure is a :class:`~msmd_builder.core.errors.RecordingError` of its
own class: a file that cannot be read, one without audio, one that is silent,
one longer than :data:`MAX_RECORDING_SEC`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msmd_builder.core.cache import sha256_file
from msmd_builder.core.errors import (
    EmptyRecordingError,
    RecordingTooLongError,
    SilentRecordingError,
    UnreadableRecordingError,
)
from msmd_builder.core.units import SAMPLE_RATE

__all__ = ["MAX_RECORDING_SEC", "SILENCE_DBFS", "RecordingAudio", "read_recording"]

#: Longest recording accepted (its 22,050 Hz mono signal takes about 320 MB).
MAX_RECORDING_SEC: float = 3600.0
#: A recording whose loudest 100 ms stay below this level (dB re full scale) is silent.
SILENCE_DBFS: float = -60.0
#: Shortest recording with something to align.
MIN_RECORDING_SEC: float = 1.0
_BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True)
class RecordingAudio:
    """A recording decoded to MSMD's rate.

    Attributes
    ----------
    audio : np.ndarray [shape=(n,), dtype=float32]
        Mono signal at 22,050 Hz.
    path : Path
        The file.
    sha256 : str
        Hex SHA-256 of the file's bytes.
    format : str
        libsndfile's format name (``WAV``, ``FLAC``, ``OGG``, ``MP3``, ...).
    sample_rate : int
        The file's sample rate.
    channels : int
        The file's channel count.
    """

    audio: np.ndarray
    path: Path
    sha256: str
    format: str
    sample_rate: int
    channels: int

    @property
    def duration_sec(self) -> float:
        """Length of the signal, seconds."""
        return self.audio.size / SAMPLE_RATE

    def describe(self) -> dict:
        """Return the file's facts, JSON-friendly (its name, not its path)."""
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "format": self.format,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration_sec": round(self.duration_sec, 3),
        }


def _loudest_dbfs(audio: np.ndarray) -> float:
    """Level of the loudest 100 ms of the signal (RMS, dB re full scale)."""
    window = SAMPLE_RATE // 10
    n = audio.size // window
    if n == 0:
        power = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    else:
        blocks = audio[: n * window].reshape(n, window).astype(np.float64)
        power = float(np.max(np.mean(blocks**2, axis=1)))
    return 10.0 * np.log10(power) if power > 0 else -np.inf


def read_recording(path: str | os.PathLike[str]) -> RecordingAudio:
    """Decode a recording to 22,050 Hz mono float32.

    Parameters
    ----------
    path : path-like
        An audio file.

    Returns
    -------
    RecordingAudio

    Raises
    ------
    UnreadableRecordingError
        The file does not exist or libsndfile cannot decode it.
    EmptyRecordingError
        It holds less than :data:`MIN_RECORDING_SEC` of audio.
    RecordingTooLongError
        It is longer than :data:`MAX_RECORDING_SEC`.
    SilentRecordingError
        Its loudest 100 ms are quieter than :data:`SILENCE_DBFS`.
    """
    import soundfile
    import soxr

    path = Path(path)
    if not path.is_file():
        raise UnreadableRecordingError(f"{path.name}: no such file")
    try:
        handle = soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError, TypeError) as exc:
        raise UnreadableRecordingError(
            f"{path.name} is not an audio file libsndfile can read ({exc})"
        ) from exc
    with handle:
        rate, channels, frames = int(handle.samplerate), int(handle.channels), int(handle.frames)
        if rate <= 0 or channels <= 0:
            raise UnreadableRecordingError(f"{path.name}: {rate} Hz, {channels} channels")
        if frames > MAX_RECORDING_SEC * rate:
            raise RecordingTooLongError(
                f"{path.name} lasts {frames / rate / 60:.1f} minutes; recordings of up to "
                f"{MAX_RECORDING_SEC / 60:.0f} minutes are aligned"
            )
        resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        pieces: list[np.ndarray] = []
        decoded = 0
        try:
            while True:
                block = handle.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                decoded += len(block)
                if decoded > MAX_RECORDING_SEC * rate:
                    raise RecordingTooLongError(
                        f"{path.name} is longer than {MAX_RECORDING_SEC / 60:.0f} minutes"
                    )
                last = len(block) < _BLOCK_FRAMES
                mono = block.mean(axis=1, dtype=np.float32)
                pieces.append(resampler.resample_chunk(mono, last=last))
                if last:
                    break
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise UnreadableRecordingError(f"{path.name}: decoding failed ({exc})") from exc
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        audio_format = str(handle.format)
    if decoded < MIN_RECORDING_SEC * rate:
        raise EmptyRecordingError(
            f"{path.name} holds {decoded / rate:.2f} s of audio; nothing to align"
        )
    if not np.all(np.isfinite(audio)):
        raise UnreadableRecordingError(f"{path.name}: the decoded audio is not finite")
    level = _loudest_dbfs(audio)
    if level < SILENCE_DBFS:
        raise SilentRecordingError(
            f"{path.name} is silent: its loudest 100 ms reach {level:.0f} dBFS "
            f"(below {SILENCE_DBFS:.0f} dBFS)"
        )
    return RecordingAudio(
        audio=np.ascontiguousarray(audio, dtype=np.float32),
        path=path,
        sha256=sha256_file(path),
        format=audio_format,
        sample_rate=rate,
        channels=channels,
    )
