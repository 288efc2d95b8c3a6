"""The papers' two-pathway embedding networks.

``2018``            Dorfer et al. (TISMIR 2018), Table 2: per view, four blocks of
                    2 x [3x3 conv, batch norm, ELU] and 2x2 max pooling with 24, 48,
                    96, 96 maps; a 1x1 conv to 32 maps with batch norm, linear;
                    global average pooling.
``2019``            Balke et al. (ISMIR 2019), Table 1, BL2: the same blocks, then
                    1x1 conv to 32 maps, linear, batch norm, and a dense layer of 32
                    linear units instead of the global pooling.
``2019-attention``  BL2 + AT: a separate CNN (the same four blocks, a 1x1 conv to
                    one map per input frame, global average pooling, softmax over
                    time) weights every spectrogram frame; the weighted frames,
                    times the number of frames (uniform weights leave the input
                    unchanged), go into the audio pathway.

Both views end in the canonically correlated embedding layer (:class:`CCALayer`)
and length normalisation to 32-d unit vectors; the sheet view takes the 80 x 100
snippet, the audio view the 92 x ``context_frames`` excerpt.  Convolutions have
no bias where batch norm follows; weights start He-uniform with gain 1 (Lasagne's
``HeUniform``), as in the original implementation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from msmd_builder.core.errors import ConfigError
from msmd_builder.dataset.pairs import CONTEXT_FRAMES, N_BINS, SNIPPET_SHAPE
from msmd_builder.train import MODEL_NAMES, PRECISIONS

__all__ = [
    "MODEL_NAMES",
    "ModelSettings",
    "CCALayer",
    "Pathway",
    "AttentionNet",
    "EmbeddingModel",
    "build_model",
    "PRECISIONS",
    "as_input",
    "model_device",
]


@dataclass(frozen=True)
class ModelSettings:
    """Architecture of an :class:`EmbeddingModel`.

    Attributes
    ----------
    name : {'2018', '2019', '2019-attention'}
        Which paper's model.
    context_frames : int
        Audio excerpt width (42, 84 or 168 in the papers).
    embedding_dim : int
        Size of the shared embedding space (32).
    maps : tuple of int
        Feature maps of the four conv blocks (24, 48, 96, 96).
    cca_layer : bool
        End in the CCA embedding layer (the papers); False leaves the pathway
        outputs as they are before normalisation.
    cca_alpha : float
        Weight of the current batch in the CCA layer's stored statistics
        (1.0: the last batch only, as in the original implementation).
    cca_ridge : float
        Ridge term added to the covariances' diagonals.
    """

    name: str = "2018"
    context_frames: int = 42
    embedding_dim: int = 32
    maps: tuple[int, ...] = (24, 48, 96, 96)
    cca_layer: bool = True
    cca_alpha: float = 1.0
    cca_ridge: float = 1e-3

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ConfigError(f"model must be one of {MODEL_NAMES}, got {self.name!r}")
        if self.context_frames < 16:
            raise ConfigError(
                f"context_frames must be >= 16 (the papers use {CONTEXT_FRAMES}), "
                f"got {self.context_frames}"
            )
        if not 0.0 < self.cca_alpha <= 1.0:
            raise ConfigError(f"cca_alpha must be in (0, 1], got {self.cca_alpha}")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-friendly dict."""
        out = asdict(self)
        out["maps"] = list(self.maps)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSettings:
        """Inverse of :meth:`to_dict`."""
        kwargs = dict(data)
        if "maps" in kwargs:
            kwargs["maps"] = tuple(int(m) for m in kwargs["maps"])
        return cls(**kwargs)


def _conv_bn_elu(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ELU(inplace=True),
    ]


