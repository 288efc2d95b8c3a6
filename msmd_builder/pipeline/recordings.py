"""A dataset build's recordings: align each to its piece and list exactly these in the pieces."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from typing import Any

from msmd_builder.core.errors import NotBuiltError, PieceError, RecordingError
from msmd_builder.core.workdir import WorkDir
from msmd_builder.stages.recordings.inputs import RecordingRequest

__all__ = ["align_dataset_recordings"]


def align_dataset_recordings(
    requests: Sequence[RecordingRequest],
    *,
    work_dir: str,
    built_ids: Collection[str],
    settings: Any,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Align a build's recordings and list them, and only them, in their pieces.

    Each recording of a built piece is aligned
    (:func:`~msmd_builder.stages.recordings.stage.align_recording`, cached);
    then every built piece's ``perform.json`` lists exactly the recordings of
    this build that aligned (none for the others), so the shards hold what
    the build was given.  A recording that fails -- unreadable, silent, of
    another piece, of a piece that did not build -- is reported and leaves
    everything else as it is.

    Parameters
    ----------
    requests : sequence of RecordingRequest
        The recordings (:func:`~msmd_builder.stages.recordings.inputs.read_recordings`).
    work_dir : str
        The build's work directory.
    built_ids : collection of str
        The pieces that built.
    settings : RecordingSettings
        How to align.
    on_done : callable, optional
        Called with each report row.

    Returns
    -------
    list of dict
        One row per recording, in request order: ``piece_id``, ``file``,
        ``role``, ``status`` (``ok`` or ``failed``), and the chosen playing
        order, its cost, every order's cost, the confidence and the seconds
        (``ok``) or ``error_class`` and ``message`` (``failed``).
    """
    from msmd_builder.stages.perform.listing import list_recordings
    from msmd_builder.stages.recordings.stage import align_recording, recording_id

    work = WorkDir(work_dir)
    rows: list[dict[str, Any]] = []
    listed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    taken: dict[str, str] = {}  # performance id -> the file that has it
    for request in requests:
        row: dict[str, Any] = {
            "piece_id": request.piece_id,
            "file": request.path.name,
            "role": request.role,
        }
        started = time.perf_counter()
        try:
            if not request.piece_id:
                raise NotBuiltError(request.path.name, "its file name names no piece of the index")
            if request.piece_id not in built_ids:
                raise NotBuiltError(request.piece_id, "the piece is not among the built pieces")
            performance_id = recording_id(request.piece_id, request.path)
            if taken.setdefault(performance_id, str(request.path)) != str(request.path):
                raise RecordingError(
                    f"{request.path} would be stored as {performance_id}, like "
                    f"{taken[performance_id]}: give the files different names"
                )
            piece_dir = work.piece(request.piece_id)
            result = align_recording(piece_dir, request.path, settings, register=False)
            entry = result.entry(request.role, _align_key(piece_dir))
            listed[request.piece_id].append(entry)
            row.update(
                status="ok",
                performance_id=result.performance_id,
                cached=result.skipped,
                **result.report(),
            )
        except PieceError as exc:
            row.update(status="failed", error_class=exc.error_class, message=exc.message)
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
        if on_done is not None:
            on_done(row)
    for piece_id in sorted(built_ids):
        piece_dir = work.piece(piece_id)
        if piece_dir.perform_record.is_file():
            list_recordings(piece_dir, listed.get(piece_id, []), replace=True)
    return rows


def _align_key(piece_dir: Any) -> str:
    from msmd_builder.core.cache import read_json

    return str(read_json(piece_dir.align_record)["cache_key"])
