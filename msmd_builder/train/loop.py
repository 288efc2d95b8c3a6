"""Training: batches, validation, the learning-rate schedule, logs and resumption.

:func:`train` follows the 2018 paper (Section 3.3) and its implementation:
mini-batches of 100 pairs drawn at random from the whole training pool, the
ranking loss with margin 0.7 plus an L2 penalty of 1e-5 on the weights, Adam
with learning rate 0.002; an "epoch" is a fixed number of pairs (10,000 in the
original) followed by a validation pass; when the validation MRR has not
improved for ``patience_epochs`` epochs the best parameters are restored and
the learning rate halved, five times, after which training stops.  A time
budget ends a part of the run earlier.  Optionally the CCA layer is then
refined on training pairs (the 2019 paper's "refined" models).

A run happens in two steps: :func:`prepare_run` packs the pairs of the pieces
(:mod:`msmd_builder.dataset.packed`) into the run folder, and :func:`run_training`
trains from them, starting afresh or continuing from ``state.pt``
(:mod:`msmd_builder.train.state`).  Writes into ``out_dir``::

    run.json, pairs-train.npz, pairs-valid.npz, state.pt   (see msmd_builder.train.state)
    best.pt             parameters of the best validation epoch
    last.pt             parameters after the last epoch
    refined.pt          best.pt with the CCA layer refit on training pairs (optional)
    metrics.csv         one row per epoch (see HISTORY_FIELDS)
    metrics.json        settings, history, throughput and the final summary
    learning_curve.png  training/validation loss and validation MRR per epoch

Runs are deterministic for a given seed, device and thread count
(``torch.manual_seed``, ``torch.set_num_threads``, numpy ``default_rng``),
whether they run in one part or several.
"""

from __future__ import annotations

import collections
import copy
import csv
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msmd_builder.core.cache import atomic_path, atomic_write_json
from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PieceRecord
from msmd_builder.dataset.packed import PackedPairs, pack_pool
from msmd_builder.dataset.pairs import PairPool, PairSettings, evenly_spaced
from msmd_builder.train.batches import PairBatcher
from msmd_builder.train.checkpoint import save_checkpoint
from msmd_builder.train.embedding import embed_pairs, recalibrate_batch_norm, refine_cca
from msmd_builder.train.loss import ranking_loss
from msmd_builder.train.metrics import retrieval_metrics, retrieval_ranks
from msmd_builder.train.models import EmbeddingModel, model_device
from msmd_builder.train.runtime import autocast, configure, resolve_device, use_bfloat16
from msmd_builder.train.settings import (
    HISTORY_FIELDS,
    RESUMABLE_CHANGES,
    TrainResult,
    TrainSettings,
)
from msmd_builder.train.state import (
    RUN_FILE,
    STATE_FILE,
    TRAIN_PAIRS_FILE,
    VALID_PAIRS_FILE,
    TrainingState,
    load_state,
    read_run,
    save_state,
)

__all__ = [
    "RunData",
    "reference_performances",
    "prepare_run",
    "load_run",
    "run_training",
    "train",
    "plot_learning_curve",
]

RUN_FORMAT = "msmd-builder/training-run"


def reference_performances(pieces: Sequence[PieceRecord]) -> set[str]:
    """Ids of the first performance of each piece (the plan's reference rendering)."""
    return {p.performances[0].performance_id for p in pieces if p.performances}


@dataclass
class RunData:
    """The packed pairs of a run and what its ``run.json`` says."""

    settings: TrainSettings
    train: PackedPairs
    valid: PackedPairs
    info: dict[str, Any]


