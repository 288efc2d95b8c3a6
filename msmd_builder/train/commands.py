"""The functions behind ``msmd-build train``, ``evaluate`` and ``identify``.

Each takes plain values (paths, names, numbers) so that the command line is a
thin wrapper; they read splits written by ``msmd-build dataset`` and run
folders written by :func:`train_command`.
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
    "resume_command",
    "evaluate_command",
    "identify_command",
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
    device: str = "cpu",
    seed: int = 0,
    prepare_only: bool = False,
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
        Run directory for the packed pairs, checkpoints, logs and the evaluation.
    model : {'2018', '2019', '2019-attention'}
        Architecture.
    context : int
        Audio context in frames: 42, 84 or 168.
    augment : {'none', 'sheet', 'audio', 'full'}
        The 2018 paper's augmentation settings.
    time_budget_s : float, optional
        Stop this part of the run after this many seconds (``resume_command``
        continues it).
    epoch_pairs, patience_epochs, max_epochs, refine_cca_pairs, valid_pairs
        See :class:`~msmd_builder.train.settings.TrainSettings`.
    precision, threads, device, seed
        See :class:`~msmd_builder.train.settings.TrainSettings`.
    prepare_only : bool, optional
        Only pack the pairs into ``out_dir`` (a few tens of MB; the run can then
        be copied to another machine and started there by ``resume_command``).
    evaluate_after : bool, optional
        Evaluate the final checkpoint on the split's test part into ``out_dir``.
    eval_pairs : sequence of int, optional
        Retrieval test sizes of that evaluation.
    log : callable, optional
        Receives progress lines (default: print).

    Returns
    -------
    dict
        ``checkpoint`` (path, None when only prepared), ``best_epoch``,
        ``best_valid``, ``throughput``, ``pair_files_bytes`` and, with
        ``evaluate_after``, ``evaluation``.
    """
    require_torch()
    from msmd_builder.train.data import load_split
    from msmd_builder.train.loop import prepare_run, run_training
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
        device=device,
        seed=seed,
    )
    if not prepare_only:
        from msmd_builder.train.runtime import resolve_device

        resolve_device(device)  # fail before reading the split
    parts = load_split(split_dir, ("train", "valid"))
    if not parts["train"]:
        raise ConfigError(f"{split_dir}: the split has no training pieces")
    valid = parts["valid"] or parts["train"]
    source = {"split_dir": str(Path(split_dir).resolve()), "augment": augment}
    data = prepare_run(parts["train"], valid, settings, out_dir, source=source)
    del parts, valid  # the packed pairs are all the run needs
    sizes = data.info["pair_files_bytes"]
    say = log or (lambda line: None)
    say(
        f"packed {len(data.train)} training and {len(data.valid)} validation pairs into "
        f"{out_dir} ({sum(sizes.values()) / 2**20:.1f} MiB)"
    )
    if prepare_only:
        return {"checkpoint": None, "pair_files_bytes": sizes}
    result = run_training(data, out_dir, log=log)
    return _after_training(result, data, split_dir, out_dir, evaluate_after, eval_pairs, log)


def resume_command(
    run_dir: str | os.PathLike[str],
    *,
    split_dir: str | os.PathLike[str] | None = None,
    evaluate_after: bool = True,
    eval_pairs: Sequence[int] = (2000, 10000),
    log: Callable[[str], None] | None = print,
    **changes: Any,
) -> dict[str, Any]:
    """Continue a run from its ``state.pt`` (or start a prepared one).

    Parameters
    ----------
    run_dir : path-like
        A run folder written by :func:`train_command`.
    split_dir : path-like, optional
        The split whose test part the evaluation uses (default: the split the
        run was prepared from, when it is on this machine).
    evaluate_after, eval_pairs, log
        As for :func:`train_command`.
    **changes
        ``max_epochs``, ``time_budget_s`` (None: no budget), ``threads``,
        ``device`` for this part and the next ones
        (:data:`~msmd_builder.train.settings.RESUMABLE_CHANGES`); what is not
        given stays as the run was prepared.

    Returns
    -------
    dict
        As :func:`train_command`.
    """
    require_torch()
    from msmd_builder.train.loop import load_run, run_training

    data = load_run(run_dir, **changes)
    result = run_training(data, run_dir, resume=True, log=log)
    if split_dir is None:
        split_dir = data.info.get("source", {}).get("split_dir")
    return _after_training(result, data, split_dir, run_dir, evaluate_after, eval_pairs, log)


def _after_training(
    result: Any,
    data: Any,
    split_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    evaluate_after: bool,
    eval_pairs: Sequence[int],
    log: Callable[[str], None] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "checkpoint": str(result.checkpoint),
        "best_epoch": result.best_epoch,
        "best_valid": result.best_valid,
        "throughput": result.throughput,
        "pair_files_bytes": data.info.get("pair_files_bytes", {}),
    }
    if not evaluate_after:
        return out
    if split_dir is None or not Path(split_dir).is_dir():
        (log or print)(
            f"not evaluated: the split folder {split_dir} is not here; "
            f"run msmd-build evaluate {result.checkpoint} --split <split folder>"
        )
        return out
    settings = data.settings
    out["evaluation"] = evaluate_command(
        result.checkpoint,
        split_dir,
        out_dir,
        n_pairs=eval_pairs,
        precision=settings.precision,
        threads=settings.threads,
        device=settings.device,
        log=log,
    )
    return out


