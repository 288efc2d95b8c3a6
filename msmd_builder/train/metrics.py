"""Retrieval and identification measures of the papers (numpy only).

Two-way snippet retrieval (2018, Section 4): query ``i`` of one view should
find candidate ``i`` of the other among all candidates, ranked by cosine
distance.  From the 1-based ranks of the true candidates:

``R@k``  fraction of queries whose match is among the first ``k`` results
``MRR``  mean of ``1 / rank``
``MR``   median rank

Piece identification (2018, Section 5): every query excerpt's nearest
candidates vote for the piece they come from; :func:`vote_ranks` gives the rank
of the right piece in the vote count, and ``Rk@k`` counts the queries whose
piece is among the first ``k``.

Ties are ranked at their average position, so a model whose embeddings are all
alike scores like chance, never like a perfect one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from msmd_builder.core.errors import ConfigError

__all__ = [
    "RECALL_AT",
    "similarity",
    "retrieval_ranks",
    "retrieval_metrics",
    "random_baseline",
    "nearest",
    "vote_ranks",
    "identification_metrics",
    "entropy",
]

#: The papers' recall cut-offs.
RECALL_AT = (1, 5, 25)


def similarity(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Cosine similarity of every query with every candidate, (n_queries, n_candidates)."""
    q = np.asarray(queries, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    return q @ c.T


def retrieval_ranks(
    queries: np.ndarray, candidates: np.ndarray, *, chunk: int = 2048
) -> np.ndarray:
    """Rank of the matching candidate for every query.

    Parameters
    ----------
    queries, candidates : np.ndarray [shape=(n, dim)]
        Row ``i`` of ``candidates`` is the match of query ``i``.
    chunk : int, optional
        Queries per block (bounds memory for 10,000 x 10,000).

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float64]
        1-based ranks; a tie with ``t`` other candidates adds ``t / 2``.
    """
    if queries.shape != candidates.shape:
        raise ConfigError(f"queries {queries.shape} and candidates {candidates.shape} must match")
    ranks = np.empty(len(queries), dtype=np.float64)
    for start in range(0, len(queries), chunk):
        sim = similarity(queries[start : start + chunk], candidates)
        rows = np.arange(sim.shape[0])
        true = sim[rows, start + rows][:, None]
        better = (sim > true).sum(axis=1)
        ties = (sim == true).sum(axis=1) - 1
        ranks[start : start + chunk] = 1 + better + ties / 2
    return ranks


def retrieval_metrics(ranks: np.ndarray, ks: Sequence[int] = RECALL_AT) -> dict[str, float]:
    """R@k for every ``k``, MRR and median rank (MR) of 1-based ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ConfigError("no ranks to summarise")
    out = {f"R@{k}": float(np.mean(ranks <= k)) for k in ks}
    out["MRR"] = float(np.mean(1.0 / ranks))
    out["MR"] = float(np.median(ranks))
    out["n"] = int(ranks.size)
    return out


def random_baseline(n_candidates: int, ks: Sequence[int] = RECALL_AT) -> dict[str, float]:
    """Return the expected metrics of a random ranking (the papers' rand-bl rows)."""
    n = int(n_candidates)
    out = {f"R@{k}": min(k, n) / n for k in ks}
    out["MRR"] = float(np.sum(1.0 / np.arange(1, n + 1)) / n)
    out["MR"] = (n + 1) / 2
    out["n"] = n
    return out


def nearest(
    queries: np.ndarray, candidates: np.ndarray, k: int, *, chunk: int = 1024
) -> np.ndarray:
    """Return the indices of the ``k`` most similar candidates of every query, best first."""
    k = min(k, len(candidates))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        sim = similarity(queries[start : start + chunk], candidates)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, top, axis=1), axis=1, kind="stable")
        out[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return out


def vote_ranks(votes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Rank of the true label by vote count, per query.

    Parameters
    ----------
    votes : np.ndarray [shape=(n_queries, n_labels)]
        Votes each label received for each query.
    truth : np.ndarray [shape=(n_queries,)]
        The right label of each query.

    Returns
    -------
    np.ndarray [shape=(n_queries,), dtype=float64]
        1-based ranks, ties at their average position.
    """
    votes = np.asarray(votes)
    mine = votes[np.arange(len(votes)), truth][:, None]
    better = (votes > mine).sum(axis=1)
    ties = (votes == mine).sum(axis=1) - 1
    return 1 + better + ties / 2


def identification_metrics(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Rk@k counts (and fractions, ``R@k``) and the count ranked below ``max(ks)``."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {"n": int(ranks.size)}
    for k in ks:
        out[f"Rk@{k}"] = int(np.sum(ranks <= k))
        out[f"R@{k}"] = float(np.mean(ranks <= k)) if ranks.size else 0.0
    out[f">Rk@{max(ks)}"] = int(np.sum(ranks > max(ks)))
    return out


def entropy(weights: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of a (n, frames) array of probability weights."""
    w = np.asarray(weights, dtype=np.float64)
    return -(w * np.log(np.clip(w, 1e-12, None))).sum(axis=1)
