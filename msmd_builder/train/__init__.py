"""A small PyTorch trainer for the papers' audio--sheet-music embedding models.

Reproduces the experiments of Dorfer et al. (TISMIR 2018) and Balke et al.
(ISMIR 2019) on the pieces a dataset build produces, so that every build can be
checked by learning from it.  Modules:

``data``      pieces from dataset shards or a work directory (no torch)
``metrics``   retrieval and identification measures (no torch)
``cca``       CCA fitted on embeddings, for refinement (no torch)
``models``    the 2018 model, the 2019 baseline and the 2019 attention model
``loss``      the pairwise ranking (hinge) loss
``settings``  what defines a run (``TrainSettings``) and what it produced
``runtime``   device, precision, CPU memory reuse
``batches``   whole batches cut from packed pairs on the training device
``loop``      training: steps, validation, learning-rate schedule, logs
``state``     the run state that ``--resume`` continues from
``checkpoint``  model files; ``embedding``  embedding pairs, BN recalibration, CCA refit
``evaluate``  retrieval, piece identification, tempo robustness, attention plots
``identify``  which built piece a recording plays (``msmd-build identify``)
``pretrained``  the model shipped with the package, and how to install one
``commands``  the functions behind ``msmd-build train``, ``evaluate`` and ``identify``

torch is an optional dependency (``pip install 'msmd-builder[train]'``); only
this package imports it, and only in the modules that need it.
"""

from __future__ import annotations

from importlib.util import find_spec

from msmd_builder.core.errors import ToolNotFoundError

__all__ = ["MODEL_NAMES", "CONTEXTS", "PRECISIONS", "DEVICES", "require_torch"]

#: Architectures (see :mod:`msmd_builder.train.models`) and the papers' audio contexts.
MODEL_NAMES = ("2018", "2019", "2019-attention")
CONTEXTS = (42, 84, 168)

#: Autocast choices of training and evaluation: ``auto`` runs the networks under
#: bfloat16 where the CPU has native bfloat16 (AVX512-BF16 or AMX, about 3x faster
#: there) and float32 elsewhere.
PRECISIONS = ("auto", "float32", "bfloat16")

#: Where training, evaluation and identification run.
DEVICES = ("cpu", "cuda")


def require_torch() -> None:
    """Raise a :class:`ToolNotFoundError` with the install hint if torch is missing."""
    if find_spec("torch") is None:
        raise ToolNotFoundError(
            "PyTorch is not installed; the trainer needs it: pip install 'msmd-builder[train]'"
        )