def _blocks(maps: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 1
    for c_out in maps:
        layers += _conv_bn_elu(c_in, c_out) + _conv_bn_elu(c_out, c_out) + [nn.MaxPool2d(2)]
        c_in = c_out
    return nn.Sequential(*layers)


def _pooled_shape(shape: tuple[int, int], n_pools: int) -> tuple[int, int]:
    h, w = shape
    for _ in range(n_pools):
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        raise ConfigError(f"input {shape} is too small for {n_pools} pooling steps")
    return h, w


class Pathway(nn.Module):
    """One view's CNN: conv blocks, 1x1 conv, then global pooling or a dense layer.

    Parameters
    ----------
    input_shape : tuple of int
        (height, width) of the input image.
    settings : ModelSettings
        Architecture; ``name == '2018'`` pools globally, the 2019 models use a
        dense layer.
    """

    def __init__(self, input_shape: tuple[int, int], settings: ModelSettings) -> None:
        super().__init__()
        dim = settings.embedding_dim
        self.features = _blocks(settings.maps)
        self.project = nn.Sequential(
            nn.Conv2d(settings.maps[-1], dim, 1, bias=False), nn.BatchNorm2d(dim)
        )
        h, w = _pooled_shape(input_shape, len(settings.maps))
        self.dense: nn.Linear | None = None
        if settings.name != "2018":
            self.dense = nn.Linear(dim * h * w, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (n, 1, height, width) inputs to (n, embedding_dim) features."""
        z = self.project(self.features(x))
        if self.dense is None:
            return z.mean(dim=(2, 3))
        return self.dense(z.flatten(1))


class AttentionNet(nn.Module):
    """The 2019 paper's attention CNN: one softmax weight per spectrogram frame."""

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__()
        self.features = _blocks(settings.maps)
        self.frames = nn.Conv2d(settings.maps[-1], settings.context_frames, 1)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Map (n, 1, bins, frames) excerpts to (n, frames) weights that sum to one."""
        logits = self.frames(self.features(a)).mean(dim=(2, 3))
        return torch.softmax(logits, dim=1)


class CCALayer(nn.Module):
    """Canonically correlated embedding layer (Dorfer et al., IJMIR 2018).

    In training mode it centres both views with the batch means, computes the
    ridge-regularised covariances, whitens them (``S11^-1/2``, ``S22^-1/2``) and
    projects onto the singular vectors of ``S11^-1/2 S12 S22^-1/2`` -- all
    differentiable, in float64 -- and stores the means and projections
    (blended with weight ``alpha``) in buffers.  In eval mode each view is
    projected with the stored buffers, so the views can be embedded apart.
    :meth:`set_projection` replaces the buffers (CCA refinement).
    """

    def __init__(self, dim: int, *, alpha: float = 1.0, ridge: float = 1e-3) -> None:
        super().__init__()
        self.alpha = alpha
        self.ridge = ridge
        self.register_buffer("mean1", torch.zeros(dim))
        self.register_buffer("mean2", torch.zeros(dim))
        self.register_buffer("u", torch.eye(dim))
        self.register_buffer("v", torch.eye(dim))
        self.register_buffer("s11", torch.eye(dim, dtype=torch.float64))
        self.register_buffer("s22", torch.eye(dim, dtype=torch.float64))
        self.register_buffer("s12", torch.zeros(dim, dim, dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def _blend(self, stored: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        if self.alpha >= 1.0 or not bool(self.fitted):
            return batch
        return (1.0 - self.alpha) * stored.to(batch.dtype) + self.alpha * batch

    def forward(self, h1: torch.Tensor, h2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project a batch of paired features (training) or both views (eval)."""
        if not self.training:
            return self.project1(h1), self.project2(h2)
        x1, x2 = h1.double(), h2.double()
        n, dim = x1.shape
        eye = torch.eye(dim, dtype=x1.dtype, device=x1.device)
        m1 = self._blend(self.mean1, x1.mean(0))
        m2 = self._blend(self.mean2, x2.mean(0))
        c1, c2 = x1 - m1, x2 - m2
        s11 = self._blend(self.s11, c1.T @ c1 / (n - 1) + self.ridge * eye)
        s22 = self._blend(self.s22, c2.T @ c2 / (n - 1) + self.ridge * eye)
        s12 = self._blend(self.s12, c1.T @ c2 / (n - 1))
        s11si, s22si = _inverse_sqrt(s11), _inverse_sqrt(s22)
        u, _, vt = torch.linalg.svd(s11si @ s12 @ s22si)
        a, b = s11si @ u, s22si @ vt.T
        with torch.no_grad():
            self.mean1.copy_(m1)
            self.mean2.copy_(m2)
            self.u.copy_(a)
            self.v.copy_(b)
            self.s11.copy_(s11)
            self.s22.copy_(s22)
            self.s12.copy_(s12)
            self.fitted.fill_(True)
        return (c1 @ a).to(h1.dtype), (c2 @ b).to(h2.dtype)

    def project1(self, h1: torch.Tensor) -> torch.Tensor:
        """Project sheet features with the stored statistics."""
        return (h1 - self.mean1) @ self.u

    def project2(self, h2: torch.Tensor) -> torch.Tensor:
        """Project audio features with the stored statistics."""
        return (h2 - self.mean2) @ self.v

    def set_projection(self, mean1, mean2, u, v) -> None:  # noqa: ANN001 - arrays or tensors
        """Replace the stored means and projections (e.g. by a refined CCA fit)."""
        for name, value in (("mean1", mean1), ("mean2", mean2), ("u", u), ("v", v)):
            buf = getattr(self, name)
            buf.copy_(torch.as_tensor(value, dtype=buf.dtype))
        self.fitted.fill_(True)


def _inverse_sqrt(s: torch.Tensor) -> torch.Tensor:
    d, a = torch.linalg.eigh(s)
    return (a * d.rsqrt()) @ a.T


class EmbeddingModel(nn.Module):
    """Sheet pathway, audio pathway (with optional attention), CCA layer, unit length.

    Parameters
    ----------
    settings : ModelSettings
        Which model and input size.
    """

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__()
        self.settings = settings
        self.sheet = Pathway(SNIPPET_SHAPE, settings)
        self.audio = Pathway((N_BINS, settings.context_frames), settings)
        self.attention: AttentionNet | None = None
        if settings.name == "2019-attention":
            self.attention = AttentionNet(settings)
        self.cca: CCALayer | None = None
        if settings.cca_layer:
            self.cca = CCALayer(
                settings.embedding_dim, alpha=settings.cca_alpha, ridge=settings.cca_ridge
            )
        self.apply(_init_weights)
        self.to(memory_format=torch.channels_last)

    def attention_weights(self, audio: torch.Tensor) -> torch.Tensor | None:
        """Return the (n, frames) attention weights, or None for models without attention."""
        return None if self.attention is None else self.attention(audio)

    def audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio pathway output before the CCA layer (attention applied)."""
        if self.attention is not None:
            weights = self.attention(audio)
            audio = audio * weights[:, None, None, :] * audio.shape[-1]
        return self.audio(audio)

    def sheet_features(self, sheet: torch.Tensor) -> torch.Tensor:
        """Sheet pathway output before the CCA layer."""
        return self.sheet(sheet)

    def forward(
        self, sheet: torch.Tensor, audio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed paired batches: (n, 1, 80, 100) and (n, 1, 92, frames) -> two (n, 32)."""
        h1, h2 = self.sheet_features(sheet), self.audio_features(audio)
        if self.cca is not None:
            h1, h2 = self.cca(h1, h2)
        return F.normalize(h1, dim=1), F.normalize(h2, dim=1)

    def embed_sheet(self, sheet: torch.Tensor) -> torch.Tensor:
        """Embed sheet snippets alone (eval mode: the CCA layer's stored projection)."""
        h = self.sheet_features(sheet)
        if self.cca is not None:
            h = self.cca.project1(h)
        return F.normalize(h, dim=1)

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """Embed audio excerpts alone (eval mode: the CCA layer's stored projection)."""
        h = self.audio_features(audio)
        if self.cca is not None:
            h = self.cca.project2(h)
        return F.normalize(h, dim=1)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d | nn.Linear):
        nn.init.kaiming_uniform_(module.weight, nonlinearity="linear")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def as_input(batch: Any, device: torch.device | str | None = None) -> torch.Tensor:
    """Turn an (n, 1, height, width) float32 array or tensor into a channels-last tensor.

    oneDNN's convolutions run markedly faster on channels-last tensors on CPU.
    """
    tensor = torch.as_tensor(batch, device=device)
    return tensor.contiguous(memory_format=torch.channels_last)


def model_device(model: nn.Module) -> torch.device:
    """Return the device of a model's parameters."""
    return next(model.parameters()).device


def build_model(name: str = "2018", context_frames: int = 42, **options: Any) -> EmbeddingModel:
    """Build a model by paper name (see :data:`MODEL_NAMES`) and audio context."""
    return EmbeddingModel(ModelSettings(name=name, context_frames=context_frames, **options))
