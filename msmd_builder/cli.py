"""The ``msmd-build`` command line: thin click wrappers around the stage functions."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from msmd_builder import __version__
from msmd_builder.cache import atomic_write_json
from msmd_builder.errors import MsmdError
from msmd_builder.render import DEFAULT_TIMEOUT_SEC
from msmd_builder.train import CONTEXTS, MODEL_NAMES, PRECISIONS  # constants only, no torch

__all__ = ["main"]

console = Console(stderr=True)

WORK_DIR_OPTION = click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("work"),
    show_default=True,
    help="Build work directory (index, per-piece outputs, reports).",
)


TIMEOUT_OPTION = click.option(
    "--timeout",
    "timeout_sec",
    type=float,
    default=DEFAULT_TIMEOUT_SEC,
    show_default=True,
    help="Per-piece LilyPond time limit, seconds; a hang past it is killed and reported.",
)

FORCE_OPTION = click.option(
    "--force", is_flag=True, help="Ignore cached results and redo every stage."
)


STRICT_REPEATS_OPTION = click.option(
    "--strict-repeats",
    is_flag=True,
    help="Fail a piece whose unfolded performance leaves reading order or whose written "
    "jump does not read into one playing order, instead of building it in printed "
    "order (flagged in the report).",
)

REPEATS_OPTION = click.option(
    "--repeats",
    type=click.Choice(["unfolded", "folded"]),
    default="unfolded",
    show_default=True,
    help="MIDI playing order: repeats unfolded as performed, or folded in printed order "
    "(each notehead once, as MSMD's MIDI).",
)


class _Group(click.Group):
    """Click group that turns msmd-builder errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MsmdError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise SystemExit(2) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="msmd-build")
def main() -> None:
    """Build the MSMD audio–sheet-music dataset from LilyPond sources.

    \b
    Typical use:
      msmd-build corpus scan ../mutopia      find the solo keyboard pieces
      msmd-build corpus render --workers 2   render them all (PDF + unfolded MIDI)
      msmd-build piece BachJS__BWV846__wtk1-prelude1   one piece, all stages
    """


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
    from msmd_builder.corpus import scan_corpus, select_keyboard, summarize, write_index
    from msmd_builder.pipeline import WorkDir

    wd = WorkDir(work_dir)
    started = time.perf_counter()
    entries = scan_corpus(mutopia_root, progress=not quiet)
    write_index(entries, wd.index)
    atomic_write_json(wd.corpus_record, {"mutopia_root": str(mutopia_root.resolve())})
    keyboard = select_keyboard(entries)
    if not quiet:
        click.echo(summarize(entries))
    click.echo(
        f"{len(entries)} pieces, {len(keyboard)} solo keyboard, index written to {wd.index} "
        f"({time.perf_counter() - started:.1f} s)"
    )


