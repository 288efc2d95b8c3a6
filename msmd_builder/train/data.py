"""Where the trainer's pieces come from: dataset shards, or a work directory.

The trainer consumes :class:`~msmd_builder.core.records.PieceRecord` objects only.
:func:`load_split` reads them from a split written by ``msmd-build dataset``
(:func:`msmd_builder.dataset.reader.open_split`); :func:`piece_from_work_dir` builds
one straight from a piece's work directory through the built-piece reader
(:class:`msmd_builder.dataset.built.BuiltPiece`), which is what the tests and
quick experiments use.  Nothing here needs torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from msmd_builder.core.records import PieceRecord
from msmd_builder.core.workdir import PieceDir
from msmd_builder.dataset.built import BuiltPiece

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
    from msmd_builder.dataset.reader import open_split

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

    Reads through :class:`~msmd_builder.dataset.built.BuiltPiece`, the one
    reader of a built piece, so missing or stale files raise its
    :class:`~msmd_builder.core.errors.NotBuiltError`.

    Parameters
    ----------
    piece_dir : path-like
        The piece's work directory (with ``score/`` and ``align/``).
    performance_files : iterable of path-like, optional
        Performance ``.npz`` files to attach, in this order (checked for format
        and event count).  Default: the performances ``perform/perform.json``
        lists for ``role`` (every role's when None), checked against its keys.
    role : str, optional
        With the default files: keep only this split role's performances.

    Returns
    -------
    PieceRecord
        With empty metadata.
    """
    folder = Path(piece_dir)
    built = BuiltPiece.open(
        PieceDir(folder, folder.name), need_performances=performance_files is None
    )
    return built.record(role, performance_files=performance_files)