def prepare_run(
    train_pieces: Sequence[PieceRecord],
    valid_pieces: Sequence[PieceRecord],
    settings: TrainSettings,
    out_dir: str | os.PathLike[str],
    *,
    source: dict[str, Any] | None = None,
) -> RunData:
    """Pack the training and validation pairs into a new run folder.

    Training pairs: every training piece's reference performance (its first),
    or with audio augmentation all its performances.  Validation pairs:
    ``settings.valid_pairs`` evenly spaced pairs of all performances of the
    validation pieces, only the audio frames their excerpts read.

    Parameters
    ----------
    train_pieces, valid_pieces : sequence of PieceRecord
        The pieces.
    settings : TrainSettings
        The run's settings (written to ``run.json``).
    out_dir : path-like
        The run folder (created).
    source : dict, optional
        Where the pieces came from (split folder, parts), recorded in ``run.json``.

    Returns
    -------
    RunData

    Raises
    ------
    ConfigError
        If either set of pieces gives too few pairs.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keep = None
    if not settings.audio_augmentation:
        refs = reference_performances(train_pieces)
        keep = lambda perf: perf.performance_id in refs  # noqa: E731
    plain = PairSettings(settings.context_frames, settings.one_per_onset)
    pool = PairPool(train_pieces, plain, keep_performance=keep)
    valid_pool = PairPool(valid_pieces, plain)
    if len(pool) < settings.batch_size:
        raise ConfigError(f"{len(pool)} training pairs, fewer than one batch")
    if len(valid_pool) < 2:
        raise ConfigError(f"{len(valid_pool)} validation pairs; need at least 2")
    soundfonts = collections.Counter(
        str(pool.performances(p)[k].plan.get("soundfont", "?"))
        for p in range(len(pool.piece_ids))
        for k in range(len(pool.performances(p)))
    )
    train_pack = pack_pool(pool, alternatives=settings.audio_augmentation)
    valid_pack = pack_pool(valid_pool).subset(evenly_spaced(len(valid_pool), settings.valid_pairs))
    train_pack.save(out / TRAIN_PAIRS_FILE)
    valid_pack.save(out / VALID_PAIRS_FILE)
    info = {
        "format_name": RUN_FORMAT,
        "format_version": 1,
        "settings": settings.to_dict(),
        "source": source or {},
        "train_pieces": train_pack.piece_ids,
        "valid_pieces": list(valid_pool.piece_ids),
        "train_pairs": len(train_pack),
        "valid_pool_pairs": len(valid_pool),
        "train_soundfonts": dict(sorted(soundfonts.items())),
        "pair_files_bytes": {
            name: (out / name).stat().st_size for name in (TRAIN_PAIRS_FILE, VALID_PAIRS_FILE)
        },
    }
    atomic_write_json(out / RUN_FILE, info)
    (out / STATE_FILE).unlink(missing_ok=True)  # a fresh run starts from nothing
    return RunData(settings, train_pack, valid_pack, info)


def load_run(run_dir: str | os.PathLike[str], **changes: Any) -> RunData:
    """Read a run folder's settings and pairs, with the :data:`RESUMABLE_CHANGES` applied.

    Raises
    ------
    ConfigError
        If the folder is not a run, or a change is not one a resumed run may make.
    """
    info = read_run(run_dir)
    not_allowed = sorted(set(changes) - set(RESUMABLE_CHANGES))
    if not_allowed:
        raise ConfigError(
            f"a resumed run keeps its settings; only {', '.join(RESUMABLE_CHANGES)} may change "
            f"(asked to change {', '.join(not_allowed)})"
        )
    settings = replace(TrainSettings.from_dict(info["settings"]), **changes)
    out = Path(run_dir)
    train_pack = PackedPairs.load(out / TRAIN_PAIRS_FILE)
    valid_pack = PackedPairs.load(out / VALID_PAIRS_FILE)
    if train_pack.context_frames != settings.context_frames:
        raise ConfigError(f"{run_dir}: the pair files do not match the run's context")
    return RunData(settings, train_pack, valid_pack, info)


def _weight_penalty(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([(w**2).sum() for w in weights]).sum()


def _validate(
    model: EmbeddingModel, valid: PairBatcher, settings: TrainSettings, bf16: bool
) -> dict[str, float]:
    sheet, audio = embed_pairs(model, valid, np.arange(len(valid)), bfloat16=bf16)
    a2s = retrieval_metrics(retrieval_ranks(audio, sheet))
    s2a = retrieval_metrics(retrieval_ranks(sheet, audio))
    losses = []
    for start in range(0, len(sheet) - 1, settings.batch_size):
        x = torch.from_numpy(sheet[start : start + settings.batch_size])
        y = torch.from_numpy(audio[start : start + settings.batch_size])
        if len(x) >= 2:
            losses.append(float(ranking_loss(x, y, margin=settings.margin)))
    return {
        "valid_loss": float(np.mean(losses)) if losses else math.nan,
        "valid_mrr_a2s": a2s["MRR"],
        "valid_mrr_s2a": s2a["MRR"],
        "valid_mrr": (a2s["MRR"] + s2a["MRR"]) / 2,
    }


def _fresh_state(settings: TrainSettings, n_pairs: int) -> tuple[TrainingState, np.ndarray | None]:
    rng = np.random.default_rng(settings.seed)
    audio_of = rng.permutation(n_pairs) if settings.shuffle_pairs else None
    order = rng.permutation(n_pairs)
    return TrainingState(rng=rng.bit_generator.state, order=order), audio_of


def run_training(
    data: RunData,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train from a prepared run folder, from the start or from its ``state.pt``.

    Parameters
    ----------
    data : RunData
        From :func:`prepare_run` or :func:`load_run`.
    out_dir : path-like
        The run folder.
    resume : bool, optional
        Continue from ``state.pt`` if there is one.
    log : callable, optional
        Receives one progress line per epoch.

    Returns
    -------
    TrainResult
    """
    settings = data.settings
    say = log or (lambda line: None)
    out = Path(out_dir)
    device = resolve_device(settings.device)
    configure(device, settings.threads)
    bf16 = use_bfloat16(settings.precision, device)
    batcher = PairBatcher(
        data.train,
        device,
        sheet_augmentation=settings.pair_settings().sheet_augmentation,
        audio_augmentation=settings.audio_augmentation,
    )
    plain = PairBatcher(data.train, device)
    valid = PairBatcher(data.valid, device)

    torch.manual_seed(settings.seed)
    model = EmbeddingModel(settings.model_settings()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    state, audio_of = _fresh_state(settings, len(batcher))
    if resume and (out / STATE_FILE).is_file():
        state = load_state(out / STATE_FILE)
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        if state.best_model is not None:
            best = EmbeddingModel(settings.model_settings())
            best.load_state_dict(state.best_model)
            save_checkpoint(
                out / "best.pt", best, {"epoch": state.best_epoch, "valid": state.best_valid}
            )
        say(
            f"resuming after epoch {state.epoch}"
            + (f" and {state.step_in_epoch} steps" if state.step_in_epoch else "")
        )
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng
    weights = [
        m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    augment = settings.sheet_augmentation or settings.audio_augmentation
    say(
        f"train pairs {len(batcher)} ({len(data.train.piece_ids)} pieces), "
        f"valid pairs {len(valid)}, model {settings.model}/{settings.context_frames}, "
        f"{device.type}, {'bfloat16' if bf16 else 'float32'}, {settings.threads} thread(s)"
    )

    steps_per_epoch = settings.epoch_pairs // settings.batch_size
    part_started = time.perf_counter()
    elapsed0 = state.elapsed_s

    def out_of_time() -> bool:
        budget = settings.time_budget_s
        return bool(budget) and time.perf_counter() - part_started > budget

    def snapshot() -> None:
        state.model = model.state_dict()
        state.optimizer = optimizer.state_dict()
        state.rng = rng.bit_generator.state
        state.elapsed_s = elapsed0 + time.perf_counter() - part_started
        save_state(out / STATE_FILE, state)

    history = list(state.history)
    stopped = state.finished
    epoch = state.epoch
    while not stopped and epoch < settings.max_epochs:
        epoch += 1
        model.train()
        losses = list(state.epoch_losses)
        epoch_started = time.perf_counter()
        epoch_pairs = 0
        timed_out = False
        for _ in range(state.step_in_epoch, steps_per_epoch):
            if state.cursor + settings.batch_size > len(state.order):
                state.order, state.cursor = rng.permutation(len(batcher)), 0
            idx = state.order[state.cursor : state.cursor + settings.batch_size]
            state.cursor += settings.batch_size
            audio_idx = None if audio_of is None else audio_of[idx]
            t0 = time.perf_counter()
            aug = batcher.draw(idx, rng, audio_indices=audio_idx) if augment else None
            sheets, audio = batcher.batch(idx, aug, audio_indices=audio_idx)
            t1 = time.perf_counter()
            with autocast(device, bf16):
                x, y = model(sheets, audio)
            loss = ranking_loss(
                x.float(), y.float(), margin=settings.margin, symmetric=settings.symmetric_loss
            )
            total = loss + settings.weight_decay * _weight_penalty(weights)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            finite = torch.stack([torch.isfinite(total)] + [torch.isfinite(g).all() for g in grads])
            if bool(finite.all()):
                optimizer.step()
                losses.append(float(loss.detach()))
            else:
                state.skipped += 1
            t2 = time.perf_counter()
            state.cut_s += t1 - t0
            state.step_s += t2 - t0
            state.pairs_seen += len(idx)
            epoch_pairs += len(idx)
            state.step_in_epoch += 1
            if out_of_time():
                timed_out = True
                if state.step_in_epoch < steps_per_epoch:
                    state.epoch_losses = losses
                    snapshot()  # mid-epoch: a resumed run finishes this epoch
                break
        epoch_seconds = time.perf_counter() - epoch_started
        if settings.bn_recalibration_pairs:
            recalibrate_batch_norm(
                model,
                plain,
                settings.bn_recalibration_pairs,
                batch_size=settings.batch_size,
                rng=np.random.default_rng(settings.seed + epoch),
                audio_of=audio_of,
                bfloat16=bf16,
            )
        scores = _validate(model, valid, settings, bf16)
        row = {
            "epoch": epoch,
            "pairs_seen": state.pairs_seen,
            "seconds": round(elapsed0 + time.perf_counter() - part_started, 2),
            "learning_rate": optimizer.param_groups[0]["lr"],
            "train_loss": float(np.mean(losses)) if losses else math.nan,
            **scores,
            "train_pairs_per_s": epoch_pairs / epoch_seconds if epoch_seconds > 0 else math.nan,
            "skipped_steps": state.skipped,
        }
        history.append(row)
        _write_history(out, history)
        improved = scores["valid_mrr"] > state.best_score
        if improved:
            state.best_score, state.best_epoch = scores["valid_mrr"], epoch
            state.best_valid = scores
            state.best_model = copy.deepcopy(model.state_dict())
            save_checkpoint(out / "best.pt", model, {"epoch": epoch, "valid": scores})
        say(
            f"epoch {epoch:4d}  pairs {state.pairs_seen:8d}  {row['seconds']:8.1f} s  "
            f"lr {row['learning_rate']:.2g}  loss {row['train_loss']:.4f}  "
            f"valid loss {scores['valid_loss']:.4f}  MRR a2s {scores['valid_mrr_a2s']:.3f} "
            f"s2a {scores['valid_mrr_s2a']:.3f}{'  *' if improved else ''}"
        )
        if timed_out and state.step_in_epoch < steps_per_epoch:
            say("time budget used up in the middle of an epoch; --resume continues it")
            break
        state.since_best = 0 if improved else state.since_best + 1
        if state.since_best >= settings.patience_epochs:
            if state.halvings >= settings.lr_halvings:
                say("no improvement after the last learning-rate reduction; stopping")
                state.finished = stopped = True
            else:
                state.halvings += 1
                state.since_best = 0
                model.load_state_dict(state.best_model)
                for group in optimizer.param_groups:
                    group["lr"] *= settings.lr_factor
                say(f"plateau: best parameters restored, learning rate {group['lr']:.3g}")
        state.epoch, state.step_in_epoch, state.epoch_losses = epoch, 0, []
        state.history = list(history)
        snapshot()
        if timed_out or out_of_time():
            say("time budget used up")
            break
    if not history:
        raise ConfigError(f"{out}: nothing to train (max_epochs {settings.max_epochs} reached)")
    return _finish(data, out, model, history, state, audio_of, bf16, plain, valid, say)


def _finish(
    data: RunData,
    out: Path,
    model: EmbeddingModel,
    history: list[dict[str, Any]],
    state: TrainingState,
    audio_of: np.ndarray | None,
    bf16: bool,
    plain: PairBatcher,
    valid: PairBatcher,
    say: Callable[[str], None],
) -> TrainResult:
    """Write last.pt, refine the best model's CCA layer, write metrics.json and the plot."""
    settings = data.settings
    save_checkpoint(out / "last.pt", model, {"epoch": len(history), "valid": history[-1]})
    best_model = EmbeddingModel(settings.model_settings()).to(model_device(model))
    best_model.load_state_dict(state.best_model if state.best_model else model.state_dict())
    best_model.eval()
    best_valid = dict(state.best_valid) or history[-1]
    checkpoint = out / "best.pt"
    refined: dict[str, Any] | None = None
    if settings.refine_cca_pairs:
        refined = refine_cca(
            best_model, plain, settings.refine_cca_pairs, bfloat16=bf16, audio_of=audio_of
        )
        refined["valid"] = _validate(best_model, valid, settings, bf16)
        checkpoint = out / "refined.pt"
        save_checkpoint(
            checkpoint, best_model, {"epoch": state.best_epoch, "valid": refined["valid"]}
        )
        best_valid = refined["valid"]
        say(
            f"CCA refit on {refined['pairs']} training pairs: valid MRR a2s "
            f"{best_valid['valid_mrr_a2s']:.3f} s2a {best_valid['valid_mrr_s2a']:.3f}"
        )
    throughput = {
        "train_pairs": len(plain),
        "valid_pairs": len(valid),
        "pairs_seen": state.pairs_seen,
        "seconds": history[-1]["seconds"],
        "train_pairs_per_s": state.pairs_seen / state.step_s if state.step_s else math.nan,
        "extract_pairs_per_s": state.pairs_seen / state.cut_s if state.cut_s else math.nan,
        "threads": settings.threads,
        "device": settings.device,
        "precision": "bfloat16" if bf16 else "float32",
    }
    summary = {
        "settings": settings.to_dict(),
        "model": settings.model_settings().to_dict(),
        "train_pieces": data.train.piece_ids,
        "valid_pieces": data.info.get("valid_pieces", []),
        "train_soundfonts": data.info.get("train_soundfonts", {}),
        "best_epoch": state.best_epoch,
        "best_valid": best_valid,
        "refined": refined,
        "throughput": throughput,
        "history": history,
        "checkpoint": checkpoint.name,
        # the schedule ran out, or max_epochs was reached (not a time budget's stop)
        "finished": bool(state.finished or state.epoch >= settings.max_epochs),
    }
    with atomic_path(out / "metrics.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, default=float), encoding="utf-8")
    plot_learning_curve(history, out / "learning_curve.png")
    return TrainResult(out, checkpoint, state.best_epoch, best_valid, history, throughput)


def train(
    train_pieces: Sequence[PieceRecord],
    valid_pieces: Sequence[PieceRecord],
    settings: TrainSettings,
    out_dir: str | os.PathLike[str],
    *,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train an embedding model on the pairs of ``train_pieces``.

    :func:`prepare_run`, then :func:`run_training`, in ``out_dir``.

    Parameters
    ----------
    train_pieces : sequence of PieceRecord
        Training pieces with their performances.
    valid_pieces : sequence of PieceRecord
        Validation pieces (all their performances give validation pairs).
    settings : TrainSettings
        The run's settings.
    out_dir : path-like
        Directory for checkpoints and logs (created).
    log : callable, optional
        Receives one progress line per epoch.

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        If either set of pieces gives too few pairs.
    """
    data = prepare_run(train_pieces, valid_pieces, settings, out_dir)
    return run_training(data, out_dir, log=log)


def _write_history(out: Path, history: list[dict[str, Any]]) -> None:
    with atomic_path(out / "metrics.csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS)
            writer.writeheader()
            for row in history:
                writer.writerow({k: row.get(k) for k in HISTORY_FIELDS})


def plot_learning_curve(history: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Plot training/validation loss and validation MRR against epochs into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, [row["train_loss"] for row in history], label="train loss", color="C0")
    ax.plot(epochs, [row["valid_loss"] for row in history], label="valid loss", color="C1")
    ax.set_xlabel("epoch")
    ax.set_ylabel("ranking loss")
    right = ax.twinx()
    right.plot(epochs, [row["valid_mrr_a2s"] for row in history], "--", color="C2", label="MRR a2s")
    right.plot(epochs, [row["valid_mrr_s2a"] for row in history], ":", color="C3", label="MRR s2a")
    right.set_ylabel("validation MRR")
    right.set_ylim(0, 1)
    lines = ax.get_lines() + right.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