@corpus.command("render")
@WORK_DIR_OPTION
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Parallel LilyPond processes.",
)
@click.option("--piece", "piece_ids", multiple=True, help="Only these piece ids (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N selected pieces.")
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
) -> None:
    """Normalize, render, lay out and align the indexed pieces.

    Per piece: sources copied and upgraded (normalize), PDF and unfolded MIDI
    (render), page PNGs and notehead/system tables checked against the PDF's
    links (score), every MIDI note linked to its notehead (align).  Writes
    per-piece outputs under WORK_DIR/pieces/<id>/ and a report to
    WORK_DIR/reports/render.{md,json} with each piece's outcome, error class
    and seconds.  Cached pieces are skipped, so a rerun only does what changed.
    """
    from msmd_builder.pipeline import BuildSettings, WorkDir, write_report

    wd = WorkDir(work_dir)
    entries = _select(wd.entries(), piece_ids, limit, all_pieces)
    settings = BuildSettings(
        work_dir=str(work_dir.resolve()),
        mutopia_root=str(wd.mutopia_root()),
        render_timeout_sec=timeout_sec,
        force=force,
        until=until,
        seed=seed,
        repeats=repeats,
        repeats_fallback=not strict_repeats,
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
def piece_command(
    piece_id: str, work_dir: Path, mutopia_root: Path | None, timeout_sec: float, force: bool
) -> None:
    """Build one piece (PIECE_ID as in the index, e.g. BachJS__BWV846__wtk1-prelude1).

    Prints the piece's outcome as JSON; outputs are in WORK_DIR/pieces/PIECE_ID/.
    Exits with status 1 when the piece fails.
    """
    from msmd_builder.corpus import find_piece, scan_corpus, write_index
    from msmd_builder.pipeline import BuildSettings, WorkDir, process_piece

    wd = WorkDir(work_dir)
    if mutopia_root is not None and not wd.index.exists():
        write_index(scan_corpus(mutopia_root), wd.index)
        atomic_write_json(wd.corpus_record, {"mutopia_root": str(mutopia_root.resolve())})
    entry = find_piece(wd.entries(), piece_id)
    if entry is None:
        raise click.BadParameter(f"{piece_id!r} is not in {wd.index}", param_hint="PIECE_ID")
    settings = BuildSettings(
        work_dir=str(work_dir.resolve()),
        mutopia_root=str(wd.mutopia_root()),
        render_timeout_sec=timeout_sec,
        force=force,
    )
    outcome = process_piece(entry, settings)
    from dataclasses import asdict

    click.echo(json.dumps(asdict(outcome), indent=2))
    if outcome.status == "failed":
        raise SystemExit(1)


def _select(entries, piece_ids, limit, all_pieces):  # noqa: ANN001, ANN202 - CLI glue
    if piece_ids:
        wanted = set(piece_ids)
        chosen = [e for e in entries if e.piece_id in wanted]
        missing = wanted - {e.piece_id for e in chosen}
        if missing:
            raise click.BadParameter(f"not in the index: {', '.join(sorted(missing))}")
    else:
        chosen = [e for e in entries if all_pieces or e.is_keyboard]
    return chosen[:limit] if limit else chosen


def _run_with_progress(entries, settings, workers, dask_scheduler=None, dataset=None):  # noqa: ANN001, ANN202 - CLI glue
    """Run the pieces (or a whole dataset build) under a rich progress bar."""
    from msmd_builder.pipeline import build_dataset, run_pieces

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
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Local worker processes (one piece at a time each).",
)
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
    help="Also render every piece at 0.5, 0.66, 1, 1.33 and 2 times its tempo with the "
    "held-out soundfont: the test performances of the 2019 paper's tempo-robustness "
    "evaluation (msmd-build evaluate).",
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
    "--max-shard-mb",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Largest shard file, MiB.",
)
@click.option("--piece", "piece_ids", multiple=True, help="Only these piece ids (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N selected pieces.")
@REPEATS_OPTION
@STRICT_REPEATS_OPTION
@TIMEOUT_OPTION
@FORCE_OPTION
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
    keep_audio: bool,
    verify_onsets: str,
    max_shard_mb: int,
    piece_ids: tuple[str, ...],
    limit: int | None,
    repeats: str,
    strict_repeats: bool,
    timeout_sec: float,
    force: bool,
) -> None:
    """Build the dataset: every stage of every solo keyboard piece, then splits and shards.

    \b
    1. scan MUTOPIA_ROOT (when given, or when WORK_DIR has no index yet)
    2. per piece: normalize, render (LilyPond), score geometry, alignment,
       performances (FluidSynth) and spectrograms, cached under WORK_DIR
    3. splits drawn from the built pieces with --seed (and imported lists)
    4. HDF5 shards OUT/<split>/<part>-NNNNN.h5 with a manifest per split
    5. report OUT/report.{md,json}: outcome of every piece, seconds per
       stage, MSMD's Table 1 figures for every split

    A rerun with nothing changed only checks the caches; a killed build
    resumes where it stopped.
    """
    import yaml

    from msmd_builder.corpus import scan_corpus, write_index
    from msmd_builder.perform import HUMANIZED_RECIPE, TEMPO_ROBUSTNESS_RECIPE
    from msmd_builder.pipeline import BuildSettings, DatasetOptions, WorkDir

    wd = WorkDir(work_dir)
    if mutopia_root is not None:
        recorded = wd.mutopia_root() if wd.corpus_record.exists() else None
        if recorded != mutopia_root.resolve() or not wd.index.exists():
            write_index(scan_corpus(mutopia_root), wd.index)
            atomic_write_json(wd.corpus_record, {"mutopia_root": str(mutopia_root.resolve())})
    entries = _select(wd.entries(), piece_ids, limit, False)
    recipe = None
    if performance_recipe is not None:
        recipe = yaml.safe_load(performance_recipe.read_text(encoding="utf-8"))
    elif humanize and tempo_robustness:
        raise click.UsageError("--humanize and --tempo-robustness are separate recipes; pick one")
    elif humanize:
        recipe = HUMANIZED_RECIPE.to_dict()
    elif tempo_robustness:
        recipe = TEMPO_ROBUSTNESS_RECIPE.to_dict()
    settings = BuildSettings(
        work_dir=str(work_dir.resolve()),
        mutopia_root=str(wd.mutopia_root()),
        render_timeout_sec=timeout_sec,
        force=force,
        until="perform",
        seed=seed,
        recipe=recipe,
        keep_audio=keep_audio,
        verify_onsets=verify_onsets,
        repeats=repeats,
        repeats_fallback=not strict_repeats,
    )
    options = DatasetOptions(
        out_dir=str(out.resolve()),
        recipes=tuple(r.strip() for r in recipes.split(",") if r.strip()),
        leave_out=leave_out,
        split_files=tuple(str(p.resolve()) for p in split_files),
        max_shard_bytes=max_shard_mb << 20,
    )
    result = _run_with_progress(entries, settings, workers, dask_scheduler, options)
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
    click.echo(f"report: {result.report_markdown}")


