"""Write a built split in layouts that public downstream code loads unchanged.

``msmd-build export --format NAME --split SPLIT --out DIR`` (see
``docs/exports.md`` for the field-by-field mapping of each layout):

``cyolo``
    ``DIR/<part>/<performance_id>.npz`` and ``.wav`` (22,050 Hz) per
    performance, ``DIR/<part>.yaml`` listing them (``files:``), the layout of
    ``CPJKU/cyolo_score_following`` (:mod:`msmd_builder.outputs.export_cyolo`).
``passages``
    ``DIR/<piece_id>.npz`` per piece and ``DIR/split.yaml`` (part -> piece
    ids), the layout of passage and snippet retrieval code
    (:mod:`msmd_builder.outputs.export_passages`).

Pieces come from the split's shards; audio, which the shards do not hold, from
the work directory that built them: a performance's kept FLAC, else rendered
again from its performance file (:mod:`msmd_builder.outputs.audio`), checked
to be the performance the shard holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from msmd_builder.core.cache import atomic_path, save_npz
from msmd_builder.core.errors import ConfigError
from msmd_builder.core.workdir import WorkDir
from msmd_builder.dataset.built import BuiltPiece
from msmd_builder.dataset.reader import open_split

if TYPE_CHECKING:
    from msmd_builder.stages.perform.fluidsynth import SoundfontCache

__all__ = ["EXPORT_FORMATS", "ExportSummary", "export_split"]

#: Layouts :func:`export_split` writes.
EXPORT_FORMATS = ("cyolo", "passages")


@dataclass
class ExportSummary:
    """What an export wrote.

    Attributes
    ----------
    out_dir : str
        The output folder.
    files : list of str
        Files written, relative to ``out_dir``, in order.
    pieces : int
        Pieces exported.
    performances : int
        Performances exported.
    """

    out_dir: str
    files: list[str] = field(default_factory=list)
    pieces: int = 0
    performances: int = 0


def _write_yaml(path: Path, document: dict[str, Any]) -> None:
    import yaml

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile

    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), audio, sample_rate, format="WAV", subtype="FLOAT")


def _audio(
    work: WorkDir, piece_id: str, performance: Any, n_events: int, cache: SoundfontCache | None
) -> tuple[np.ndarray, int]:
    from msmd_builder.outputs.audio import performance_audio

    built = BuiltPiece.open(work.piece(piece_id))
    entries = {e["performance_id"]: e for e in built.performance_entries()}
    entry = entries.get(performance.performance_id)
    if entry is None:
        raise ConfigError(
            f"{piece_id}: the work directory has no performance {performance.performance_id}"
        )
    data = built.load_performance(
        built.piece_dir.perform / entry["file"], cache_key=entry["cache_key"], n_events=n_events
    )
    if data["events"].tobytes() != np.ascontiguousarray(performance.events).tobytes():
        raise ConfigError(
            f"{performance.performance_id}: the work directory's performance is not the one "
            "in the split (build the split from this work directory again)"
        )
    return performance_audio(built, entry, data, cache), int(data["sample_rate"])


def export_split(
    format_name: str,
    split_dir: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    parts: list[str] | None = None,
    cache: SoundfontCache | None = None,
) -> ExportSummary:
    """Export a written split in one of :data:`EXPORT_FORMATS`.

    Parameters
    ----------
    format_name : {'cyolo', 'passages'}
        The layout.
    split_dir : path-like
        ``<dataset>/<split>`` (with its ``manifest.json``).
    work_dir : path-like
        The work directory that built the split (for the audio).
    out_dir : path-like
        Where the layout goes (created).
    parts : list of str, optional
        Only these parts; default all, in manifest order.
    cache : SoundfontCache, optional
        Loaded soundfonts for re-synthesis.

    Returns
    -------
    ExportSummary

    Raises
    ------
    ConfigError
        An unknown format or part, or a work directory that does not hold the
        split's performances.
    """
    if format_name not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format_name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = WorkDir(Path(work_dir))
    summary = ExportSummary(str(out))
    with open_split(split_dir) as split:
        chosen = list(split.parts) if parts is None else parts
        unknown = [p for p in chosen if p not in split.parts]
        if unknown:
            raise ConfigError(
                f"no part {', '.join(unknown)}; the split has {', '.join(split.parts)}"
            )
        listing: dict[str, list[str]] = {}
        for part in chosen:
            names: list[str] = []
            for piece in split.iter_pieces(part):
                summary.pieces += 1
                if format_name == "cyolo":
                    names += _export_cyolo(piece, work, out, part, summary, cache)
                else:
                    names.append(_export_passages(piece, out, summary))
            listing[part] = names
        if format_name == "cyolo":
            for part, names in listing.items():
                _write_yaml(out / f"{part}.yaml", {"files": names})
                summary.files.append(f"{part}.yaml")
        else:
            _write_yaml(out / "split.yaml", listing)
            summary.files.append("split.yaml")
    return summary


def _export_cyolo(
    piece: Any,
    work: WorkDir,
    out: Path,
    part: str,
    summary: ExportSummary,
    cache: SoundfontCache | None,
) -> list[str]:
    from msmd_builder.outputs.export_cyolo import CYOLO_FORMAT, CYOLO_VERSION, cyolo_arrays

    folder = out / part
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for performance in piece.performances:
        name = performance.performance_id
        arrays = cyolo_arrays(piece, performance)
        save_npz(
            folder / f"{name}.npz", format_name=CYOLO_FORMAT, format_version=CYOLO_VERSION, **arrays
        )
        audio, sample_rate = _audio(work, piece.piece_id, performance, len(piece.performed), cache)
        _write_wav(folder / f"{name}.wav", audio, sample_rate)
        summary.files += [f"{part}/{name}.npz", f"{part}/{name}.wav"]
        summary.performances += 1
        names.append(name)
    return names


def _export_passages(piece: Any, out: Path, summary: ExportSummary) -> str:
    from msmd_builder.outputs.export_passages import (
        PASSAGES_FORMAT,
        PASSAGES_VERSION,
        passage_arrays,
    )

    arrays = passage_arrays(piece)
    save_npz(
        out / f"{piece.piece_id}.npz",
        format_name=PASSAGES_FORMAT,
        format_version=PASSAGES_VERSION,
        **arrays,
    )
    summary.files.append(f"{piece.piece_id}.npz")
    summary.performances += len(piece.performances)
    return piece.piece_id
