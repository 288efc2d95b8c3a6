"""A performance's audio, as the perform stage rendered it.

The perform stage keeps a performance's audio only when asked (``--keep-audio``,
``perform/<performance_id>.flac``).  Otherwise the performance file holds
everything needed to render it again: the realized events, the pedal, the
soundfont (name and SHA-256) and the synthesis settings.  FluidSynth renders
deterministically, so :func:`resynthesize` gives the samples the spectrogram
was computed from, and checks their number against the stored length.  The
HTML viewer and the exports both take their audio from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from msmd_builder.core.errors import ConfigError, SynthesisError

if TYPE_CHECKING:
    from msmd_builder.dataset.built import BuiltPiece
    from msmd_builder.stages.perform.fluidsynth import SoundfontCache

__all__ = ["resynthesize", "kept_audio_path", "performance_audio"]


def resynthesize(data: dict[str, Any], cache: SoundfontCache | None = None) -> np.ndarray:
    """Render a performance's stored events again, exactly as the perform stage did.

    Parameters
    ----------
    data : dict
        :func:`msmd_builder.stages.perform.npz.load_performance` output.
    cache : SoundfontCache, optional
        Loaded soundfonts; default ``default_soundfont_cache()``.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
        Mono audio at the performance's sample rate.

    Raises
    ------
    ConfigError
        If the soundfont found is not the file the performance was rendered with.
    SynthesisError
        If the audio does not have the stored length.
    """
    from msmd_builder.stages.perform.fluidsynth import (
        SynthSettings,
        default_soundfont_cache,
        synthesize,
    )
    from msmd_builder.stages.perform.soundfonts import SoundfontSpec, locate

    spec = SoundfontSpec.from_dict(data["synth"]["soundfont"])
    sf_path = locate(spec)
    cache = cache if cache is not None else default_soundfont_cache()
    if cache.sha256(sf_path) != spec.sha256:
        raise ConfigError(
            f"soundfont {spec.name!r}: {sf_path} is not the file the performance was rendered "
            f"with (SHA-256 differs); run `msmd-build soundfonts check`"
        )
    audio = synthesize(
        data["events"],
        soundfont_path=sf_path,
        bank=spec.bank,
        program=spec.program,
        sample_rate=int(data["sample_rate"]),
        settings=SynthSettings(**data["synth"]["settings"]),
        pedal=data["pedal"],
        cache=cache,
    )
    if audio.size != int(data["n_samples"]):
        raise SynthesisError(
            f"{data['performance_id']}: re-synthesis gave {audio.size} samples, "
            f"the performance file has {int(data['n_samples'])}"
        )
    return np.asarray(audio, dtype=np.float32)


def kept_audio_path(built: BuiltPiece, entry: dict[str, Any]) -> Path:
    """Where the perform stage keeps a performance's FLAC (it may not exist)."""
    return built.piece_dir.perform / (entry.get("audio") or f"{entry['performance_id']}.flac")


def performance_audio(
    built: BuiltPiece, entry: dict[str, Any], data: dict[str, Any], cache: SoundfontCache | None
) -> np.ndarray:
    """Return a performance's audio: its kept FLAC, else rendered again.

    Parameters
    ----------
    built : BuiltPiece
        The piece.
    entry : dict
        Its ``perform.json`` entry for the performance.
    data : dict
        The performance file (``load_performance``).
    cache : SoundfontCache or None
        Loaded soundfonts for re-synthesis.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
    """
    import soundfile

    kept = kept_audio_path(built, entry)
    if kept.is_file():
        audio, _ = soundfile.read(str(kept), dtype="float32", always_2d=False)
        return audio
    return resynthesize(data, cache)
