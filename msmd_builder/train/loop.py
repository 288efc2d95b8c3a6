"""Training: settings, batches, the learning-rate schedule, checkpoints and logs.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msmd_builder.core.cache import atomic_path
from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PieceRecord
from msmd_builder.dataset.pairs import (
    NO_SHEET_AUGMENTATION,
    PairPool,
    PairSettings,
    SheetAugmentation,
    evenly_spaced,
)
from msmd_builder.train.cca import fit_cca
from msmd_builder.train.loss import ranking_loss
from msmd_builder.train.metrics import retrieval_metrics, retrieval_ranks
from msmd_builder.train.models import (
    PRECISIONS,
    EmbeddingModel,
    ModelSettings,
    as_input,
    use_bfloat16,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "HISTORY_FIELDS",
    "TrainSettings",
    "TrainResult",
    "train",
    "embed_pairs",
    "refine_cca",
    "save_checkpoint",
    "load_checkpoint",
    "reference_performances",
    "recalibrate_batch_norm",
    "plot_learning_curve",
]

CHECKPOINT_FORMAT = "msmd-builder/embedding-model"
CHECKPOINT_VERSION = 1

#: Columns of ``metrics.csv``.
HISTORY_FIELDS = (
    "epoch",
    "pairs_seen",
    "seconds",
    "learning_rate",
    "train_loss",
    "valid_loss",
    "valid_mrr_a2s",
    "valid_mrr_s2a",
    "valid_mrr",
    "train_pairs_per_s",
    "skipped_steps",
)


@dataclass(frozen=True)
class TrainSettings:
    """Everything that defines a training run (defaults: the 2018 paper's).

    Attributes
    ----------
    model : {'2018', '2019', '2019-attention'}
        Architecture (:mod:`msmd_builder.train.models`).
    context_frames : int
        Audio excerpt width: 42, 84 or 168.
    maps : tuple of int
        Feature maps of the four conv blocks (24, 48, 96, 96; smaller for tests).
    cca_layer : bool
        End the model in the CCA embedding layer.
    batch_size : int
        Pairs per step (100); the other pairs of a batch are the negatives.
    learning_rate : float
        Adam's initial learning rate (0.002).
    lr_factor : float
        Learning-rate multiplier on a validation plateau (0.5).
    patience_epochs : int
        Epochs without a better validation MRR before the multiplier applies (30).
    lr_halvings : int
        How many times the rate is lowered before training stops (5).
    epoch_pairs : int
        Training pairs per epoch (10,000 in the original implementation).
    max_epochs : int
        Upper bound on epochs.
    time_budget_s : float or None
        Wall-clock budget for the training steps and validations.
    margin : float
        Margin of the ranking loss (0.7).
    symmetric_loss : bool
        Rank both directions in the loss (the paper's Eq. 1 ranks audio for sheet).
    weight_decay : float
        L2 penalty on convolution and dense weights, added to the loss (1e-5).
    sheet_augmentation : bool
        Scale 0.95--1.05 and shift +-5 px (2018, Section 3.2).
    audio_augmentation : bool
        Pairs from every training performance, and each pair's audio from a
        random performance of its piece; without it, the first (reference)
        performance of each piece only -- the papers' "none".
    one_per_onset : bool
        One pair per distinct onset frame (MSMD's pool rule).
    valid_pairs : int
        Validation pairs (evenly spaced over the validation pool).
    refine_cca_pairs : int
        Refit the CCA layer on this many training pairs after training (0: no).
    bn_recalibration_pairs : int
        Before every validation, re-estimate the batch-norm statistics on this
        many training pairs (0: keep the running averages).  Early in training
        the running averages lag behind the weights and the eval-mode model
        ranks near chance although it has learned; long runs hardly change.
    shuffle_pairs : bool
        Control experiment: pair every snippet with the audio of a fixed random
        other pair, so nothing can be learned.
    precision : {'auto', 'float32', 'bfloat16'}
        Autocast of the networks (:data:`~msmd_builder.train.models.PRECISIONS`);
        ``auto`` uses bfloat16 where the CPU supports it natively.
    seed : int
        Seed of parameters, batches and augmentation.
    threads : int
        torch intra-op threads.
    """

    model: str = "2018"
    context_frames: int = 42
    maps: tuple[int, ...] = (24, 48, 96, 96)
    cca_layer: bool = True
    batch_size: int = 100
    learning_rate: float = 0.002
    lr_factor: float = 0.5
    patience_epochs: int = 30
    lr_halvings: int = 5
    epoch_pairs: int = 10_000
    max_epochs: int = 1000
    time_budget_s: float | None = None
    margin: float = 0.7
    symmetric_loss: bool = False
    weight_decay: float = 1e-5
    sheet_augmentation: bool = False
    audio_augmentation: bool = False
    one_per_onset: bool = True
    valid_pairs: int = 2000
    refine_cca_pairs: int = 0
    bn_recalibration_pairs: int = 1000
    shuffle_pairs: bool = False
    precision: str = "auto"
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        checks = [
            (self.batch_size >= 2, "batch_size must be >= 2"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (0 < self.lr_factor < 1, "lr_factor must be in (0, 1)"),
            (self.patience_epochs >= 1, "patience_epochs must be >= 1"),
            (self.lr_halvings >= 0, "lr_halvings must be >= 0"),
            (self.epoch_pairs >= self.batch_size, "epoch_pairs must be >= batch_size"),
            (self.max_epochs >= 1, "max_epochs must be >= 1"),
            (self.time_budget_s is None or self.time_budget_s > 0, "time_budget_s must be > 0"),
            (self.valid_pairs >= 2, "valid_pairs must be >= 2"),
            (self.refine_cca_pairs >= 0, "refine_cca_pairs must be >= 0"),
            (self.bn_recalibration_pairs >= 0, "bn_recalibration_pairs must be >= 0"),
            (self.threads >= 1, "threads must be >= 1"),
            (not (self.refine_cca_pairs and not self.cca_layer), "refining needs the CCA layer"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.model_settings()  # validates model name and context

    def model_settings(self) -> ModelSettings:
        """Return the :class:`ModelSettings` of this run."""
        return ModelSettings(
            name=self.model,
            context_frames=self.context_frames,
            maps=tuple(self.maps),
            cca_layer=self.cca_layer,
        )

    def pair_settings(self) -> PairSettings:
        """Return the :class:`PairSettings` of the training pool."""
        return PairSettings(
            context_frames=self.context_frames,
            one_per_onset=self.one_per_onset,
            sheet_augmentation=SheetAugmentation()
            if self.sheet_augmentation
            else NO_SHEET_AUGMENTATION,
            audio_augmentation=self.audio_augmentation,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-friendly dict."""
        out = asdict(self)
        out["maps"] = list(self.maps)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown training settings: {sorted(unknown)}")
        kwargs = dict(data)
        if "maps" in kwargs:
            kwargs["maps"] = tuple(int(m) for m in kwargs["maps"])
        return cls(**kwargs)


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    out_dir : Path
        Where the files are.
    checkpoint : Path
        The model to evaluate: ``refined.pt`` if refined, else ``best.pt``.
    best_epoch : int
        Epoch of the best validation MRR.
    best_valid : dict
        Validation metrics of that epoch (after refinement when refined).
    history : list of dict
        One entry per epoch (:data:`HISTORY_FIELDS`).
    throughput : dict
        ``train_pairs_per_s`` (steps including batch cutting), ``extract_pairs_per_s``
        (batch cutting alone), ``train_pairs`` (pool size), ``seconds``.
    """

    out_dir: Path
    checkpoint: Path
    best_epoch: int
    best_valid: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    throughput: dict[str, float] = field(default_factory=dict)


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


@torch.no_grad()
def embed_pairs(
    model: EmbeddingModel,
    pool: PairPool,
    indices: np.ndarray,
    *,
    batch_size: int = 250,
    features: bool = False,
    bfloat16: bool = False,
    audio_indices: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embed the sheet and audio of the given pairs with the model in eval mode.

    Parameters
    ----------
    model : EmbeddingModel
        The model (switched to eval mode, and back if it was training).
    pool : PairPool
        The pairs.
    indices : np.ndarray
        Pool indices.
    batch_size : int, optional
        Pairs per forward pass.
    features : bool, optional
        Return the pathway outputs before the CCA layer instead of embeddings.
    bfloat16 : bool, optional
        Run the networks under bfloat16 autocast.
    audio_indices : np.ndarray, optional
        Take the audio from these pairs instead (see :meth:`PairPool.batch`).

    Returns
    -------
    sheet, audio : np.ndarray [shape=(n, dim), dtype=float32]
    """
    was_training = model.training
    model.eval()
    sheets, audios = [], []
    for start in range(0, len(indices), batch_size):
        chunk = slice(start, start + batch_size)
        s, a = pool.batch(
            indices[chunk], audio_indices=None if audio_indices is None else audio_indices[chunk]
        )
        s_t, a_t = as_input(s), as_input(a)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            if features:
                pair = model.sheet_features(s_t), model.audio_features(a_t)
            else:
                pair = model.embed_sheet(s_t), model.embed_audio(a_t)
        sheets.append(pair[0].float().numpy())
        audios.append(pair[1].float().numpy())
    model.train(was_training)
    dim = model.settings.embedding_dim
    if not sheets:
        return np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32)
    return np.concatenate(sheets), np.concatenate(audios)


def refine_cca(
    model: EmbeddingModel,
    pool: PairPool,
    n_pairs: int,
    *,
    bfloat16: bool = False,
    audio_of: np.ndarray | None = None,
) -> dict[str, float]:
    """Refit the model's CCA layer on ``n_pairs`` evenly spaced pairs of ``pool``.

    ``audio_of`` re-pairs the audio as in a shuffled-pairs control run.  Returns
    the canonical correlations' summary (``pairs``, ``mean``, ``top``).
    """
    if model.cca is None:
        raise ConfigError("the model has no CCA layer to refine")
    indices = evenly_spaced(len(pool), n_pairs)
    if len(indices) <= model.settings.embedding_dim:
        raise ConfigError(f"{len(indices)} pairs are too few to fit a CCA")
    h1, h2 = embed_pairs(
        model,
        pool,
        indices,
        features=True,
        bfloat16=bfloat16,
        audio_indices=None if audio_of is None else audio_of[indices],
    )
    fit = fit_cca(h1, h2, r1=model.settings.cca_ridge, r2=model.settings.cca_ridge)
    model.cca.set_projection(fit.mean1, fit.mean2, fit.u, fit.v)
    return {"pairs": int(len(indices)), "mean": float(fit.corr.mean()), "top": float(fit.corr[0])}


@torch.no_grad()
def recalibrate_batch_norm(
    model: EmbeddingModel,
    pool: PairPool,
    n_pairs: int,
    *,
    batch_size: int = 100,
    rng: np.random.Generator,
    audio_of: np.ndarray | None = None,
    bfloat16: bool = False,
) -> None:
    """Replace the batch-norm running statistics by their mean over random training batches."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    for _ in range(max(n_pairs // batch_size, 1)):
        idx = rng.choice(len(pool), size=min(batch_size, len(pool)), replace=False)
        sheets, audio = pool.batch(idx, audio_indices=None if audio_of is None else audio_of[idx])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            model(as_input(sheets), as_input(audio))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)


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


def save_checkpoint(path: Path, model: EmbeddingModel, info: dict[str, Any]) -> None:
    """Write a model and JSON-friendly ``info`` atomically."""
    payload = {
        "format_name": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model": model.settings.to_dict(),
        "state_dict": model.state_dict(),
        "info": info,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[EmbeddingModel, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; the model is in eval mode."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format_name") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    if payload.get("format_version") != CHECKPOINT_VERSION:
        raise ConfigError(f"{path}: unsupported checkpoint version {payload.get('format_version')}")
    model = EmbeddingModel(ModelSettings.from_dict(payload["model"]))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, dict(payload.get("info", {}))


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
