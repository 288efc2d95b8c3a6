"""The performance file format (``<performance_id>.npz``).

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
``recording_json``          str, aligned recordings only: the file, the alignment
                            method and settings, the playing orders tried with
                            their costs, the chosen one, tuning, confidence
``confidence``              float32 (n_events,), aligned recordings only: each
                            note's alignment confidence, 0 to 1
==========================  =====================================================

An aligned recording (:mod:`msmd_builder.stages.recordings`) is a file of this
format whose ``plan_json`` has soundfont ``"recording"``, whose ``events`` are the
rows of the playing order the player took (times estimated by the alignment) and
whose ``synth_json`` describes the file instead of a synthesizer; ``pedal`` is empty.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from msmd_builder.core.cache import atomic_path, load_npz, sha256_bytes, stable_key
from msmd_builder.core.units import SAMPLE_RATE
from msmd_builder.stages.perform.fluidsynth import SynthSettings, _fluid
from msmd_builder.stages.perform.plans import PerformancePlan
from msmd_builder.stages.perform.soundfonts import SoundfontSpec

__all__ = [
    "performance_cache_key",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "read_header",
    "write_performance",
    "write_flac",
    "load_performance",
]


#: ``format_name`` stored in every performance file.
FORMAT_NAME = "msmd-builder/performance"


#: ``format_version`` stored in every performance file; bump on layout changes.
FORMAT_VERSION = 1


def read_header(path: Path) -> dict[str, Any]:
    """Return a performance file's ``format_name``, ``format_version`` and ``cache_key``.

    The reader a :class:`~msmd_builder.core.cache.StageCache` uses to check a
    performance file without loading its arrays.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return {
                "format_name": str(data["format_name"]),
                "format_version": int(data["format_version"]),
                "cache_key": str(data["cache_key"]),
            }
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def write_performance(path: Path, arrays: dict[str, Any]) -> None:
    """Write a performance file atomically (uncompressed: spectrograms barely compress)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            format_name=np.array(FORMAT_NAME),
            format_version=np.int64(FORMAT_VERSION),
            **arrays,
        )


def write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono audio as 16-bit FLAC, atomically."""
    import soundfile

    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), audio, sample_rate, format="FLAC", subtype="PCM_16")


def load_performance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a performance file written by the perform stage.

    Parameters
    ----------
    path : path-like
        ``<performance_id>.npz``.

    Returns
    -------
    dict
        The arrays of the file (scalars as Python numbers, strings as ``str``),
        with ``plan`` (a :class:`PerformancePlan`) and ``synth`` (a dict) parsed
        from their JSON.

    Raises
    ------
    FormatError
        If the file is unreadable or not a performance file of this format version.
    """
    arrays = load_npz(path, format_name=FORMAT_NAME, format_version=FORMAT_VERSION)
    out: dict[str, Any] = {}
    for name, value in arrays.items():
        if value.ndim == 0 and value.dtype.names is None:
            value = value.item()
        out[name] = value
    out["plan"] = PerformancePlan.from_dict(json.loads(out["plan_json"]))
    out["synth"] = json.loads(out["synth_json"])
    return out


def _events_sha256(events: np.ndarray) -> str:
    data = np.ascontiguousarray(events)
    return sha256_bytes(str(data.dtype.descr).encode() + b"\0" + data.tobytes())


def performance_cache_key(
    plan: PerformancePlan,
    events: np.ndarray,
    *,
    soundfont: SoundfontSpec,
    soundfont_sha256: str,
    settings: SynthSettings,
    sample_rate: int = SAMPLE_RATE,
    verify: bool = True,
) -> str:
    """Return the cache key of one performance file.

    The key hashes the input events' bytes, the plan, the soundfont (name,
    preset, the file's SHA-256), the synthesis settings and sample rate,
    whether onsets are verified, the file format version and the versions of
    msmd-builder, numpy, scipy, libfluidsynth and pyfluidsynth.

    Returns
    -------
    str
        Hex SHA-256 (:func:`msmd_builder.core.cache.stable_key`).
    """
    import scipy

    from msmd_builder import __version__

    fl = _fluid()
    return stable_key(
        {
            "stage": "perform",
            "format_version": FORMAT_VERSION,
            "events_sha256": _events_sha256(events),
            "plan": plan.to_dict(),
            "soundfont": {
                "name": soundfont.name,
                "bank": soundfont.bank,
                "program": soundfont.program,
                "sha256": soundfont_sha256,
            },
            "synth": settings.to_dict(),
            "sample_rate": sample_rate,
            "verify": verify,
            "versions": {
                "msmd_builder": __version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "libfluidsynth": fl.version,
                "pyfluidsynth": getattr(fl.module, "api_version", "unknown"),
            },
        }
    )