@main.group()
def splits() -> None:
    """Make or import train/valid/test splits; never re-renders anything."""


REPORT_OPTION = click.option(
    "--report",
    "report_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A build report (report.json): only pieces that built are used, failures are named.",
)


@splits.command("make")
@WORK_DIR_OPTION
@click.option(
    "--recipe",
    type=click.Choice(["all", "bach-only", "bach-out", "leave-out"]),
    help="MSMD's recipe to draw [default: all, or leave-out with --leave-out].",
)
@click.option("--leave-out", metavar="COMPOSER", help="Composer held out for test (e.g. MozartWA).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draw.")
@click.option("--subsets", is_flag=True, help="Also write 10/25/50/75 %% training subsets.")
@REPORT_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="YAML file to write (subsets go beside it).",
)
def splits_make(
    work_dir: Path,
    recipe: str | None,
    leave_out: str | None,
    seed: int,
    subsets: bool,
    report_path: Path | None,
    out: Path,
) -> None:
    """Draw a split of the indexed keyboard pieces (or of those a build report lists as built)."""
    from msmd_builder.pipeline import WorkDir, load_report
    from msmd_builder.splits import build_facts, make_split_files

    pieces = [e for e in WorkDir(work_dir).entries() if e.is_keyboard]
    if report_path is not None:
        available = build_facts(load_report(report_path)).available_ids
        pieces = [e for e in pieces if e.piece_id in available]
    recipe = recipe or ("leave-out" if leave_out else "all")
    written = make_split_files(
        pieces,
        recipe,
        seed=seed,
        out=out,
        leave_out=leave_out,
        with_subsets=subsets,
        source=str(report_path.name if report_path else "index.csv"),
    )
    for path in written:
        click.echo(str(path))


