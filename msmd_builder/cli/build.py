"""Building: ``corpus scan``, ``corpus render``, ``piece`` and ``dataset``."""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from msmd_builder.cli.main import console, main
from msmd_builder.cli.options import (
    FORCE_OPTION,
    LIMIT_OPTION,
    PIECES_OPTION,
    RECORDINGS_OPTION,
    RECORDINGS_REPEATS_OPTION,
    REPEATS_OPTION,
    STRICT_REPEATS_OPTION,
    TIMEOUT_OPTION,
    WORK_DIR_OPTION,
    WORKERS_OPTION,
    confinement_options,
)
from msmd_builder.core.workdir import WorkDir
from msmd_builder.stages.perform.fluidsynth import INTERPOLATION, SynthSettings

__all__ = ["corpus", "corpus_scan", "corpus_render", "piece_command", "dataset_command"]


@main.group()
def corpus() -> None:
    """Scan a Mutopia checkout and process its pieces."""


@corpus.command("scan")
@click.argument("mutopia_root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@WORK_DIR_OPTION
@click.option("--quiet", is_flag=True, help="Print only the one-line total.")
def corpus_scan(mutopia_root: Path, work_dir: Path, quiet: bool) -> None:
    """Find every piece under MUTOPIA_ROOT and write WORK_DIR/index.csv.

    MUTOPIA_ROOT is the folder that holds Mutopia's ``ftp/`` tree (a clone of
    the MutopiaProject repository, or ``examples/`` of this project).  The
    index lists every piece with its header, includes, hashes and whether it
    is a solo keyboard piece; a summary is printed.
    """
    from msmd_builder.stages.corpus.index import select_keyboard
    from msmd_builder.stages.corpus.scan import scan_into, summarize

    wd = WorkDir(work_dir)
    started = time.perf_counter()
    entries = scan_into(wd, mutopia_root, progress=not quiet)
    keyboard = select_keyboard(entries)
    if not quiet:
        click.echo(summarize(entries))
    click.echo(
        f"{len(entries)} pieces, {len(keyboard)} solo keyboard, index written to {wd.index} "
        f"({time.perf_counter() - started:.1f} s)"
    )


@corpus.command("render")
@WORK_DIR_OPTION
@WORKERS_OPTION
@PIECES_OPTION
@LIMIT_OPTION
@click.option("--all-pieces", is_flag=True, help="Also pieces that are not solo keyboard.")
@TIMEOUT_OPTION
@FORCE_OPTION
@click.option(
    "--until",
    type=click.Choice(["normalize", "render", "score", "align", "perform"]),
    default="align",
    show_default=True,
    help="Last stage to run (perform: synthesize performances and spectrograms too).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the performance plans."
)
@REPEATS_OPTION
@STRICT_REPEATS_OPTION
@confinement_options
def corpus_render(
    work_dir: Path,
    workers: int,
    piece_ids: tuple[str, ...],
    limit: int | None,
    all_pieces: bool,
    timeout_sec: float,
    force: bool,
    until: str,
    seed: int,
    repeats: str,
    strict_repeats: bool,
    sandbox: str,
    cpu_sec: float,
    memory_mb: int,
) -> None:
    """Normalize, render, lay out and align the indexed pieces.

    Per piece: sources copied and upgraded (normalize), PDF and unfolded MIDI
    (render), page PNGs and notehead/system tables checked against the PDF's
    links (score), every MIDI note linked to its notehead (align).  Writes
    per-piece outputs under WORK_DIR/pieces/<id>/ and a report to
    WORK_DIR/reports/render.{md,json} with each piece's outcome, error class
    and seconds.  Cached pieces are skipped, so a rerun only does what changed.
    """
    from msmd_builder.pipeline.report import write_report
    from msmd_builder.pipeline.settings import build_settings
    from msmd_builder.stages.corpus.index import corpus_root, index_entries, select_pieces

    wd = WorkDir(work_dir)
    entries = select_pieces(index_entries(wd), piece_ids, limit=limit, all_pieces=all_pieces)
    settings = build_settings(
        work_dir,
        corpus_root(wd),
        timeout_sec=timeout_sec,
        force=force,
        until=until,
        seed=seed,
        repeats=repeats,
        repeats_fallback=not strict_repeats,
        sandbox=sandbox,
        cpu_sec=cpu_sec,
        memory_mb=memory_mb,
    )
    started = time.perf_counter()
    outcomes = _run_with_progress(entries, settings, workers)
    wall = time.perf_counter() - started
    json_path, md_path = write_report(
        outcomes, out_dir=wd.reports, name="render", wall_seconds=wall, workers=workers
    )
    counts = Counter(o.status for o in outcomes)
    classes = Counter(o.error_class for o in outcomes if o.status == "failed")
    click.echo(
        f"{len(outcomes)} pieces in {wall:.1f} s: {counts.get('ok', 0)} ok, "
        f"{counts.get('degraded', 0)} degraded, {counts.get('failed', 0)} failed"
        + (f" ({', '.join(f'{k}: {v}' for k, v in classes.most_common())})" if classes else "")
    )
    click.echo(f"report: {md_path}")


@main.command("piece")
@click.argument("piece_id")
@WORK_DIR_OPTION
@click.option(
    "--mutopia-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Scan this checkout first if the work directory has no index yet.",
)
@TIMEOUT_OPTION
@FORCE_OPTION
@confinement_options
def piece_command(
    piece_id: str,
    work_dir: Path,
    mutopia_root: Path | None,
    timeout_sec: float,
    force: bool,
    sandbox: str,
    cpu_sec: float,
    memory_mb: int,
) -> None:
    """Build one piece (PIECE_ID as in the index, e.g. BachJS__BWV846__wtk1-prelude1).

    Prints the piece's outcome as JSON; outputs are in WORK_DIR/pieces/PIECE_ID/.
    Exits with status 1 when the piece fails.
    """
    from msmd_builder.pipeline.run import preflight, process_piece
    from msmd_builder.pipeline.settings import build_settings
    from msmd_builder.stages.corpus.index import corpus_root, find_piece, index_entries
    from msmd_builder.stages.corpus.scan import scan_into

    wd = WorkDir(work_dir)
    if mutopia_root is not None and not wd.index.exists():
        scan_into(wd, mutopia_root)
    entry = find_piece(index_entries(wd), piece_id)
    if entry is None:
        raise click.BadParameter(f"{piece_id!r} is not in {wd.index}", param_hint="PIECE_ID")
    settings = build_settings(
        work_dir,
        corpus_root(wd),
        timeout_sec=timeout_sec,
        force=force,
        sandbox=sandbox,
        cpu_sec=cpu_sec,
        memory_mb=memory_mb,
    )
    preflight(settings)
    outcome = process_piece(entry, settings)
    click.echo(json.dumps(asdict(outcome), indent=2))
    if outcome.status == "failed":
        raise SystemExit(1)


def _run_with_progress(entries, settings, workers, dask_scheduler=None, dataset=None):  # noqa: ANN001, ANN202 - CLI glue
    """Run the pieces (or a whole dataset build) under a rich progress bar."""
    from msmd_builder.pipeline.run import preflight

    preflight(settings)  # a missing tool stops the run before the progress bar shows
    from msmd_builder.pipeline.dataset import build_dataset
    from msmd_builder.pipeline.run import run_pieces

    counts: Counter[str] = Counter()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ok {task.fields[ok]}  failed {task.fields[failed]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("pieces", total=len(entries), ok=0, failed=0)

        def on_done(outcome) -> None:  # noqa: ANN001
            counts["failed" if outcome.status == "failed" else "ok"] += 1
            progress.update(task, advance=1, ok=counts["ok"], failed=counts["failed"])

        def on_phase(name: str) -> None:
            progress.update(task, description=name)

        if dataset is None:
            return run_pieces(
                entries, settings, workers=workers, dask_scheduler=dask_scheduler, on_done=on_done
            )
        return build_dataset(
            entries,
            settings,
            dataset,
            workers=workers,
            dask_scheduler=dask_scheduler,
            on_done=on_done,
            on_phase=on_phase,
        )


@main.command("dataset")
@click.argument(
    "mutopia_root",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@WORK_DIR_OPTION
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dataset"),
    show_default=True,
    help="Output folder: shards per split, split files, report.",
)
@WORKERS_OPTION
@click.option(
    "--dask-scheduler",
    metavar="ADDRESS",
    help="Run the per-piece tasks on this Dask distributed scheduler (tcp://host:8786) "
    "instead of local processes; WORK_DIR and the corpus must be on a shared filesystem.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of plans and splits.")
@click.option(
    "--splits",
    "recipes",
    default="all,bach-only,bach-out",
    show_default=True,
    help="Split recipes to draw from the built pieces, comma-separated "
    "(all, bach-only, bach-out); empty for none.",
)
@click.option(
    "--leave-out",
    multiple=True,
    metavar="COMPOSER",
    help="Also a split that holds this composer out for test (e.g. MozartWA); repeatable.",
)
@click.option(
    "--split-file",
    "split_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also import this piece list (MSMD's YAML layout); repeatable.",
)
@click.option(
    "--performance-recipe",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML performance recipe (see docs/performances.md); default MSMD's.",
)
@click.option(
    "--humanize", is_flag=True, help="Use the humanized recipe (tempo curves, dynamics, pedal)."
)
@click.option(
    "--tempo-robustness",
    is_flag=True,
    help="Also render the test pieces at 0.5, 0.66, 1, 1.33 and 2 times their tempo with the "
    "held-out soundfont: the test performances of the 2019 paper's tempo-robustness "
    "evaluation (msmd-build evaluate).",
)
@click.option(
    "--reference-soundfont",
    metavar="NAME",
    help="Render the reference performance of train/valid pieces (tempo 1.0, the only one "
    "of training without audio augmentation) with this training soundfont instead of the "
    "first in soundfonts.txt; fluidr3-electric-piano is MSMD's and the 2018 paper's.",
)
@click.option("--keep-audio", is_flag=True, help="Also keep every performance as FLAC.")
@click.option(
    "--verify-onsets",
    type=click.Choice(["all", "reference", "none"]),
    default="reference",
    show_default=True,
    help="Which performances get the independent audio onset check.",
)
@click.option(
    "--synth-interpolation",
    type=click.Choice(list(INTERPOLATION)),
    default=SynthSettings().interpolation,
    show_default=True,
    help="FluidSynth's sample interpolation; 4th-order is its default and MSMD's. Others "
    "change the audio slightly (docs/performances.md measures how much and what they save).",
)
@click.option(
    "--synth-effects",
    type=click.Choice(["reverb+chorus", "reverb", "none"]),
    default="reverb+chorus",
    show_default=True,
    help="FluidSynth's effect units; both on is MSMD's. The grand-piano presets send "
    "nothing to the chorus, so 'reverb' changes only the electric-piano renderings; 'none' "
    "also drops the reverb.",
)
@click.option(
    "--all-roles",
    is_flag=True,
    help="Synthesize every split role's performances of every piece (7 training and 1 "
    "held-out rendering with MSMD's recipe), not only those of the roles the requested "
    "splits give it; for drawing other splits later without synthesizing.",
)
@click.option(
    "--max-shard-mb",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Largest shard file, MiB.",
)
@RECORDINGS_OPTION
@RECORDINGS_REPEATS_OPTION
@PIECES_OPTION
@LIMIT_OPTION
@REPEATS_OPTION
@STRICT_REPEATS_OPTION
@TIMEOUT_OPTION
@FORCE_OPTION
@confinement_options
def dataset_command(
    mutopia_root: Path | None,
    work_dir: Path,
    out: Path,
    workers: int,
    dask_scheduler: str | None,
    seed: int,
    recipes: str,
    leave_out: tuple[str, ...],
    split_files: tuple[Path, ...],
    performance_recipe: Path | None,
    humanize: bool,
    tempo_robustness: bool,
    reference_soundfont: str | None,
    keep_audio: bool,
    verify_onsets: str,
    synth_interpolation: str,
    synth_effects: str,
    all_roles: bool,
    max_shard_mb: int,
    recordings: Path | None,
    recording_repeats: str,
    piece_ids: tuple[str, ...],
    limit: int | None,
    repeats: str,
    strict_repeats: bool,
    timeout_sec: float,
    force: bool,
    sandbox: str,
    cpu_sec: float,
    memory_mb: int,
) -> None:
    """Build the dataset: every stage of every solo keyboard piece, then splits and shards.

    \b
    1. scan MUTOPIA_ROOT (when given, or when WORK_DIR has no index yet)
    2. per piece: normalize, render (LilyPond), score geometry, alignment,
       performances (FluidSynth) and spectrograms of the split roles the
       requested splits give the piece (--all-roles: every role), cached
       under WORK_DIR
    3. splits drawn from the built pieces with --seed (and imported lists);
       a piece that a failed piece moved into another role gets that
       role's performances
    4. with --recordings: each recording aligned to its piece and added to
       it as a performance (role test unless the CSV says otherwise)
    5. HDF5 shards OUT/<split>/<part>-NNNNN.h5 with a manifest per split
    6. report OUT/report.{md,json}: outcome of every piece, seconds per
       stage, MSMD's Table 1 figures for every split, every recording's
       playing order, cost and confidence

    A rerun with nothing changed only checks the caches; a killed build
    resumes where it stopped.
    """
    from msmd_builder.pipeline.dataset import DatasetOptions
    from msmd_builder.pipeline.settings import build_settings
    from msmd_builder.stages.corpus.index import corpus_root, index_entries, select_pieces
    from msmd_builder.stages.corpus.scan import scan_into
    from msmd_builder.stages.perform.plans import choose_recipe

    wd = WorkDir(work_dir)
    if mutopia_root is not None:
        scan_into(wd, mutopia_root, if_changed=True)
    entries = select_pieces(index_entries(wd), piece_ids, limit=limit)
    recipe = choose_recipe(
        recipe_file=performance_recipe,
        humanize=humanize,
        tempo_robustness=tempo_robustness,
        reference_soundfont=reference_soundfont,
    )
    settings = build_settings(
        work_dir,
        corpus_root(wd),
        timeout_sec=timeout_sec,
        force=force,
        until="perform",
        seed=seed,
        recipe=recipe,
        keep_audio=keep_audio,
        verify_onsets=verify_onsets,
        synth=SynthSettings(
            interpolation=synth_interpolation,
            reverb=synth_effects != "none",
            chorus=synth_effects == "reverb+chorus",
        ),
        repeats=repeats,
        repeats_fallback=not strict_repeats,
        sandbox=sandbox,
        cpu_sec=cpu_sec,
        memory_mb=memory_mb,
    )
    requests: tuple = ()
    if recordings is not None:
        from msmd_builder.stages.recordings.inputs import read_recordings

        requests = tuple(read_recordings(recordings, [e.piece_id for e in index_entries(wd)]))
    from msmd_builder.stages.recordings.stage import RecordingSettings

    options = DatasetOptions(
        out_dir=str(out.resolve()),
        recipes=tuple(r.strip() for r in recipes.split(",") if r.strip()),
        leave_out=leave_out,
        split_files=tuple(str(p.resolve()) for p in split_files),
        max_shard_bytes=max_shard_mb << 20,
        recordings=requests,
        recording_settings=RecordingSettings(repeats=recording_repeats),
        all_roles=all_roles,
    )
    from msmd_builder.pipeline import glance
    from msmd_builder.pipeline.run import preflight

    ignored = {"workers", "dask_scheduler", "force"}  # they do not change what is built
    request = {
        name: value
        for name, value in click.get_current_context().params.items()
        if name not in ignored
    }
    stamp_of = functools.partial(
        glance.build_stamp,
        {**request, "settings": repr(settings), "options": repr(options)},
        work_dir=work_dir,
        out_dir=out,
        corpus_root=corpus_root(wd),
        entries=entries,
        inputs=[*split_files, *([recordings] if recordings is not None else [])],
    )
    if not force:
        preflight(settings)  # a missing tool or a changed soundfont still stops the run
        if glance.is_unchanged(out, stamp_of()):
            click.echo(
                f"nothing changed since the last complete build of {out} "
                f"({len(entries)} pieces); report: {out / 'report.md'}"
            )
            return
    glance.remove_stamp(out)
    result = _run_with_progress(entries, settings, workers, dask_scheduler, options)
    if not any(
        o.status == "failed" and o.error_class in glance.TRANSIENT_CLASSES for o in result.outcomes
    ):
        glance.store_stamp(out, stamp_of())
    counts = Counter(o.status for o in result.outcomes)
    click.echo(
        f"{len(result.outcomes)} pieces in {result.wall_seconds:.1f} s: {counts.get('ok', 0)} ok, "
        f"{counts.get('degraded', 0)} degraded, {counts.get('failed', 0)} failed"
    )
    for name, split in result.splits.items():
        sizes = ", ".join(f"{part} {n}" for part, n in split.counts().items() if n)
        click.echo(f"split {name}: {sizes} -> {out / name}")
    for name, reason in result.skipped_splits.items():
        click.echo(f"split {name} skipped: {reason}")
    for imported in result.imports.values():
        click.echo(imported.summary().splitlines()[0])
    if requests:
        rows = json.loads(result.report_json.read_text(encoding="utf-8"))["summary"]["recordings"]
        aligned = sum(1 for row in rows if row["status"] == "ok")
        click.echo(f"recordings: {aligned} of {len(rows)} aligned (see the report)")
    click.echo(f"report: {result.report_markdown}")
