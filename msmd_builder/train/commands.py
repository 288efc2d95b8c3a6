"""The functions behind ``msmd-build train`` and ``msmd-build evaluate``.

Each takes plain values (paths, names, numbers) so that the command line is a
thin wrapper; both read a split written by ``msmd-build dataset``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from msmd_builder.core.errors import ConfigError
from msmd_builder.train import CONTEXTS, MODEL_NAMES, PRECISIONS, require_torch

__all__ = [
    "AUGMENTATIONS",
    "MODEL_NAMES",
    "CONTEXTS",
    "PRECISIONS",
    "train_command",
    "evaluate_command",
]

#: The 2018 paper's augmentation settings (Table 3 rows).
AUGMENTATIONS = ("none", "sheet", "audio", "full")


def train_command(
    split_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model: str = "2018",
    context: int = 42,
    augment: str = "none",
    time_budget_s: float | None = None,
    epoch_pairs: int = 10_000,
    patience_epochs: int = 30,
    max_epochs: int = 1000,
    refine_cca_pairs: int = 10_000,
    valid_pairs: int = 2000,
    precision: str = "auto",
    threads: int = 2,
    seed: int = 0,
    evaluate_after: bool = True,
    eval_pairs: Sequence[int] = (2000, 10000),
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Train a model on a split's train part (validating on its valid part).

    Parameters
    ----------
    split_dir : path-like
        Split directory of a dataset build (e.g. ``dataset/bach-only``).
    out_dir : path-like
        Run directory for checkpoints, logs and the evaluation.
    model : {'2018', '2019', '2019-attention'}
        Architecture.
    context : int
        Audio context in frames: 42, 84 or 168.
    augment : {'none', 'sheet', 'audio', 'full'}
        The 2018 paper's augmentation settings.
    time_budget_s : float, optional
        Stop training after this many seconds.
    epoch_pairs, patience_epochs, max_epochs, refine_cca_pairs, valid_pairs
        See :class:`~msmd_builder.train.loop.TrainSettings`.
    precision, threads, seed
        See :class:`~msmd_builder.train.loop.TrainSettings`.
    evaluate_after : bool, optional
        Evaluate the final checkpoint on the split's test part into ``out_dir``.
    eval_pairs : sequence of int, optional
        Retrieval test sizes of that evaluation.
    log : callable, optional
        Receives progress lines (default: print).

    Returns
    -------
    dict
        ``checkpoint`` (path), ``best_epoch``, ``best_valid``, ``throughput`` and,
        with ``evaluate_after``, ``evaluation``.
    """
    require_torch()
    from msmd_builder.train.data import load_split
    from msmd_builder.train.loop import train
    from msmd_builder.train.settings import TrainSettings

    if augment not in AUGMENTATIONS:
        raise ConfigError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    settings = TrainSettings(
        model=model,
        context_frames=int(context),
        sheet_augmentation=augment in ("sheet", "full"),
        audio_augmentation=augment in ("audio", "full"),
        time_budget_s=time_budget_s,
        epoch_pairs=epoch_pairs,
        patience_epochs=patience_epochs,
        max_epochs=max_epochs,
        refine_cca_pairs=refine_cca_pairs,
        valid_pairs=valid_pairs,
        precision=precision,
        threads=threads,
        seed=seed,
    )
    parts = load_split(split_dir, ("train", "valid"))
    if not parts["train"]:
        raise ConfigError(f"{split_dir}: the split has no training pieces")
    valid = parts["valid"] or parts["train"]
    result = train(parts["train"], valid, settings, out_dir, log=log)
    out: dict[str, Any] = {
        "checkpoint": str(result.checkpoint),
        "best_epoch": result.best_epoch,
        "best_valid": result.best_valid,
        "throughput": result.throughput,
    }
    if evaluate_after:
        out["evaluation"] = evaluate_command(
            result.checkpoint,
            split_dir,
            out_dir,
            n_pairs=eval_pairs,
            precision=precision,
            threads=threads,
            log=log,
        )
    return out


def evaluate_command(
    checkpoint: str | os.PathLike[str],
    split_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    part: str = "test",
    n_pairs: Sequence[int] = (2000, 10000),
    precision: str = "auto",
    threads: int = 2,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Evaluate a checkpoint on one part of a split (see :func:`~.evaluate.evaluate`).

    Parameters
    ----------
    checkpoint : path-like
        ``best.pt`` or ``refined.pt`` of a training run.
    split_dir : path-like
        Split directory of a dataset build.
    out_dir : path-like, optional
        Where to write ``evaluation.json``/``.md`` and plots (default: beside
        the checkpoint).
    part : str, optional
        Which part of the split to evaluate on.
    n_pairs : sequence of int, optional
        Retrieval test sizes.
    precision, threads
        See :class:`~msmd_builder.train.evaluate.EvalSettings`.
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    dict
        The evaluation report.
    """
    require_torch()
    from msmd_builder.train.checkpoint import load_checkpoint
    from msmd_builder.train.data import load_split
    from msmd_builder.train.evaluate import EvalSettings, evaluate

    model, _ = load_checkpoint(checkpoint)
    pieces = load_split(split_dir, (part,))[part]
    if not pieces:
        raise ConfigError(f"{split_dir}: the split has no {part!r} pieces")
    settings = replace(
        EvalSettings(), n_pairs=tuple(int(n) for n in n_pairs), precision=precision, threads=threads
    )
    target = Path(out_dir) if out_dir is not None else Path(checkpoint).parent
    return evaluate(model, pieces, settings, target, log=log)