def evaluate_command(
    checkpoint: str | os.PathLike[str] | None,
    split_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    part: str = "test",
    n_pairs: Sequence[int] = (2000, 10000),
    precision: str = "auto",
    threads: int = 2,
    device: str = "cpu",
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Evaluate a checkpoint on one part of a split (see :func:`~.evaluate.evaluate`).

    Parameters
    ----------
    checkpoint : path-like or None
        ``best.pt`` or ``refined.pt`` of a training run; None for the model
        shipped with the package (:mod:`msmd_builder.train.pretrained`).
    split_dir : path-like
        Split directory of a dataset build.
    out_dir : path-like, optional
        Where to write ``evaluation.json``/``.md`` and plots (default: beside
        the checkpoint; required with the shipped model).
    part : str, optional
        Which part of the split to evaluate on.
    n_pairs : sequence of int, optional
        Retrieval test sizes.
    precision, threads, device
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
    from msmd_builder.train.pretrained import pretrained_checkpoint

    if checkpoint is None:
        checkpoint = pretrained_checkpoint()
        if out_dir is None:
            raise ConfigError("evaluating the shipped model needs --out (where to write)")
    model, _ = load_checkpoint(checkpoint)
    pieces = load_split(split_dir, (part,))[part]
    if not pieces:
        raise ConfigError(f"{split_dir}: the split has no {part!r} pieces")
    settings = replace(
        EvalSettings(),
        n_pairs=tuple(int(n) for n in n_pairs),
        precision=precision,
        threads=threads,
        device=device,
    )
    target = Path(out_dir) if out_dir is not None else Path(checkpoint).parent
    return evaluate(model, pieces, settings, target, log=log)


def identify_command(
    audio: str | os.PathLike[str],
    split_dir: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    parts: Sequence[str] = ("train", "valid", "test"),
    top: int = 10,
    excerpts: int = 100,
    neighbours: int = 25,
    index_dir: str | os.PathLike[str] | None = None,
    precision: str = "auto",
    threads: int = 2,
    device: str = "cpu",
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Rank the pieces of a split that a recording plays (see :mod:`~.identify`).

    Parameters
    ----------
    audio : path-like
        Any audio file soundfile reads (wav, flac, ogg, ...).
    split_dir : path-like
        The split whose pieces are the candidates.
    checkpoint : path-like, optional
        A run's ``refined.pt`` or ``best.pt``; default the shipped model.
    parts : sequence of str, optional
        Which parts of the split to index.
    top, excerpts, neighbours : int, optional
        Pieces to report; query excerpts; nearest snippets each excerpt votes with.
    index_dir : path-like, optional
        Where the snippet index is cached (default ``<split_dir>/identify-index``).
    precision, threads, device
        As for :func:`evaluate_command`.
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    dict
        ``audio``, ``duration_s``, ``checkpoint``, ``excerpts``, ``neighbours``,
        ``index`` (``path``, ``cached``, ``pieces``, ``snippets``), ``ranking``
        (see :func:`~.identify.identify`).
    """
    require_torch()
    import torch

    from msmd_builder.train.checkpoint import load_checkpoint
    from msmd_builder.train.identify import cached_index, identify, read_recording
    from msmd_builder.train.pretrained import pretrained_checkpoint
    from msmd_builder.train.runtime import resolve_device, use_bfloat16

    if min(top, excerpts, neighbours) < 1:
        raise ConfigError("top, excerpts and neighbours must be >= 1")
    checkpoint = Path(checkpoint) if checkpoint is not None else pretrained_checkpoint()
    spectrogram, duration = read_recording(audio)  # bad input fails before any model work
    torch.set_num_threads(threads)
    target = resolve_device(device)
    bf16 = use_bfloat16(precision, target)
    model, _ = load_checkpoint(checkpoint)
    model.to(target).eval()
    index, path, cached = cached_index(
        model, checkpoint, split_dir, parts, index_dir, bfloat16=bf16, log=log
    )
    ranking = identify(
        model,
        spectrogram,
        index,
        excerpts=excerpts,
        neighbours=neighbours,
        top=top,
        bfloat16=bf16,
    )
    return {
        "audio": str(audio),
        "duration_s": duration,
        "checkpoint": str(checkpoint),
        "excerpts": excerpts,
        "neighbours": neighbours,
        "index": {
            "path": None if path is None else str(path),
            "cached": cached,
            "pieces": len(index.piece_ids),
            "snippets": len(index.piece),
        },
        "ranking": ranking,
    }
