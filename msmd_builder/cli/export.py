"""``export``: write a built split in a layout that downstream code loads unchanged."""

from __future__ import annotations

from pathlib import Path

import click

from msmd_builder.cli.main import main
from msmd_builder.cli.options import DATASET_OPTION, WORK_DIR_OPTION

__all__ = ["export_command"]


@main.command("export")
@click.option(
    "--format",
    "format_name",
    type=click.Choice(["cyolo", "passages"]),
    required=True,
    help="cyolo: CPJKU/cyolo_score_following's piece layout (npz + 22,050 Hz wav per "
    "performance); passages: unrolled score, system passages, onset coordinates and "
    "spectrograms per piece.",
)
@click.option("--split", required=True, help="Split name (a folder of --dataset) or folder.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder.",
)
@click.option(
    "--part", "parts", multiple=True, help="Only these parts (repeatable) [default: all]."
)
@DATASET_OPTION
@WORK_DIR_OPTION
def export_command(
    format_name: str,
    split: str,
    out: Path,
    parts: tuple[str, ...],
    dataset: Path,
    work_dir: Path,
) -> None:
    """Export a split for score following (cyolo) or passage retrieval (passages).

    Pieces come from the split's shards; audio from WORK_DIR (the kept FLAC,
    else rendered again from the performance file, sample for sample).
    docs/exports.md maps every field to the shards.
    """
    from msmd_builder.dataset.reader import find_split
    from msmd_builder.outputs.exports import export_split

    summary = export_split(
        format_name,
        find_split(split, dataset),
        work_dir,
        out,
        parts=list(parts) or None,
    )
    click.echo(
        f"{summary.pieces} pieces, {summary.performances} performances, "
        f"{len(summary.files)} files -> {summary.out_dir}"
    )