@splits.command("import")
@click.argument("split_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@WORK_DIR_OPTION
@REPORT_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the split restricted to the available pieces here.",
)
def splits_import(
    split_file: Path, work_dir: Path, report_path: Path | None, out: Path | None
) -> None:
    """Resolve an existing piece list (e.g. MSMD's tismir2018_all_split.yaml) against the corpus.

    Prints how many listed pieces are available and names every missing one
    with its reason: not in the corpus, not a keyboard piece, failed in the
    build (with its error class) or not built.
    """
    from msmd_builder.pipeline import WorkDir, load_report
    from msmd_builder.splits import build_facts, import_split, write_split

    index = WorkDir(work_dir).entries()
    if report_path is not None:
        facts = build_facts(load_report(report_path))
        available, failed = facts.available_ids, facts.failed
    else:
        available, failed = {e.piece_id for e in index if e.is_keyboard}, None
    result = import_split(split_file, available_ids=available, index=index, failed=failed)
    click.echo(result.summary())
    if out is not None:
        write_split(result.split, out)
        click.echo(f"written: {out}")


@main.group()
def soundfonts() -> None:
    """Soundfonts used for synthesis (listed in soundfonts.txt)."""


@soundfonts.command("check")
@click.option("--no-checksum", is_flag=True, help="Skip the SHA-256 comparison (faster).")
def soundfonts_check(no_checksum: bool) -> None:
    """Verify that every soundfont of soundfonts.txt is installed and unchanged.

    Prints one line per soundfont and, for missing ones, the apt-get command
    that installs them.  Exits with status 1 if any check fails.
    """
    from msmd_builder.soundfonts import check_soundfonts, format_check_report, load_soundfonts

    results = check_soundfonts(load_soundfonts(), verify_checksum=not no_checksum)
    click.echo(format_check_report(results))
    if not all(r.ok for r in results):
        raise SystemExit(1)


@main.command("view")
@click.argument("piece_id")
@WORK_DIR_OPTION
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: WORK_DIR/pieces/PIECE_ID/view].",
)
@click.option("--labels", is_flag=True, help="Write each notehead's onset time (s) beside it.")
@click.option(
    "--html",
    is_flag=True,
    help="Write an interactive HTML page instead: hover noteheads, play performances with a "
    "following cursor, spectrogram with onsets.",
)
@click.option(
    "--performance",
    "performance_ids",
    multiple=True,
    help="With --html: only these performances (repeatable) [default: all].",
)
def view_command(
    piece_id: str,
    work_dir: Path,
    out: Path | None,
    labels: bool,
    html: bool,
    performance_ids: tuple[str, ...],
) -> None:
    """Look at a built piece: page overlays (PNG) or an interactive page (--html).

    PNG overlays: systems, and noteheads coloured by alignment. Green: aligned
    to a performed note.  Blue: tie continuation (sounds through the previous
    note).  Red: hidden or not aligned.  The HTML page (works from file://, no
    server) adds the performances' audio, a cursor over the sounding noteheads
    and the spectrogram.  Builds the piece first if needed.
    """
    from msmd_builder.align import AlignResult
    from msmd_builder.cache import read_json
    from msmd_builder.corpus import find_piece
    from msmd_builder.pipeline import BuildSettings, WorkDir, process_piece
    from msmd_builder.score import ScoreResult
    from msmd_builder.view import draw_overlays

    wd = WorkDir(work_dir)
    piece_dir = work_dir / "pieces" / piece_id
    needed = piece_dir / ("perform/perform.json" if html else "align/align.json")
    if not needed.exists():
        entry = find_piece(wd.entries(), piece_id)
        if entry is None:
            raise click.BadParameter(f"{piece_id!r} is not in {wd.index}", param_hint="PIECE_ID")
        settings = BuildSettings(
            work_dir=str(work_dir.resolve()),
            mutopia_root=str(wd.mutopia_root()),
            until="perform" if html else "align",
        )
        outcome = process_piece(entry, settings)
        if outcome.status == "failed":
            raise click.ClickException(
                f"{piece_id} failed at {outcome.stage}: {outcome.error_class}: {outcome.message}"
            )
    if html:
        from msmd_builder.viewer import write_piece_html

        page = write_piece_html(
            work_dir,
            piece_id,
            out or piece_dir / "view",
            performance_ids=list(performance_ids) or None,
        )
        click.echo(str(page))
        return
    score = ScoreResult.read(piece_dir / "score" / "score.json")
    aligned = AlignResult(**read_json(piece_dir / "align" / "align.json"))
    noteheads, systems = score.load()
    paths = draw_overlays(
        noteheads,
        systems,
        aligned.load(),
        list(score.pages),
        image_dir=score.score_dir,
        out_dir=out or piece_dir / "view",
        labels=labels,
    )
    for path in paths:
        click.echo(str(path))


