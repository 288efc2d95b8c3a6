"""The deadpan reference of a playing order: synthesized by the perform stage's tools, featurized.

A recording is aligned to a rendering of the piece whose every onset is known:
the playing order's events at the score's tempo (tempo ratio 1.0, written
velocities, no humanization), realized and snapped to the render grid by
:mod:`msmd_builder.stages.perform.realize` and rendered by FluidSynth
(:func:`~msmd_builder.stages.perform.fluidsynth.synthesize`) with a dry piano
(reverb and chorus off, so the onsets stay sharp).  Silence of
:attr:`ReferenceSettings.pad_sec` is added before and after, so that a
recording's leading and trailing silence, noise or applause has something
to be aligned to rather than the first and last notes.

The features (:func:`~msmd_builder.stages.recordings.features.sync_features`)
and the realized events are cached per playing order under
``recordings/references/`` (:class:`~msmd_builder.core.cache.StageCache`),
so every further recording of the piece, and every rerun, reuses them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from msmd_builder.core.cache import StageCache, load_npz, save_npz, sha256_bytes
from msmd_builder.core.units import SAMPLE_RATE
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.align.playing_orders import PlayingOrder
from msmd_builder.stages.perform.fluidsynth import SoundfontCache, SynthSettings
from msmd_builder.stages.perform.soundfonts import SoundfontSpec
from msmd_builder.stages.recordings import features as feature_module
from msmd_builder.stages.recordings.features import SyncFeatures, sync_features

__all__ = [
    "REFERENCE_FORMAT",
    "REFERENCE_VERSION",
    "ReferenceSettings",
    "Reference",
    "reference_of",
]

#: ``format_name`` of a cached reference (``recordings/references/<order>.npz``).
REFERENCE_FORMAT = "msmd-builder/recording-reference"
REFERENCE_VERSION = 1


def _dry() -> SynthSettings:
    return SynthSettings(reverb=False, chorus=False)


@dataclass(frozen=True)
class ReferenceSettings:
    """How a reference is rendered.

    Attributes
    ----------
    soundfont : str
        Soundfont name (``soundfonts.txt``); TimGM6mb's piano renders fastest
        and aligned as well as FluidR3's grand on the known-truth set.
    pad_sec : float
        Silence before and after the music.
    synth : SynthSettings
        FluidSynth settings (default dry).
    """

    soundfont: str = "timgm6mb-piano-1"
    pad_sec: float = 5.0
    synth: SynthSettings = field(default_factory=_dry)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-friendly dict."""
        return {"soundfont": self.soundfont, "pad_sec": self.pad_sec, "synth": self.synth.to_dict()}


@dataclass(frozen=True)
class Reference:
    """A playing order rendered deadpan, with its features.

    Attributes
    ----------
    order : PlayingOrder
        The playing order.
    events : np.ndarray
        Its events as rendered (snapped to the render grid), seconds from the
        start of the music (without the padding).
    features : SyncFeatures
        Features of the padded audio.
    pad_sec : float
        Silence before the music in the featurized audio.
    """

    order: PlayingOrder
    events: np.ndarray
    features: SyncFeatures
    pad_sec: float

    def feature_sec(self, music_sec: np.ndarray) -> np.ndarray:
        """Return times of the music (as in :attr:`events`) on the features' clock."""
        return np.asarray(music_sec, dtype=np.float64) + self.pad_sec


def _features_version() -> dict[str, Any]:
    """Return what the feature values depend on besides the audio."""
    return {
        name: (value.tolist() if isinstance(value, np.ndarray) else value)
        for name, value in vars(feature_module).items()
        if name.isupper() and isinstance(value, int | float | tuple | np.ndarray)
    }


def _read_header(path: Any) -> dict[str, Any]:
    from msmd_builder.stages.perform.npz import read_header

    return read_header(path)


def reference_of(
    order: PlayingOrder,
    piece_dir: PieceDir,
    settings: ReferenceSettings,
    *,
    soundfonts: Sequence[SoundfontSpec],
    cache: SoundfontCache,
    force: bool = False,
) -> Reference:
    """Render (or read from the cache) the deadpan reference of one playing order.

    Raises
    ------
    ToolNotFoundError, ConfigError
        The soundfont is missing or differs from the list.
    SynthesisError
        FluidSynth failed.
    """
    import librosa
    import scipy

    from msmd_builder import __version__
    from msmd_builder.stages.perform.fluidsynth import fluidsynth_version, synthesize
    from msmd_builder.stages.perform.plans import PerformancePlan
    from msmd_builder.stages.perform.realize import realize, snap_to_render_grid
    from msmd_builder.stages.perform.soundfonts import find_soundfont
    from msmd_builder.stages.perform.stage import checked_soundfont

    spec = find_soundfont(soundfonts, settings.soundfont)
    soundfont_path = checked_soundfont(spec, cache)
    events_data = np.ascontiguousarray(order.events)
    events_bytes = str(events_data.dtype.descr).encode() + events_data.tobytes()
    key_document = {
        "events_sha256": sha256_bytes(events_bytes),
        "settings": settings.to_dict(),
        "soundfont": spec.to_dict(),
        "features": _features_version(),
        "versions": {
            "msmd_builder": __version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "librosa": librosa.__version__,
            "libfluidsynth": fluidsynth_version(),
        },
    }
    path = piece_dir.recording_reference(order.key)
    entry = StageCache.for_document(
        path, key_document, format_name=REFERENCE_FORMAT, format_version=REFERENCE_VERSION
    )
    if entry.lookup(force=force, reader=_read_header) is not None:
        data = load_npz(path, format_name=REFERENCE_FORMAT, format_version=REFERENCE_VERSION)
        return Reference(
            order,
            data["events"],
            SyncFeatures(data["chroma"], data["onsets"]),
            float(data["pad_sec"]),
        )
    plan = PerformancePlan(
        performance_id=f"{piece_dir.piece_id}__reference",
        piece_id=piece_dir.piece_id,
        soundfont=spec.name,
        tempo_ratio=1.0,
        velocity=None,
        humanize=None,
    )
    events = snap_to_render_grid(realize(plan, order.events))
    audio = synthesize(
        events,
        soundfont_path=soundfont_path,
        bank=spec.bank,
        program=spec.program,
        settings=settings.synth,
        cache=cache,
    )
    features = sync_features(audio, pad_samples=int(round(settings.pad_sec * SAMPLE_RATE)))
    del audio
    save_npz(
        path,
        format_name=REFERENCE_FORMAT,
        format_version=REFERENCE_VERSION,
        cache_key=np.array(entry.key),
        order_json=np.array(json.dumps(order.to_dict(), sort_keys=True)),
        events=events,
        chroma=features.chroma,
        onsets=features.onsets,
        pad_sec=np.float64(settings.pad_sec),
    )
    return Reference(order, events, features, settings.pad_sec)
