"""The optional trainer: ``train`` and ``evaluate`` (need ``msmd-builder[train]``, i.e. torch)."""

from __future__ import annotations

from pathlib import Path

import click

from msmd_builder.cli.main import console, main
from msmd_builder.cli.options import DATASET_OPTION, PRECISION_OPTION, THREADS_OPTION
from msmd_builder.dataset.reader import find_split
from msmd_builder.train import CONTEXTS, MODEL_NAMES  # constants only, no torch

__all__ = ["train_cli", "evaluate_cli"]


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
        find_split(split, dataset),
        out,
        part=part,
        n_pairs=sizes,
        precision=precision,
        threads=threads,
        log=_train_log,
    )