@main.command("report")
@click.argument(
    "report_json",
    required=False,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: the report's folder].",
)
def report_command(report_json: Path | None, out: Path | None) -> None:
    """Turn a build report (JSON) into an HTML page with plots.

    REPORT_JSON defaults to dataset/report.json, else work/reports/render.json.
    The page shows pieces per composer, pages and noteheads per piece,
    failure classes, tempo and duration distributions, seconds per stage,
    MSMD's Table 1 beside ours, and every failed piece with its reason.
    """
    from msmd_builder.report import write_report_html

    if report_json is None:
        candidates = [Path("dataset") / "report.json", Path("work") / "reports" / "render.json"]
        report_json = next((c for c in candidates if c.exists()), None)
        if report_json is None:
            raise click.UsageError(
                "no REPORT_JSON given and none of dataset/report.json, "
                "work/reports/render.json exists"
            )
    page = write_report_html(report_json, out or report_json.parent)
    click.echo(str(page))


# --------------------------------------------------------------------------------------
# Trainer (optional: needs msmd-builder[train], i.e. torch)
# --------------------------------------------------------------------------------------

DATASET_OPTION = click.option(
    "--dataset",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dataset"),
    show_default=True,
    help="Output folder of msmd-build dataset.",
)

PRECISION_OPTION = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="auto: bfloat16 where the CPU has it natively.",
)

THREADS_OPTION = click.option(
    "--threads", type=click.IntRange(min=1), default=2, show_default=True, help="torch threads."
)


def _split_dir(split: str, dataset: Path) -> Path:
    """Resolve a split given by name (a folder of DATASET) or by path."""
    candidate = Path(split)
    if candidate.is_dir():
        return candidate
    named = dataset / split
    if named.is_dir():
        return named
    raise click.BadParameter(
        f"no split folder {split!r} and no {named}; run msmd-build dataset first",
        param_hint="--split",
    )


def _train_log(line: str) -> None:
    console.print(line, highlight=False)


