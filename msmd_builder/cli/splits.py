"""``splits make`` and ``splits import``."""

from __future__ import annotations

from pathlib import Path

import click

from msmd_builder.cli.main import main
from msmd_builder.cli.options import REPORT_OPTION, WORK_DIR_OPTION

__all__ = ["splits", "splits_make", "splits_import"]


@main.group()
def splits() -> None:
    """Make or import train/valid/test splits; never re-renders anything."""


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
    from msmd_builder.core.workdir import WorkDir
    from msmd_builder.pipeline.report import load_report
    from msmd_builder.stages.corpus.index import index_entries
    from msmd_builder.stages.splits.imports import build_facts
    from msmd_builder.stages.splits.recipes import make_split_files

    pieces = [e for e in index_entries(WorkDir(work_dir)) if e.is_keyboard]
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
    from msmd_builder.core.workdir import WorkDir
    from msmd_builder.pipeline.report import load_report
    from msmd_builder.stages.corpus.index import index_entries
    from msmd_builder.stages.splits.imports import build_facts, import_split
    from msmd_builder.stages.splits.split import write_split

    index = index_entries(WorkDir(work_dir))
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
