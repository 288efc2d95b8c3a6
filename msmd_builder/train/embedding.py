"""Embedding pairs with a trained model, its batch-norm recalibration and CCA refinement.

Each function takes its pairs from a *pair source*: a
:class:`~msmd_builder.dataset.pairs.PairPool` (numpy, one pair at a time) or a
:class:`~msmd_builder.train.batches.PairBatcher` (whole batches on the model's
device); both have ``len()`` and ``batch(indices, audio_indices=...)``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from msmd_builder.core.errors import ConfigError
from msmd_builder.dataset.pairs import evenly_spaced
from msmd_builder.train.cca import fit_cca
from msmd_builder.train.models import EmbeddingModel, as_input, model_device
from msmd_builder.train.runtime import autocast

__all__ = ["PairSource", "embed_pairs", "refine_cca", "recalibrate_batch_norm"]


class PairSource(Protocol):
    """What the functions here need of a set of pairs."""

    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray, *, audio_indices: Any = None) -> tuple[Any, Any]:
        """Cut pairs ``indices`` as (sheets, audio) arrays or tensors."""
        ...


@torch.no_grad()
def embed_pairs(
    model: EmbeddingModel,
    pool: PairSource,
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
    pool : PairSource
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
    device = model_device(model)
    sheets, audios = [], []
    for start in range(0, len(indices), batch_size):
        chunk = slice(start, start + batch_size)
        s, a = pool.batch(
            indices[chunk], audio_indices=None if audio_indices is None else audio_indices[chunk]
        )
        s_t, a_t = as_input(s, device), as_input(a, device)
        with autocast(device, bfloat16):
            if features:
                pair = model.sheet_features(s_t), model.audio_features(a_t)
            else:
                pair = model.embed_sheet(s_t), model.embed_audio(a_t)
        sheets.append(pair[0].float().cpu().numpy())
        audios.append(pair[1].float().cpu().numpy())
    model.train(was_training)
    dim = model.settings.embedding_dim
    if not sheets:
        return np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32)
    return np.concatenate(sheets), np.concatenate(audios)


def refine_cca(
    model: EmbeddingModel,
    pool: PairSource,
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
    pool: PairSource,
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
    device = model_device(model)
    for _ in range(max(n_pairs // batch_size, 1)):
        idx = rng.choice(len(pool), size=min(batch_size, len(pool)), replace=False)
        sheets, audio = pool.batch(idx, audio_indices=None if audio_of is None else audio_of[idx])
        with autocast(device, bfloat16):
            model(as_input(sheets, device), as_input(audio, device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
