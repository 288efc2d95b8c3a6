"""Checkpoint files: architecture, state dict and facts of a run, with a format name and version."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from msmd_builder.core.cache import atomic_path
from msmd_builder.core.errors import ConfigError
from msmd_builder.train.models import (
    EmbeddingModel,
    ModelSettings,
)

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "save_checkpoint", "load_checkpoint"]


CHECKPOINT_FORMAT = "msmd-builder/embedding-model"


CHECKPOINT_VERSION = 1


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
