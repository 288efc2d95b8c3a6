"""Training settings and the run's result record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from msmd_builder.core.errors import ConfigError
from msmd_builder.dataset.pairs import (
    NO_SHEET_AUGMENTATION,
    PairSettings,
    SheetAugmentation,
)
from msmd_builder.train import DEVICES
from msmd_builder.train.models import (
    PRECISIONS,
    ModelSettings,
)

__all__ = ["HISTORY_FIELDS", "RESUMABLE_CHANGES", "TrainSettings", "TrainResult"]


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
        Wall-clock budget for the training steps and validations of one part
        of the run (a resumed run gets a new budget).
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
    device : {'cpu', 'cuda'}
        Where the networks run and the batches are cut.
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
    device: str = "cpu"

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
            (self.device in DEVICES, f"device must be one of {DEVICES}"),
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


#: Settings a resumed run may change: they do not change what is trained, only
#: how long this part runs and where (a different device or thread count can
#: change the last digits of the numbers).
RESUMABLE_CHANGES = ("max_epochs", "time_budget_s", "threads", "device")


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
