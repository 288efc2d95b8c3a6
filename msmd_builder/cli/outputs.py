"""Looking at results: ``view`` (overlays or HTML page) and ``report`` (HTML report)."""

from __future__ import annotations

from pathlib import Path

import click

from msmd_builder.cli.main import main
from msmd_builder.cli.options import WORK_DIR_OPTION
from msmd_builder.core.workdir import WorkDir

__all__ = ["view_command", "report_command"]


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
    and the spectrogram.  A piece that is not built yet is built first with
    the default settings; a built one is shown as its build left it (a
    dataset's seed, recipe and performances are not replaced).
    """
    from msmd_builder.core.errors import NotBuiltError
    from msmd_builder.dataset.built import BuiltPiece
    from msmd_builder.outputs.overlays import write_piece_overlays
    from msmd_builder.pipeline.run import build_piece

    wd = WorkDir(work_dir)
    try:
        BuiltPiece.open(wd.piece(piece_id), need_performances=html)
    except NotBuiltError:
        build_piece(wd, piece_id, until="perform" if html else "align")
    out = out or wd.piece(piece_id).view
    if html:
        from msmd_builder.outputs.viewer import write_piece_html

        page = write_piece_html(
            work_dir, piece_id, out, performance_ids=list(performance_ids) or None
        )
        click.echo(str(page))
        return
    for path in write_piece_overlays(wd.piece(piece_id), out, labels=labels):
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
    from msmd_builder.outputs.report_html import write_report_html

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
