"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path

import click

from msmd_builder.lilypond.sandbox import DEFAULT_CPU_SEC, DEFAULT_MEMORY_MB, SANDBOX_MODES
from msmd_builder.stages.render import DEFAULT_TIMEOUT_SEC
from msmd_builder.train import DEVICES, PRECISIONS  # constants only, no torch

__all__ = [
    "WORK_DIR_OPTION",
    "TIMEOUT_OPTION",
    "confinement_options",
    "FORCE_OPTION",
    "STRICT_REPEATS_OPTION",
    "REPEATS_OPTION",
    "REPORT_OPTION",
    "DATASET_OPTION",
    "PRECISION_OPTION",
    "THREADS_OPTION",
    "DEVICE_OPTION",
    "WORKERS_OPTION",
    "PIECES_OPTION",
    "LIMIT_OPTION",
    "RECORDINGS_OPTION",
    "RECORDINGS_REPEATS_OPTION",
]


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


def confinement_options(command):  # noqa: ANN001, ANN201 - click decorator
    """Add ``--sandbox``, ``--cpu-limit`` and ``--memory-limit`` to a command that renders."""
    options = (
        click.option(
            "--sandbox",
            type=click.Choice(SANDBOX_MODES),
            default="auto",
            show_default=True,
            help="Run LilyPond and convert-ly inside bubblewrap (read-only sources, one "
            "scratch folder, no network). auto: where it works, else a warning in the "
            "report; on: stop at start without it; off: never (sources you trust).",
        ),
        click.option(
            "--cpu-limit",
            "cpu_sec",
            type=click.FloatRange(min=1),
            default=DEFAULT_CPU_SEC,
            show_default=True,
            help="Per-piece CPU-time limit of LilyPond, seconds (class timeout when hit).",
        ),
        click.option(
            "--memory-limit",
            "memory_mb",
            type=click.IntRange(min=64),
            default=DEFAULT_MEMORY_MB,
            show_default=True,
            help="Per-piece address-space limit of LilyPond, MiB (class memory when hit).",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


FORCE_OPTION = click.option(
    "--force", is_flag=True, help="Ignore cached results and redo every stage."
)


STRICT_REPEATS_OPTION = click.option(
    "--strict-repeats",
    is_flag=True,
    help="Fail a piece whose performance leaves reading order or whose written jumps or "
    "repeats do not read into one playing order, instead of building it in printed "
    "order (flagged in the report).  Repeats written in some voices only are still "
    "played on the shared timeline.",
)


REPEATS_OPTION = click.option(
    "--repeats",
    type=click.Choice(["unfolded", "timeline", "folded"]),
    default="unfolded",
    show_default=True,
    help="MIDI playing order: repeats unfolded as performed (each piece whose repeats "
    "are written in some voices only goes to the timeline by itself); the printed "
    "timeline unrolled by the score's repeat structure for every voice alike; or "
    "folded in printed order (each notehead once, as MSMD's MIDI).",
)


REPORT_OPTION = click.option(
    "--report",
    "report_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A build report (report.json): only pieces that built are used, failures are named.",
)


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

DEVICE_OPTION = click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="cpu",
    show_default=True,
    help="Where the networks run: the CPU, or a CUDA GPU.",
)

WORKERS_OPTION = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Local worker processes, one piece at a time each (LilyPond, then FluidSynth).",
)

PIECES_OPTION = click.option(
    "--piece", "piece_ids", multiple=True, help="Only these piece ids (repeatable)."
)

LIMIT_OPTION = click.option(
    "--limit", type=click.IntRange(min=1), help="Only the first N selected pieces."
)

RECORDINGS_REPEATS_OPTION = click.option(
    "--recording-repeats",
    "recording_repeats",
    type=click.Choice(["auto", "unfolded", "folded"]),
    default="auto",
    show_default=True,
    help="Playing order of the recordings: auto tries all repeats, no repeats, each choice "
    "of repeats and the written jumps taken or not, and keeps the best match; unfolded "
    "takes the build's order; folded plays every repeated passage once.",
)

RECORDINGS_OPTION = click.option(
    "--recordings",
    "recordings",
    type=click.Path(exists=True, path_type=Path),
    help="Recordings to align and add as performances: a folder of audio files named by "
    "piece id (PIECE_ID.wav, PIECE_ID.flac, PIECE_ID__take2.ogg, ...) or a CSV with columns "
    "piece_id, path and optionally role (default test).",
)
