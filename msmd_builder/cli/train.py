"""The optional trainer: ``train``, ``evaluate`` and ``identify`` (need ``msmd-builder[train]``)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.core import ParameterSource

from msmd_builder.cli.main import console, main
from msmd_builder.cli.options import (
    DATASET_OPTION,
    DEVICE_OPTION,
    PRECISION_OPTION,
    THREADS_OPTION,
)
from msmd_builder.core.errors import ConfigError
from msmd_builder.dataset.reader import find_split
from msmd_builder.train import CONTEXTS, MODEL_NAMES  # constants only, no torch

__all__ = ["train_cli", "evaluate_cli", "identify_cli"]

#: Options a resumed run may be given (the rest are the run's own).
_RESUME_OPTIONS = ("max_epochs", "time_budget_s", "threads", "device", "no_evaluate", "split")


def _train_log(line: str) -> None:
    console.print(line, highlight=False)


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


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
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop this part of the run after this many seconds (then refine and evaluate); "
    "--resume continues it, with the same budget unless given again (0: none).",
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
    "--valid-pairs",
    type=click.IntRange(min=2),
    default=2000,
    show_default=True,
    help="Validation pairs, evenly spaced over the valid part's performances.",
)
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
@DEVICE_OPTION
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-evaluate", is_flag=True, help="Do not evaluate on the test part afterwards.")
@click.option(
    "--prepare-only",
    is_flag=True,
    help="Only pack the pairs into --out (tens of MB); start the run later, on this or "
    "another machine, with --resume.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    metavar="RUN_DIR",
    help="Continue this run folder from its last state (or start a prepared one); "
    "only --max-epochs, --time-budget, --threads, --device, --no-evaluate and --split "
    "(for the evaluation) may be given with it.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder: pairs, checkpoints, state, metrics.csv/json, learning_curve.png, evaluation.",
)
@click.pass_context
def train_cli(
    ctx: click.Context,
    split: str,
    dataset: Path,
    model: str,
    context: str,
    augment: str,
    time_budget_s: float | None,
    epoch_pairs: int,
    patience_epochs: int,
    max_epochs: int,
    valid_pairs: int,
    refine_cca_pairs: int,
    precision: str,
    threads: int,
    device: str,
    seed: int,
    no_evaluate: bool,
    prepare_only: bool,
    resume_dir: Path | None,
    out: Path | None,
) -> None:
    """Train an audio--sheet embedding model on a dataset split.

    \b
    Trains on the split's train part (the reference performance of each piece,
    or all of them with --augment audio/full), validates on its valid part
    after every epoch, keeps best.pt, refines the embedding layer by CCA
    (refined.pt) and evaluates on the test part: retrieval R@k/MRR/MR at 2,000
    and 10,000 candidates, piece identification, MRR per tempo ratio (when the
    dataset was built with --tempo-robustness) and, for the attention model,
    attention plots.  A run can stop (--time-budget, or killed) and continue
    with --resume, on the same or another machine (the run folder holds its
    pairs).  Examples:

    \b
      msmd-build train --split bach-only --model 2018 --context 42 \\
          --time-budget 3600 --out runs/2018
      msmd-build train --resume runs/2018 --time-budget 3600
      msmd-build train --split all --augment full --prepare-only --out runs/full
      msmd-build train --resume runs/full --device cuda     # on a GPU machine
    """
    from msmd_builder.train.commands import resume_command, train_command

    if time_budget_s == 0:
        time_budget_s = None
    if resume_dir is not None:
        fixed = [
            "--" + name.replace("_", "-")
            for name in ctx.params
            if name not in (*_RESUME_OPTIONS, "resume_dir", "dataset") and _given(ctx, name)
        ]
        if fixed:
            raise ConfigError(
                f"--resume continues a run with its own settings; drop {', '.join(fixed)}"
            )
        split_dir = find_split(split, dataset) if _given(ctx, "split") else None
        given = {
            "max_epochs": max_epochs,
            "time_budget_s": time_budget_s,
            "threads": threads,
            "device": device,
        }
        changes = {name: value for name, value in given.items() if _given(ctx, name)}
        result = resume_command(
            resume_dir,
            split_dir=split_dir,
            evaluate_after=not no_evaluate,
            log=_train_log,
            **changes,
        )
    else:
        if out is None:
            raise click.UsageError("give --out (a new run folder) or --resume RUN_DIR")
        result = train_command(
            find_split(split, dataset),
            out,
            model=model,
            context=int(context),
            augment=augment,
            time_budget_s=time_budget_s,
            epoch_pairs=epoch_pairs,
            patience_epochs=patience_epochs,
            max_epochs=max_epochs,
            refine_cca_pairs=refine_cca_pairs,
            valid_pairs=valid_pairs,
            precision=precision,
            threads=threads,
            device=device,
            seed=seed,
            prepare_only=prepare_only,
            evaluate_after=not no_evaluate,
            log=_train_log,
        )
    if result["checkpoint"] is None:
        click.echo(f"prepared {out}; start it with msmd-build train --resume {out}")
    else:
        click.echo(f"checkpoint {result['checkpoint']}")


@main.command("evaluate")
@click.argument(
    "checkpoint", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
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
@DEVICE_OPTION
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: beside the checkpoint; required for the shipped model].",
)
def evaluate_cli(
    checkpoint: Path | None,
    split: str,
    dataset: Path,
    part: str,
    n_pairs: str,
    precision: str,
    threads: int,
    device: str,
    out: Path | None,
) -> None:
    """Evaluate a checkpoint (best.pt or refined.pt; default the shipped model) on a split.

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
        find_split(split, dataset),
        out,
        part=part,
        n_pairs=sizes,
        precision=precision,
        threads=threads,
        device=device,
        log=_train_log,
    )


