"""The embedding model shipped with the package, and how one gets there.

``msmd-build evaluate`` and ``msmd-build identify`` use ``model.pt`` of this
folder when no checkpoint is given; ``model.json`` beside it says what it is
(settings, training pieces and soundfonts, epochs, training time, validation
figures, checksum).  The package ships the folder as package data
(``pyproject.toml``); a model is at most :data:`MAX_MODEL_BYTES`.

The folder holds no model until one has been trained on the built corpus:
``make pretrained`` trains (or resumes) ``runs/pretrained`` on the ``all``
split with full augmentation and then runs :func:`install_pretrained`
(``python -m msmd_builder.train.pretrained RUN_DIR``), which refuses a run
trained on fewer than :data:`MIN_TRAIN_PIECES` pieces, so a model trained on
the bundled examples cannot be shipped by mistake.  Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from msmd_builder import __version__
from msmd_builder.core.cache import atomic_path, atomic_write_json, read_json, sha256_file
from msmd_builder.core.errors import ConfigError

__all__ = [
    "PRETRAINED_DIR",
    "MODEL_FILE",
    "CARD_FILE",
    "MAX_MODEL_BYTES",
    "MIN_TRAIN_PIECES",
    "pretrained_checkpoint",
    "install_pretrained",
]

PRETRAINED_DIR = Path(__file__).resolve().parent
MODEL_FILE = "model.pt"
CARD_FILE = "model.json"
#: Largest model the package ships (the 2018 model is about 3 MB).
MAX_MODEL_BYTES = 20 * 2**20
#: A run trained on fewer pieces is not the corpus model (the examples have 16).
MIN_TRAIN_PIECES = 100


def pretrained_checkpoint(folder: str | os.PathLike[str] | None = None) -> Path:
    """Return the shipped model's checkpoint, or say clearly that there is none.

    Raises
    ------
    ConfigError
        If the package ships no model.
    """
    path = Path(folder or PRETRAINED_DIR) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(
            "no pretrained model ships with this installation of msmd-builder "
            f"({path} is absent): pass a checkpoint (best.pt or refined.pt of a training "
            "run), or train the corpus model with `make pretrained` (docs/training.md)"
        )
    return path


def install_pretrained(
    run_dir: str | os.PathLike[str],
    *,
    folder: str | os.PathLike[str] | None = None,
    min_train_pieces: int = MIN_TRAIN_PIECES,
) -> Path:
    """Copy a finished run's model into the package folder, with its ``model.json``.

    Parameters
    ----------
    run_dir : path-like
        A training run folder with ``metrics.json`` (its ``checkpoint``:
        ``refined.pt``, or ``best.pt`` without refinement).
    folder : path-like, optional
        Where to install (default :data:`PRETRAINED_DIR`).
    min_train_pieces : int, optional
        Refuse runs trained on fewer pieces.

    Returns
    -------
    Path
        The installed ``model.pt``.

    Raises
    ------
    ConfigError
        If the run has not finished (a time budget stopped its last part), was
        trained on too few pieces, or its model is too large.
    """
    run = Path(run_dir)
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file():
        raise ConfigError(f"{run} has no metrics.json: not a finished training run")
    metrics = read_json(metrics_path)
    if not metrics.get("finished", False):
        raise ConfigError(
            f"{run} has not finished training (a time budget stopped it): "
            f"continue it with msmd-build train --resume {run}"
        )
    source = run / metrics["checkpoint"]
    pieces = len(metrics.get("train_pieces", []))
    if pieces < min_train_pieces:
        raise ConfigError(
            f"{run} was trained on {pieces} pieces, fewer than {min_train_pieces}: "
            "not the corpus model; refusing to ship it"
        )
    size = source.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ConfigError(f"{source} has {size} bytes, more than {MAX_MODEL_BYTES}")
    target = Path(folder or PRETRAINED_DIR)
    target.mkdir(parents=True, exist_ok=True)
    with atomic_path(target / MODEL_FILE) as tmp:
        shutil.copyfile(source, tmp)
    history = metrics.get("history", [])
    run_info = read_json(run / "run.json") if (run / "run.json").is_file() else {}
    card: dict[str, Any] = {
        "msmd_builder_version": __version__,
        "sha256": sha256_file(target / MODEL_FILE),
        "checkpoint": metrics["checkpoint"],
        "settings": metrics["settings"],
        "source": run_info.get("source", {}),
        "train_pieces": pieces,
        "train_pairs": metrics.get("throughput", {}).get("train_pairs"),
        "train_soundfonts": metrics.get("train_soundfonts", {}),
        "epochs": len(history),
        "best_epoch": metrics.get("best_epoch"),
        "pairs_seen": metrics.get("throughput", {}).get("pairs_seen"),
        "training_seconds": history[-1]["seconds"] if history else None,
        "best_valid": metrics.get("best_valid"),
    }
    evaluation = run / "evaluation.json"
    if evaluation.is_file():
        report = read_json(evaluation)
        card["test"] = {
            "pieces": len(report.get("test_pieces", [])),
            "retrieval": report.get("retrieval"),
            "identification": report.get("identification"),
        }
    atomic_write_json(target / CARD_FILE, card)
    return target / MODEL_FILE


def describe(folder: str | os.PathLike[str] | None = None) -> str:
    """One line on the shipped model (or its absence), for logs."""
    card_path = Path(folder or PRETRAINED_DIR) / CARD_FILE
    if not card_path.is_file():
        return "no pretrained model"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    settings = card.get("settings", {})
    return (
        f"pretrained model {settings.get('model')}/{settings.get('context_frames')} frames, "
        f"{card.get('train_pieces')} training pieces, {card.get('epochs')} epochs"
    )
