"""Training: batches, validation, the learning-rate schedule and logs.

:func:`train` follows the 2018 paper (Section 3.3) and its implementation:
mini-batches of 100 pairs drawn at random from the whole training pool, the
ranking loss with margin 0.7 plus an L2 penalty of 1e-5 on the weights, Adam
with learning rate 0.002; an "epoch" is a fixed number of pairs (10,000 in the
original) followed by a validation pass; when the validation MRR has not
improved for ``patience_epochs`` epochs the best parameters are restored and
the learning rate halved, five times, after which training stops.  A time
budget ends it earlier.  Optionally the CCA layer is then refined on training
pairs (the 2019 paper's "refined" models).

Writes into ``out_dir``::

    best.pt             parameters of the best validation epoch
    last.pt             parameters after the last epoch
    refined.pt          best.pt with the CCA layer refit on training pairs (optional)
    metrics.csv         one row per epoch (see HISTORY_FIELDS)
    metrics.json        settings, history, throughput and the final summary
    learning_curve.png  training/validation loss and validation MRR per epoch

Runs are deterministic for a given seed and thread count
(``torch.manual_seed``, ``torch.set_num_threads``, numpy ``default_rng``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msmd_builder.core.cache import atomic_path
from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PieceRecord
from msmd_builder.dataset.pairs import (
    PairPool,
    PairSettings,
    evenly_spaced,
)
from msmd_builder.train.checkpoint import load_checkpoint, save_checkpoint
from msmd_builder.train.embedding import embed_pairs, recalibrate_batch_norm, refine_cca
from msmd_builder.train.loss import ranking_loss
from msmd_builder.train.metrics import retrieval_metrics, retrieval_ranks
from msmd_builder.train.models import (
    EmbeddingModel,
    as_input,
    use_bfloat16,
)
from msmd_builder.train.settings import HISTORY_FIELDS, TrainResult, TrainSettings

__all__ = ["reference_performances", "train", "plot_learning_curve"]


def reference_performances(pieces: Sequence[PieceRecord]) -> set[str]:
    """Ids of the first performance of each piece (the plan's reference rendering)."""
    return {p.performances[0].performance_id for p in pieces if p.performances}


def _weight_penalty(model: torch.nn.Module) -> torch.Tensor:
    terms = [
        (m.weight**2).sum()
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    return torch.stack(terms).sum()


def _validate(
    model: EmbeddingModel, pool: PairPool, indices: np.ndarray, settings: TrainSettings
) -> dict[str, float]:
    bf16 = use_bfloat16(settings.precision)
    sheet, audio = embed_pairs(model, pool, indices, bfloat16=bf16)
    a2s = retrieval_metrics(retrieval_ranks(audio, sheet))
    s2a = retrieval_metrics(retrieval_ranks(sheet, audio))
    losses = []
    for start in range(0, len(indices) - 1, settings.batch_size):
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


def train(
    train_pieces: Sequence[PieceRecord],
    valid_pieces: Sequence[PieceRecord],
    settings: TrainSettings,
    out_dir: str | os.PathLike[str],
    *,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train an embedding model on the pairs of ``train_pieces``.

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
    say = log or (lambda line: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    rng = np.random.default_rng(settings.seed)

    keep = None
    if not settings.audio_augmentation:
        refs = reference_performances(train_pieces)
        keep = lambda perf: perf.performance_id in refs  # noqa: E731
    pool = PairPool(train_pieces, settings.pair_settings(), keep_performance=keep)
    plain = PairSettings(settings.context_frames, settings.one_per_onset)
    valid_pool = PairPool(valid_pieces, plain)
    if len(pool) < settings.batch_size:
        raise ConfigError(f"{len(pool)} training pairs, fewer than one batch")
    if len(valid_pool) < 2:
        raise ConfigError(f"{len(valid_pool)} validation pairs; need at least 2")
    valid_idx = evenly_spaced(len(valid_pool), settings.valid_pairs)
    audio_of = rng.permutation(len(pool)) if settings.shuffle_pairs else None
    augment = settings.sheet_augmentation or settings.audio_augmentation

    bf16 = use_bfloat16(settings.precision)
    model = EmbeddingModel(settings.model_settings())
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    say(
        f"train pairs {len(pool)} ({len(pool.piece_ids)} pieces), "
        f"valid pairs {len(valid_idx)} of {len(valid_pool)}, "
        f"model {settings.model}/{settings.context_frames}, "
        f"{'bfloat16' if bf16 else 'float32'}, {settings.threads} thread(s)"
    )

    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_valid = -math.inf, 0, {}
    since_best, halvings, pairs_seen, skipped = 0, 0, 0, 0
    steps_per_epoch = settings.epoch_pairs // settings.batch_size
    order, cursor = rng.permutation(len(pool)), 0
    started = time.perf_counter()
    step_time, cut_time = 0.0, 0.0
    out_of_time = False
    for epoch in range(1, settings.max_epochs + 1):
        model.train()
        losses = []
        epoch_started = time.perf_counter()
        epoch_pairs = 0
        for _ in range(steps_per_epoch):
            if cursor + settings.batch_size > len(order):
                order, cursor = rng.permutation(len(pool)), 0
            idx = order[cursor : cursor + settings.batch_size]
            cursor += settings.batch_size
            t0 = time.perf_counter()
            sheets, audio = pool.batch(
                idx, augment, rng, audio_indices=None if audio_of is None else audio_of[idx]
            )
            t1 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                x, y = model(as_input(sheets), as_input(audio))
            loss = ranking_loss(
                x.float(), y.float(), margin=settings.margin, symmetric=settings.symmetric_loss
            )
            total = loss + settings.weight_decay * _weight_penalty(model)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            grads_ok = all(
                p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters()
            )
            if bool(torch.isfinite(total)) and grads_ok:
                optimizer.step()
                losses.append(float(loss.detach()))
            else:
                skipped += 1
            t2 = time.perf_counter()
            cut_time += t1 - t0
            step_time += t2 - t0
            pairs_seen += len(idx)
            epoch_pairs += len(idx)
            if settings.time_budget_s and time.perf_counter() - started > settings.time_budget_s:
                out_of_time = True
                break
        epoch_seconds = time.perf_counter() - epoch_started
        if settings.bn_recalibration_pairs:
            recalibrate_batch_norm(
                model,
                pool,
                settings.bn_recalibration_pairs,
                batch_size=settings.batch_size,
                rng=np.random.default_rng(settings.seed + epoch),
                audio_of=audio_of,
                bfloat16=bf16,
            )
        valid = _validate(model, valid_pool, valid_idx, settings)
        row = {
            "epoch": epoch,
            "pairs_seen": pairs_seen,
            "seconds": round(time.perf_counter() - started, 2),
            "learning_rate": optimizer.param_groups[0]["lr"],
            "train_loss": float(np.mean(losses)) if losses else math.nan,
            **valid,
            "train_pairs_per_s": epoch_pairs / epoch_seconds if epoch_seconds > 0 else math.nan,
            "skipped_steps": skipped,
        }
        history.append(row)
        _write_history(out, history)
        improved = valid["valid_mrr"] > best_score
        if improved:
            best_score, best_epoch, best_valid, since_best = valid["valid_mrr"], epoch, valid, 0
            save_checkpoint(out / "best.pt", model, {"epoch": epoch, "valid": valid})
        else:
            since_best += 1
        say(
            f"epoch {epoch:4d}  pairs {pairs_seen:8d}  {row['seconds']:8.1f} s  "
            f"lr {row['learning_rate']:.2g}  loss {row['train_loss']:.4f}  "
            f"valid loss {valid['valid_loss']:.4f}  MRR a2s {valid['valid_mrr_a2s']:.3f} "
            f"s2a {valid['valid_mrr_s2a']:.3f}{'  *' if improved else ''}"
        )
        if settings.time_budget_s and time.perf_counter() - started > settings.time_budget_s:
            out_of_time = True
        if out_of_time:
            say("time budget used up")
            break
        if since_best >= settings.patience_epochs:
            if halvings >= settings.lr_halvings:
                say("no improvement after the last learning-rate reduction; stopping")
                break
            halvings += 1
            since_best = 0
            model.load_state_dict(load_checkpoint(out / "best.pt")[0].state_dict())
            for group in optimizer.param_groups:
                group["lr"] *= settings.lr_factor
            say(f"plateau: best parameters restored, learning rate {group['lr']:.3g}")

    save_checkpoint(out / "last.pt", model, {"epoch": len(history), "valid": history[-1]})
    best_model, _ = load_checkpoint(out / "best.pt")
    checkpoint = out / "best.pt"
    refined: dict[str, Any] | None = None
    if settings.refine_cca_pairs:
        refit_pool = PairPool(train_pieces, plain, keep_performance=keep)
        refined = refine_cca(
            best_model, refit_pool, settings.refine_cca_pairs, bfloat16=bf16, audio_of=audio_of
        )
        refined["valid"] = _validate(best_model, valid_pool, valid_idx, settings)
        checkpoint = out / "refined.pt"
        save_checkpoint(checkpoint, best_model, {"epoch": best_epoch, "valid": refined["valid"]})
        best_valid = refined["valid"]
        say(
            f"CCA refit on {refined['pairs']} training pairs: valid MRR a2s "
            f"{best_valid['valid_mrr_a2s']:.3f} s2a {best_valid['valid_mrr_s2a']:.3f}"
        )
    throughput = {
        "train_pairs": len(pool),
        "valid_pairs": int(len(valid_idx)),
        "pairs_seen": pairs_seen,
        "seconds": round(time.perf_counter() - started, 2),
        "train_pairs_per_s": pairs_seen / step_time if step_time else math.nan,
        "extract_pairs_per_s": pairs_seen / cut_time if cut_time else math.nan,
        "threads": settings.threads,
        "precision": "bfloat16" if bf16 else "float32",
    }
    summary = {
        "settings": settings.to_dict(),
        "model": settings.model_settings().to_dict(),
        "train_pieces": pool.piece_ids,
        "valid_pieces": valid_pool.piece_ids,
        "best_epoch": best_epoch,
        "best_valid": best_valid,
        "refined": refined,
        "throughput": throughput,
        "history": history,
        "checkpoint": checkpoint.name,
    }
    with atomic_path(out / "metrics.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, default=float), encoding="utf-8")
    plot_learning_curve(history, out / "learning_curve.png")
    return TrainResult(out, checkpoint, best_epoch, best_valid, history, throughput)


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