@main.command("identify")
@click.argument("audio", type=click.Path(dir_okay=False, path_type=Path))
@DATASET_OPTION
@click.option(
    "--split",
    default="all",
    show_default=True,
    help="Whose pieces are the candidates: a split folder of --dataset, or a path.",
)
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A run's refined.pt or best.pt [default: the model shipped with the package].",
)
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--excerpts",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Query excerpts, evenly spaced over the recording.",
)
@click.option(
    "--neighbours",
    type=click.IntRange(min=1),
    default=25,
    show_default=True,
    help="Nearest sheet snippets each excerpt votes with.",
)
@click.option(
    "--index-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the snippet index is cached [default: SPLIT/identify-index].",
)
@PRECISION_OPTION
@THREADS_OPTION
@DEVICE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def identify_cli(
    audio: Path,
    dataset: Path,
    split: str,
    checkpoint: Path | None,
    top: int,
    excerpts: int,
    neighbours: int,
    index_dir: Path | None,
    precision: str,
    threads: int,
    device: str,
    as_json: bool,
) -> None:
    """Rank the built pieces that AUDIO plays (a recording or any audio file).

    \b
    The 2018 paper's piece identification (Section 5): excerpts evenly spaced
    over the recording each retrieve their nearest sheet snippets among all
    snippets of the split's pieces, which vote for their piece.  Prints the
    top pieces with their share of the votes and the page and system whose
    snippets matched best.  The snippet index is built once per checkpoint
    and dataset and cached.  Reads wav, flac, ogg and whatever else
    libsndfile reads.  Example:

    \b
      msmd-build identify recording.flac --dataset dataset --top 5
    """
    from msmd_builder.train.commands import identify_command
    from msmd_builder.train.identify import format_ranking

    result = identify_command(
        audio,
        find_split(split, dataset),
        checkpoint=checkpoint,
        top=top,
        excerpts=excerpts,
        neighbours=neighbours,
        index_dir=index_dir,
        precision=precision,
        threads=threads,
        device=device,
        log=None if as_json else _train_log,
    )
    click.echo(json.dumps(result, indent=2) if as_json else format_ranking(result))
