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
    r"""Build the MSMD audio–sheet-music dataset from LilyPond sources.

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
    type=click.Choice(["normalize", "render", "score", "align"]),
    default="align",
    show_default=True,
    help="Last stage to run.",
)
def corpus_render(
    work_dir: Path,
    workers: int,
    piece_ids: tuple[str, ...],
    limit: int | None,
    all_pieces: bool,
    timeout_sec: float,
    force: bool,
    until: str,
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


def _run_with_progress(entries, settings, workers):  # noqa: ANN001, ANN202 - CLI glue
    from msmd_builder.pipeline import run_pieces

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

        return run_pieces(entries, settings, workers=workers, on_done=on_done)


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
def view_command(piece_id: str, work_dir: Path, out: Path | None, labels: bool) -> None:
    """Draw page overlays of a built piece: systems, and noteheads coloured by alignment.

    Green: aligned to a performed note.  Blue: tie continuation (sounds through
    the previous note).  Red: hidden or not aligned.  Builds the piece first
    if needed.
    """
    from msmd_builder.align import AlignResult
    from msmd_builder.cache import read_json
    from msmd_builder.corpus import find_piece
    from msmd_builder.pipeline import BuildSettings, WorkDir, process_piece
    from msmd_builder.score import ScoreResult
    from msmd_builder.view import draw_overlays

    wd = WorkDir(work_dir)
    piece_dir = work_dir / "pieces" / piece_id
    if not (piece_dir / "align" / "align.json").exists():
        entry = find_piece(wd.entries(), piece_id)
        if entry is None:
            raise click.BadParameter(f"{piece_id!r} is not in {wd.index}", param_hint="PIECE_ID")
        settings = BuildSettings(
            work_dir=str(work_dir.resolve()), mutopia_root=str(wd.mutopia_root())
        )
        outcome = process_piece(entry, settings)
        if outcome.status == "failed":
            raise click.ClickException(
                f"{piece_id} failed at {outcome.stage}: {outcome.error_class}: {outcome.message}"
            )
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