@main.command("train")
@click.option(
    "--split",
    default="bach-only",
    show_default=True,
    help="Split to train on: a folder of --dataset (bach-only, all, bach_split, ...) or a path.",
)
@DATASET_OPTION
@click.option(
    "--model",
    type=click.Choice(MODEL_NAMES),
    default="2018",
    show_default=True,
    help="2018: global pooling (Dorfer et al. 2018); 2019: dense layer; "
    "2019-attention: soft attention over the audio excerpt (Balke et al. 2019).",
)
@click.option(
    "--context",
    type=click.Choice([str(c) for c in CONTEXTS]),
    default="42",
    show_default=True,
    help="Audio excerpt length in spectrogram frames (20 per second).",
)
@click.option(
    "--augment",
    type=click.Choice(["none", "sheet", "audio", "full"]),
    default="none",
    show_default=True,
    help="The 2018 paper's augmentation settings (Table 3 rows).",
)
@click.option(
    "--time-budget",
    "time_budget_s",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Stop training after this many seconds (then refine and evaluate).",
)
@click.option(
    "--epoch-pairs",
    type=click.IntRange(min=100),
    default=10_000,
    show_default=True,
    help="Training pairs per epoch (validation after each).",
)
@click.option(
    "--patience",
    "patience_epochs",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Epochs without validation gain before the best parameters are restored and the "
    "learning rate halved (five times, then training stops).",
)
@click.option("--max-epochs", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--refine-cca",
    "refine_cca_pairs",
    type=click.IntRange(min=0),
    default=10_000,
    show_default=True,
    help="Training pairs for the CCA refinement (0: none).",
)
@PRECISION_OPTION
@THREADS_OPTION
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-evaluate", is_flag=True, help="Do not evaluate on the test part afterwards.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Run folder: checkpoints, metrics.csv/json, learning_curve.png, evaluation.",
)
def train_cli(
    split: str,
    dataset: Path,
    model: str,
    context: str,
    augment: str,
    time_budget_s: float | None,
    epoch_pairs: int,
    patience_epochs: int,
    max_epochs: int,
    refine_cca_pairs: int,
    precision: str,
    threads: int,
    seed: int,
    no_evaluate: bool,
    out: Path,
) -> None:
    """Train an audio--sheet embedding model on a dataset split.

    \b
    Trains on the split's train part (the reference performance of each piece,
    or all of them with --augment audio/full), validates on its valid part
    after every epoch, keeps best.pt, refines the embedding layer by CCA
    (refined.pt) and evaluates on the test part: retrieval R@k/MRR/MR at 2,000
    and 10,000 candidates, piece identification, MRR per tempo ratio (when the
    dataset was built with --tempo-robustness) and, for the attention model,
    attention plots.  Example:

    \b
      msmd-build train --split bach-only --model 2018 --context 42 \\
          --time-budget 3600 --out runs/2018
    """
    from msmd_builder.train.commands import train_command

    result = train_command(
        _split_dir(split, dataset),
        out,
        model=model,
        context=int(context),
        augment=augment,
        time_budget_s=time_budget_s,
        epoch_pairs=epoch_pairs,
        patience_epochs=patience_epochs,
        max_epochs=max_epochs,
        refine_cca_pairs=refine_cca_pairs,
        precision=precision,
        threads=threads,
        seed=seed,
        evaluate_after=not no_evaluate,
        log=_train_log,
    )
    click.echo(f"checkpoint {result['checkpoint']}")


@main.command("evaluate")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--split",
    default="bach-only",
    show_default=True,
    help="Split to evaluate on: a folder of --dataset or a path.",
)
@DATASET_OPTION
@click.option(
    "--part", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True
)
@click.option(
    "--pairs",
    "n_pairs",
    default="2000,10000",
    show_default=True,
    help="Retrieval candidate counts, comma-separated.",
)
@PRECISION_OPTION
@THREADS_OPTION
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: beside the checkpoint].",
)
def evaluate_cli(
    checkpoint: Path,
    split: str,
    dataset: Path,
    part: str,
    n_pairs: str,
    precision: str,
    threads: int,
    out: Path | None,
) -> None:
    """Evaluate a checkpoint (best.pt or refined.pt) on a split.

    Writes evaluation.json and evaluation.md (the 2018 paper's Table 3 layout,
    piece identification, MRR per tempo ratio) and the plots next to the
    checkpoint or into --out.
    """
    from msmd_builder.train.commands import evaluate_command

    try:
        sizes = [int(n) for n in n_pairs.split(",") if n.strip()]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--pairs") from exc
    evaluate_command(
        checkpoint,
        _split_dir(split, dataset),
        out,
        part=part,
        n_pairs=sizes,
        precision=precision,
        threads=threads,
        log=_train_log,
    )


if __name__ == "__main__":
    main()
