"""The pairwise ranking (hinge) loss of the 2018 paper, Eq. 1.

``sum_x sum_k max(0, alpha - s(x, y) + s(x, y_k))``: every sheet embedding
``x`` against its own audio ``y`` and the other audio excerpts ``y_k`` of the
batch, with the cosine similarity ``s`` of unit vectors and margin ``alpha =
0.7``.  Like the original implementation, the sum is divided by its number of
terms, ``n (n - 1)``; Adam's steps do not depend on that constant.
"""

from __future__ import annotations

import torch

__all__ = ["MARGIN", "ranking_loss"]

#: The paper's margin.
MARGIN = 0.7


def ranking_loss(
    sheet: torch.Tensor, audio: torch.Tensor, *, margin: float = MARGIN, symmetric: bool = False
) -> torch.Tensor:
    """Mean hinge loss of matching against in-batch contrastive pairs.

    Parameters
    ----------
    sheet, audio : torch.Tensor [shape=(n, dim)]
        Unit-length embeddings; row ``i`` of both is a matching pair.
    margin : float, optional
        The margin ``alpha``.
    symmetric : bool, optional
        Also rank the sheet snippets for every audio excerpt (Kiros et al.'s
        two-sided form); the paper's Eq. 1 is one-sided.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    n = sheet.shape[0]
    scores = sheet @ audio.T  # scores[i, k] = s(x_i, y_k)
    positive = scores.diagonal()
    off = ~torch.eye(n, dtype=torch.bool, device=scores.device)
    loss = (margin - positive[:, None] + scores).clamp(min=0)[off].mean()
    if symmetric:
        loss = loss + (margin - positive[None, :] + scores).clamp(min=0)[off].mean()
    return loss
