"""The whole dataset: every piece through every stage, then splits, shards and the report."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msmd_builder.core.errors import ConfigError
from msmd_builder.dataset.manifest import ROLES
from msmd_builder.lilypond.tools import lilypond_version
from msmd_builder.pipeline.report import write_report
from msmd_builder.pipeline.run import PieceOutcome, run_pieces
from msmd_builder.pipeline.settings import BuildSettings
from msmd_builder.stages.corpus.index import PieceEntry
from msmd_builder.stages.perform.fluidsynth import SynthSettings

__all__ = ["DatasetOptions", "DatasetResult", "build_dataset"]


@dataclass(frozen=True)
class DatasetOptions:
    """What a dataset build writes besides the per-piece outputs.

    Attributes
    ----------
    out_dir : str
        Folder of the shards (``<out_dir>/<split>/<part>-NNNNN.h5``), the
        split files (``<out_dir>/splits/<split>.yaml``) and the report.
    recipes : tuple of str
        Split recipes to draw from the built pieces (``all``, ``bach-only``,
        ``bach-out``); a recipe with no pieces to draw from is skipped and
        reported.
    leave_out : tuple of str
        Composers (directory names such as ``MozartWA``) for extra
        leave-one-composer-out splits.
    split_files : tuple of str
        Existing piece lists to import (MSMD's YAML layout).
    max_shard_bytes : int
        Upper bound of one shard file.
    recordings : tuple of RecordingRequest
        Recordings to align and add to their pieces as performances
        (:func:`~msmd_builder.stages.recordings.inputs.read_recordings`).
    recording_settings : RecordingSettings or None
        How to align them; default
        :class:`~msmd_builder.stages.recordings.stage.RecordingSettings`.
    all_roles : bool
        Synthesize every split role's performances of every piece, not only
        those of the roles the requested splits give it (so that other
        splits can be drawn later without synthesizing).  A build that
        requests no split at all synthesizes every role anyway.
    """

    out_dir: str
    recipes: tuple[str, ...] = ("all", "bach-only", "bach-out")
    leave_out: tuple[str, ...] = ()
    split_files: tuple[str, ...] = ()
    max_shard_bytes: int = 1 << 30
    recordings: tuple[Any, ...] = ()
    recording_settings: Any = None
    all_roles: bool = False


@dataclass(frozen=True)
class DatasetResult:
    """What :func:`build_dataset` did."""

    outcomes: list[PieceOutcome]
    splits: dict[str, Any]
    imports: dict[str, Any]
    manifests: dict[str, Any]
    skipped_splits: dict[str, str]
    report_json: Path
    report_markdown: Path
    wall_seconds: float


def build_dataset(
    entries: Sequence[PieceEntry],
    settings: BuildSettings,
    options: DatasetOptions,
    *,
    workers: int = 1,
    dask_scheduler: str | None = None,
    on_done: Callable[[PieceOutcome], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> DatasetResult:
    """Build the dataset: every piece through every stage, recordings, splits, shards, report.

    Each step is cached (per-piece stages by content keys, shards by a key
    of their inputs), so a rerun with nothing changed only checks, and a
    killed build resumes.  Splits are drawn from the pieces that built, with
    the build's seed, so two builds of the same corpus and seed agree.

    Parameters
    ----------
    entries : sequence of PieceEntry
        The pieces (normally the keyboard selection of the index).
    settings : BuildSettings
        Per-piece settings; ``until`` is taken as ``perform``.
    options : DatasetOptions
        Splits and shards.
    workers, dask_scheduler, on_done
        As in :func:`run_pieces`.
    on_phase : callable, optional
        Called with ``"recordings"``, ``"splits"``, ``"pack"``, ``"shards <split>"``
        and ``"report"`` as the build reaches them (for progress display).
    """
    from dataclasses import replace

    from msmd_builder.stages.shards import pack_pieces, write_shards
    from msmd_builder.stages.splits.split import PARTS, write_split
    from msmd_builder.stages.splits.table1 import MSMD_TABLE1, split_statistics, table1_document

    started = time.perf_counter()
    phase = on_phase or (lambda _name: None)
    settings = replace(settings, until="perform")
    if options.recordings:
        from msmd_builder.stages.recordings.stage import preflight as recordings_preflight

        recordings_preflight()  # before any piece: a missing library stops the run
    out = Path(options.out_dir)
    wanted = [(recipe, None) for recipe in options.recipes]
    wanted += [("leave-out", composer) for composer in options.leave_out]
    every_role = options.all_roles or not (wanted or options.split_files)

    def draw(built_ids: set[str], failed: Mapping[str, tuple[str, str]]) -> _Drawn:
        return _draw_splits(entries, built_ids, failed, wanted, options.split_files, settings)

    # The roles each piece has in the splits as they would be drawn if every
    # piece built; after the build, the splits are drawn from the pieces that
    # did, and a piece that moved into a role it was not performed for gets
    # those performances then (the stages before perform are cached).
    performed: dict[str, tuple[str, ...]] | None = None
    if not every_role:
        roles = draw({e.piece_id for e in entries}, {}).roles()
        performed = {e.piece_id: roles.get(e.piece_id, ()) for e in entries}
    outcomes = run_pieces(
        entries,
        settings,
        workers=workers,
        dask_scheduler=dask_scheduler,
        on_done=on_done,
        perform_roles=performed,
    )
    by_id = {o.piece_id: o for o in outcomes}
    phase_seconds = {"pieces": time.perf_counter() - started}
    top_ups = 0
    while True:
        built_ids = {i for i, o in by_id.items() if o.status != "failed"}
        failed = {i: (o.error_class, o.message) for i, o in by_id.items() if o.status == "failed"}
        drawn = draw(built_ids, failed)
        if performed is None:
            break
        short = {
            piece_id: tuple(r for r in ROLES if r in {*roles, *performed.get(piece_id, ())})
            for piece_id, roles in drawn.roles().items()
            if piece_id in built_ids and not set(roles) <= set(performed.get(piece_id, ()))
        }
        if not short:
            break
        phase("performances of new roles")
        top_ups += len(short)
        performed.update(short)
        more = run_pieces(
            [e for e in entries if e.piece_id in short],
            settings,
            workers=workers,
            dask_scheduler=dask_scheduler,
            perform_roles=performed,
        )
        for outcome in more:
            by_id[outcome.piece_id] = _merged(by_id[outcome.piece_id], outcome)
    outcomes = [by_id[e.piece_id] for e in entries]
    phase_seconds["pieces"] = time.perf_counter() - started

    phase("recordings")
    mark = time.perf_counter()
    recordings = _recordings(options, settings.work_dir, built_ids)
    phase_seconds["recordings"] = time.perf_counter() - mark

    phase("splits")
    mark = time.perf_counter()
    splits, imports, skipped = drawn.splits, drawn.imports, drawn.skipped
    for name, split in splits.items():
        write_split(split, out / "splits" / f"{name}.yaml")
    phase_seconds["splits"] = time.perf_counter() - mark

    build_info = {
        "msmd_builder": _package_version(),
        "lilypond": lilypond_version(),
        "seed": settings.perform.seed,
        "recipe": settings.perform.recipe.to_dict(),
        "page_width_px": settings.score.page_width_px,
        "repeats": settings.render.repeats,
    }
    if settings.perform.synth != SynthSettings():  # absent: MSMD's FluidSynth settings
        build_info["synthesis"] = settings.perform.synth.to_dict()
    manifests: dict[str, Any] = {}
    mark = time.perf_counter()
    phase("pack")
    pack_pieces(
        [{part: list(ids) for part, ids in split.parts.items()} for split in splits.values()],
        work_dir=settings.work_dir,
        workers=workers if dask_scheduler is None else 1,
    )
    phase_seconds["pack"] = time.perf_counter() - mark
    mark = time.perf_counter()
    for name, split in splits.items():
        phase(f"shards {name}")
        parts = {part: list(split.parts.get(part, ())) for part in PARTS}
        manifests[name] = write_shards(
            name,
            parts,
            work_dir=settings.work_dir,
            out_dir=out,
            max_shard_bytes=options.max_shard_bytes,
            build_info=build_info,
        )
    phase_seconds["shards"] = time.perf_counter() - mark

    phase("report")
    stats = {
        o.piece_id: o.details["alignment"]
        for o in outcomes
        if o.status != "failed" and isinstance(o.details.get("alignment"), dict)
    }
    table1 = table1_document(
        {name: split_statistics(split, stats) for name, split in splits.items()}
    )
    extra = {
        "seed": settings.perform.seed,
        "splits": {name: split.counts() for name, split in splits.items()},
        "skipped_splits": skipped,
        "imports": {
            name: {
                "resolved": imp.resolved,
                "listed": len(imp.listed.piece_ids()),
                "missing": [m.describe() for m in imp.missing],
            }
            for name, imp in imports.items()
        },
        "table1": table1,
        "msmd_table1": table1_document(MSMD_TABLE1),
        "shards": {name: _manifest_summary(m) for name, m in manifests.items()},
        "recordings": recordings,
        "performed_roles": "every role" if performed is None else "the splits' roles",
        "pieces_performed_again_for_new_roles": top_ups,
        "phase_seconds": {k: round(v, 2) for k, v in phase_seconds.items()},
    }
    wall = time.perf_counter() - started
    json_path, md_path = write_report(
        outcomes,
        out_dir=out,
        name="report",
        wall_seconds=wall,
        workers=workers,
        extra_summary=extra,
        title="Dataset build report",
        pieces_wall_seconds=phase_seconds["pieces"],
    )
    return DatasetResult(outcomes, splits, imports, manifests, skipped, json_path, md_path, wall)


@dataclass(frozen=True)
class _Drawn:
    """The splits drawn from a set of built pieces, the imported lists and the skipped recipes."""

    splits: dict[str, Any]
    imports: dict[str, Any]
    skipped: dict[str, str]

    def roles(self) -> dict[str, tuple[str, ...]]:
        """Piece id -> the split roles it has in at least one split, in plan order."""
        from msmd_builder.stages.shards import part_role

        roles: dict[str, set[str]] = {}
        for split in self.splits.values():
            for part, ids in split.parts.items():
                for piece_id in ids:
                    roles.setdefault(piece_id, set()).add(part_role(part))
        return {i: tuple(r for r in ROLES if r in got) for i, got in roles.items()}


def _draw_splits(
    entries: Sequence[PieceEntry],
    built_ids: set[str],
    failed: Mapping[str, tuple[str, str]],
    wanted: Sequence[tuple[str, str | None]],
    split_files: Sequence[str],
    settings: BuildSettings,
) -> _Drawn:
    """Draw the recipes' splits from ``built_ids`` with the build's seed, and import the lists."""
    from dataclasses import replace

    from msmd_builder.stages.splits.imports import import_split
    from msmd_builder.stages.splits.recipes import make_split

    built = [e for e in entries if e.piece_id in built_ids]
    splits: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for recipe, composer in wanted:
        label = recipe if composer is None else f"{composer}-out"
        try:
            split = make_split(built, recipe, seed=settings.perform.seed, leave_out=composer)
        except ConfigError as exc:
            skipped[label] = str(exc)
            continue
        if not split.parts.get("train") or not split.parts.get("test"):
            skipped[label] = "no pieces for its train or test part among the built pieces"
            continue
        splits[split.name] = split
    imports: dict[str, Any] = {}
    for path in split_files:
        imported = import_split(path, available_ids=built_ids, index=entries, failed=failed)
        name = Path(path).stem
        imports[name] = imported
        splits[name] = replace(imported.split, name=name)
    return _Drawn(splits, imports, skipped)


def _merged(first: PieceOutcome, again: PieceOutcome) -> PieceOutcome:
    """One piece's outcome over two passes: the second's result, both passes' seconds."""
    from dataclasses import replace

    seconds = dict(first.seconds)
    for stage, sec in again.seconds.items():
        seconds[stage] = seconds.get(stage, 0.0) + sec
    details = {**first.details, **again.details}
    rss = [o.details.get("worker_max_rss_mb") for o in (first, again)]
    if all(isinstance(mb, (int, float)) for mb in rss):
        details["worker_max_rss_mb"] = max(rss)  # type: ignore[type-var]
    return replace(again, seconds=seconds, details=details)


def _recordings(options: DatasetOptions, work_dir: str, built_ids: set[str]) -> list:
    """Align the build's recordings (and clear the recordings of earlier builds)."""
    from msmd_builder.pipeline.recordings import align_dataset_recordings
    from msmd_builder.stages.recordings.stage import RecordingSettings

    settings = options.recording_settings or RecordingSettings()
    return align_dataset_recordings(
        options.recordings, work_dir=work_dir, built_ids=built_ids, settings=settings
    )


def _package_version() -> str:
    from msmd_builder import __version__

    return __version__


def _manifest_summary(manifest: Any) -> dict[str, Any]:
    """Files, bytes and counts per part of a shard manifest, for the report."""
    document = manifest.to_dict()
    parts = {}
    for name, part in document.get("parts", {}).items():
        files = part.get("files", [])
        parts[name] = {
            "files": len(files),
            "bytes": sum(int(f.get("size", 0)) for f in files),
            "counts": part.get("counts", {}),
        }
    return {"parts": parts}
