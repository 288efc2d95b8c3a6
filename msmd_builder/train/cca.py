"""Canonical correlation analysis of two views' embeddings (numpy, float64).

The papers' models end in a *canonically correlated embedding layer*
(Dorfer et al., IJMIR 2018): the two views' 32-d outputs are centred and
projected onto their canonical directions before length normalisation.  During
training the projection comes from each mini-batch; the 2019 paper's "refined"
models re-estimate it once on many training pairs, which :func:`fit_cca` does.
The same formulas, in torch and differentiable, are in
:class:`msmd_builder.train.models.CCALayer`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msmd_builder.core.errors import ConfigError

__all__ = ["CCAProjection", "fit_cca", "inverse_sqrt"]


@dataclass(frozen=True)
class CCAProjection:
    """Means and projection matrices of a fitted CCA.

    ``(h1 - mean1) @ u`` and ``(h2 - mean2) @ v`` are the canonical variates,
    ordered by decreasing correlation ``corr``.
    """

    mean1: np.ndarray
    mean2: np.ndarray
    u: np.ndarray
    v: np.ndarray
    corr: np.ndarray


def inverse_sqrt(s: np.ndarray) -> np.ndarray:
    """Return ``s^(-1/2)`` of a symmetric positive definite matrix."""
    d, a = np.linalg.eigh(s)
    return (a * (1.0 / np.sqrt(d))) @ a.T


def fit_cca(h1: np.ndarray, h2: np.ndarray, *, r1: float = 1e-3, r2: float = 1e-3) -> CCAProjection:
    """Fit CCA with ridge terms ``r1``, ``r2`` on the covariances.

    Parameters
    ----------
    h1, h2 : np.ndarray [shape=(n, dim)]
        Paired samples of the two views (sheet, audio).
    r1, r2 : float, optional
        Added to the diagonals of the two covariance matrices.

    Returns
    -------
    CCAProjection
    """
    h1 = np.asarray(h1, dtype=np.float64)
    h2 = np.asarray(h2, dtype=np.float64)
    if h1.ndim != 2 or h1.shape != h2.shape or h1.shape[0] < 2:
        raise ConfigError(f"need two (n >= 2, dim) arrays of one shape, got {h1.shape}, {h2.shape}")
    n, dim = h1.shape
    mean1, mean2 = h1.mean(axis=0), h2.mean(axis=0)
    c1, c2 = h1 - mean1, h2 - mean2
    s11 = c1.T @ c1 / (n - 1) + r1 * np.eye(dim)
    s22 = c2.T @ c2 / (n - 1) + r2 * np.eye(dim)
    s12 = c1.T @ c2 / (n - 1)
    s11si, s22si = inverse_sqrt(s11), inverse_sqrt(s22)
    u, corr, vt = np.linalg.svd(s11si @ s12 @ s22si)
    return CCAProjection(mean1, mean2, s11si @ u, s22si @ vt.T, corr)
