"""Run the stages of one piece in a test, without the orchestrator's fallback or reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msmd_builder.core.workdir import PieceDir
from msmd_builder.pipeline.settings import build_settings
from msmd_builder.stages import stages_until
from msmd_builder.stages.corpus.index import PieceEntry, find_piece
from msmd_builder.stages.corpus.scan import scan_corpus


def entry_of(root: Path, main_file: str, includes: tuple[str, ...] = ()) -> PieceEntry:
    """Return an index entry for ``main_file`` under ``root`` as the scan would name it.

    Test pieces need no Mutopia header: the entry is made directly (id from the
    path, the given includes), not by scanning.
    """
    parts = Path(main_file).parts  # ftp/<Composer>/<Opus>/.../<stem>.ly
    piece_id = f"{parts[1]}__{parts[2]}__{Path(main_file).stem}"
    return PieceEntry(
        piece_id=piece_id,
        main_file=main_file,
        composer_dir=parts[1],
        opus_dir=parts[2],
        includes=tuple(includes),
        include_sha256=(),
        source_sha256="",
        title="",
        composer="",
        opus="",
        instrument="",
        style="",
        license="",
        lilypond_version="",
        encoding_ok=True,
        is_keyboard=True,
        selection_reason="test",
        problems=(),
    )


def run_stages(
    root: Path, main_file: str, work: Path, until: str, *, force: bool = False, **options: Any
) -> Any:
    """Run the stages of one piece up to ``until`` and return that stage's record.

    ``options`` are those of :func:`msmd_builder.pipeline.settings.build_settings`;
    a stage's :class:`~msmd_builder.core.errors.PieceError` is raised as it is.
    """
    entry = entry_of(root, main_file)
    settings = build_settings(work, root, until=until, **options)
    piece_dir = PieceDir.of(work, entry.piece_id)
    record: Any = entry
    for stage in stages_until(until):
        record = stage.run(record, settings.of(stage.name), piece_dir, force=force)
    return record


def run_piece_stages(root: Path, piece_id: str, work: Path, until: str, **options: Any) -> Any:
    """:func:`run_stages` for a piece given by id."""
    entry = find_piece(scan_corpus(root), piece_id)
    assert entry is not None, piece_id
    return run_stages(root, entry.main_file, work, until, **options)
