"""The state a training run continues from (``msmd-build train --resume``).

A run folder holds, besides its checkpoints and logs:

``run.json``           the settings and where the pairs came from
``pairs-train.npz``    the packed training pairs (:class:`~msmd_builder.dataset.packed.PackedPairs`)
``pairs-valid.npz``    the packed validation pairs
``state.pt``           :class:`TrainingState`: parameters, Adam's moments,
                       the schedule, the random generator, the data order

``state.pt`` is written after every epoch and when a time budget ends a part
of the run in the middle of an epoch.  Everything the rest of the run depends
on is in it, so continuing from it gives the same numbers as never having
stopped (on the same device, with the same thread count).  The pair files
make the folder self-contained: a run prepared or started on one machine
continues on another without the dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msmd_builder.core.cache import atomic_path, read_json
from msmd_builder.core.errors import ConfigError

__all__ = [
    "STATE_FORMAT",
    "STATE_VERSION",
    "RUN_FILE",
    "STATE_FILE",
    "TRAIN_PAIRS_FILE",
    "VALID_PAIRS_FILE",
    "TrainingState",
    "save_state",
    "load_state",
    "read_run",
]

STATE_FORMAT = "msmd-builder/training-state"
STATE_VERSION = 1
RUN_FILE = "run.json"
STATE_FILE = "state.pt"
TRAIN_PAIRS_FILE = "pairs-train.npz"
VALID_PAIRS_FILE = "pairs-valid.npz"


@dataclass
class TrainingState:
    """Where a run stands (see the module docstring).

    Attributes
    ----------
    epoch : int
        Epochs completed (validated and scheduled).
    step_in_epoch : int
        Steps of epoch ``epoch + 1`` already taken (a part that ran out of time
        in the middle of an epoch); 0 at an epoch boundary.
    epoch_losses : list of float
        Training losses of those steps.
    model, optimizer : dict
        State dicts.
    rng : dict
        ``numpy.random.Generator.bit_generator.state``.
    order : np.ndarray
        The current permutation of the training pairs, and ``cursor`` into it.
    best_score, best_epoch, best_valid, best_model
        The best validation so far and the parameters it had.
    since_best, halvings, pairs_seen, skipped : int
        Schedule and counters.
    finished : bool
        The schedule has ended training (no more learning-rate reductions).
    history : list of dict
        One row per completed epoch.
    elapsed_s, step_s, cut_s : float
        Wall-clock seconds of all parts so far; of training steps; of cutting batches.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cursor: int = 0
    best_score: float = -np.inf
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    best_model: dict[str, Any] | None = None
    since_best: int = 0
    halvings: int = 0
    pairs_seen: int = 0
    skipped: int = 0
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    step_s: float = 0.0
    cut_s: float = 0.0


def _to_cpu(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu().clone()
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_cpu(v) for v in tree)
    return tree


def save_state(path: str | os.PathLike[str], state: TrainingState) -> None:
    """Write ``state`` atomically (tensors moved to the CPU)."""
    payload = {name: getattr(state, name) for name in state.__dataclass_fields__}
    payload["order"] = torch.from_numpy(np.asarray(state.order, dtype=np.int64))
    payload["best_score"] = float(state.best_score)
    payload = _to_cpu(payload)
    payload["format_name"] = STATE_FORMAT
    payload["format_version"] = STATE_VERSION
    with atomic_path(Path(path)) as tmp:
        torch.save(payload, tmp)


def load_state(path: str | os.PathLike[str]) -> TrainingState:
    """Read a state written by :func:`save_state` (tensors on the CPU)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise ConfigError(f"cannot read the training state {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format_name") != STATE_FORMAT:
        raise ConfigError(f"{path} is not a {STATE_FORMAT} file")
    if payload.get("format_version") != STATE_VERSION:
        raise ConfigError(f"{path}: unsupported state version {payload.get('format_version')}")
    fields = {k: v for k, v in payload.items() if k in TrainingState.__dataclass_fields__}
    fields["order"] = fields["order"].numpy()
    return TrainingState(**fields)


def read_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run folder's ``run.json``, or say that the folder is not a run."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} is not a training run folder (no {RUN_FILE}); "
            "start one with msmd-build train --out"
        )
    return read_json(path)
