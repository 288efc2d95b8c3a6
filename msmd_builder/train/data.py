"""Where the trainer's pieces come from: dataset shards, or a work directory.

The trainer consumes :class:`~msmd_builder.records.PieceRecord` objects only.
:func:`load_split` reads them from a split written by ``msmd-build dataset``
(:func:`msmd_builder.shards.open_split`); :func:`piece_from_work_dir` builds
one straight from a piece's work directory (page PNGs, ``geometry.npz``,
``alignment.npz`` and performance files), which is what the tests and quick
experiments use.  Nothing here needs torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from msmd_builder.errors import ConfigError
from msmd_builder.records import PerformanceRecord, PieceRecord

__all__ = ["load_split", "piece_from_work_dir", "PARTS"]

#: The parts of a split, as the shard writer names them.
PARTS = ("train", "valid", "test")


def load_split(
    split_dir: str | os.PathLike[str], parts: Sequence[str] = PARTS
) -> dict[str, list[PieceRecord]]:
    """Read every piece of the given parts of a dataset split.

    Parameters
    ----------
    split_dir : path-like
        A split directory written by ``msmd-build dataset``.
    parts : sequence of str, optional
        Which parts to read; a part the split lacks gives an empty list.

    Returns
    -------
    dict
        Part name -> pieces in the shard's order.
    """
    try:
        from msmd_builder.shards import open_split
    except ImportError as exc:  # the shard reader is part of the dataset stage
        raise ConfigError(f"cannot read dataset shards: {exc}") from exc
    with open_split(split_dir) as split:
        available = set(split.parts)
        return {part: list(split.iter_pieces(part)) if part in available else [] for part in parts}


def piece_from_work_dir(
    piece_dir: str | os.PathLike[str],
    performance_files: Iterable[str | os.PathLike[str]] | None = None,
    *,
    role: str | None = None,
) -> PieceRecord:
    """Assemble a :class:`PieceRecord` from ``<work>/pieces/<piece_id>/``.

    Parameters
    ----------
    piece_dir : path-like
        The piece's work directory (with ``score/`` and ``align/``).
    performance_files : iterable of path-like, optional
        Performance ``.npz`` files to attach, in this order.  Default: the
        piece's ``perform/`` directory, in the order ``perform/perform.json``
        lists them (its ``roles``; only ``role``'s when given), else by name.
    role : str, optional
        With the default files: keep only this split role's performances.

    Returns
    -------
    PieceRecord
    """
    from PIL import Image

    from msmd_builder.perform import load_performance

    root = Path(piece_dir)
    score_json = json.loads((root / "score" / "score.json").read_text(encoding="utf-8"))
    keys, pages = [], []
    for page in score_json["pages"]:
        keys.append((int(page["book"]), int(page["page"])))
        with Image.open(root / "score" / page["path"]) as image:
            pages.append(np.asarray(image.convert("L"), dtype=np.uint8))
    with np.load(root / "score" / "geometry.npz") as geometry:
        noteheads, systems = geometry["noteheads"], geometry["systems"]
    with np.load(root / "align" / "alignment.npz") as alignment:
        performed = alignment["performed"]
    if performance_files is None:
        performance_files = _default_performances(root / "perform", role)
    performances = [
        PerformanceRecord.from_performance(load_performance(p)) for p in performance_files
    ]
    return PieceRecord(
        piece_id=root.name,
        metadata={},
        page_keys=np.asarray(keys, dtype=np.int16).reshape(-1, 2),
        pages=pages,
        systems=systems,
        noteheads=noteheads,
        performed=performed,
        performances=performances,
    )


def _default_performances(perform_dir: Path, role: str | None) -> list[Path]:
    index = perform_dir / "perform.json"
    if index.is_file():
        roles: dict[str, list[str]] = json.loads(index.read_text(encoding="utf-8")).get("roles", {})
        ids = [i for r, group in roles.items() if role in (None, r) for i in group]
        return [perform_dir / f"{i}.npz" for i in dict.fromkeys(ids)]
    if role is not None:
        raise ConfigError(f"{perform_dir}: no perform.json to select role {role!r} from")
    return sorted(perform_dir.glob("*.npz"))
