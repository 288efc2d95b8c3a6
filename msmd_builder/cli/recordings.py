"""Recordings: ``align-recording`` (one recording of a built piece)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import click

from msmd_builder.cli.main import console, main
from msmd_builder.cli.options import FORCE_OPTION, WORK_DIR_OPTION
from msmd_builder.core.workdir import WorkDir

__all__ = ["align_recording_command"]


@main.command("align-recording")
@click.argument("piece_id")
@click.argument("recording", type=click.Path(path_type=Path))
@WORK_DIR_OPTION
@click.option(
    "--repeats",
    type=click.Choice(["auto", "unfolded", "folded"]),
    default="auto",
    show_default=True,
    help="auto: try every playing order (all repeats, none, each choice of repeats, written "
    "jumps taken or not) and keep the best; unfolded: the build's order (all repeats); "
    "folded: every repeated passage once.",
)
@click.option(
    "--role",
    type=click.Choice(["train", "valid", "test"]),
    default="test",
    show_default=True,
    help="Split role whose performances the recording joins.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the performance file, a CSV of the notes' times and confidences and a "
    "JSON summary to this folder.",
)
@FORCE_OPTION
def align_recording_command(
    piece_id: str,
    recording: Path,
    work_dir: Path,
    repeats: str,
    role: str,
    out: Path | None,
    force: bool,
) -> None:
    """Align RECORDING (wav, flac, ogg, mp3; any rate) to the noteheads of built PIECE_ID.

    The recording is synchronized with a deadpan rendering of the piece
    (synctoolbox's MrMsDTW on chroma and onset features) in the playing order
    that matches it best, every performed note gets its onset and offset in
    the recording and a confidence, and the result is stored as one more
    performance of the piece (perform/PIECE_ID__recording-NAME.npz and .flac,
    listed in perform/perform.json), which the viewer plays with its cursor.
    Prints the chosen playing order and the cost of each one tried.  A file
    that cannot be read, is silent, or does not match the piece is refused
    with its error class (exit status 2).
    """
    from msmd_builder.core.errors import PieceError
    from msmd_builder.stages.recordings.stage import RecordingSettings, align_recording

    piece_dir = WorkDir(work_dir).piece(piece_id)
    register = piece_dir.perform_record.is_file()
    try:
        result = align_recording(
            piece_dir,
            recording,
            RecordingSettings(repeats=repeats),
            role=role,
            force=force,
            register=register,
        )
    except PieceError as exc:
        console.print(
            f"[bold red]error ({exc.error_class}):[/] {exc.message}",
            soft_wrap=True,
            highlight=False,
        )
        raise SystemExit(2) from exc
    summary = result.summary
    click.echo(
        f"{summary['file']['file']}: {result.duration_sec:.1f} s, tuning "
        f"{summary['tuning_cents']:+.0f} cents, tempo x {result.plan['tempo_ratio']:g} of the score"
    )
    for order in summary["orders"]:
        mark = "*" if order["name"] == summary["playing_order"] else " "
        click.echo(f" {mark} {order['name']}: cost {order['cost']:.3f} ({order['n_events']} notes)")
    click.echo(
        f"chosen: {summary['playing_order']} (threshold {summary['settings']['max_cost']:.3f}); "
        f"confidence median {summary['confidence']['median']:.2f}, "
        f"{100 * summary['confidence']['share_below_0.5']:.1f} % of notes below 0.5"
    )
    click.echo(f"performance: {result.path}")
    if register:
        click.echo(f"listed in {piece_dir.perform_record} for role {role}")
    else:
        click.echo(
            "not listed: the piece has no perform/perform.json (build it with `msmd-build "
            "dataset` or `msmd-build view --html` to play it in the viewer)"
        )
    if out is not None:
        _write_out(out, result)
        click.echo(f"written to {out}")


def _write_out(out: Path, result) -> None:  # noqa: ANN001 - RecordingResult
    """Copy the performance file and write its notes as CSV and its summary as JSON."""
    from msmd_builder.stages.perform.npz import load_performance

    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.path, out / result.path.name)
    data = load_performance(result.path)
    events, frames, confidence = data["events"], data["onset_frame"], data["confidence"]
    with open(out / f"{result.performance_id}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "event_id",
                "notehead_id",
                "occurrence",
                "pitch",
                "onset_sec",
                "offset_sec",
                "onset_frame",
                "confidence",
            ]
        )
        for row, frame, value in zip(events, frames, confidence, strict=True):
            writer.writerow(
                [
                    int(row["event_id"]),
                    int(row["notehead_id"]),
                    int(row["occurrence"]),
                    int(row["pitch"]),
                    f"{row['onset_sec']:.4f}",
                    f"{row['offset_sec']:.4f}",
                    int(frame),
                    f"{value:.3f}",
                ]
            )
    (out / f"{result.performance_id}.json").write_text(
        json.dumps(result.summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
