"""Batches cut from packed pairs with a few tensor operations, on the training device.

:class:`PairBatcher` holds a :class:`~msmd_builder.dataset.packed.PackedPairs`
as tensors on the run's device and cuts a whole batch at once: the snippet
windows as two index grids into the side-by-side strips (the same
nearest-neighbour lookup, clipping and 2 x 2 averaging as
:func:`~msmd_builder.dataset.pairs.cut_snippet`, computed in float64 so the
indices are the same to the pixel), the excerpts as one index grid into the
side-by-side spectrograms, zero beyond each performance.  No Python runs per
pair, and on an accelerator the batch never leaves it.

Augmentation is drawn per batch from a numpy generator (:meth:`PairBatcher.draw`):
scale, x and y shift of the 2018 paper's sheet augmentation, and for audio
augmentation a random performance of each pair's piece.  The generator's
state is all a resumed run needs to draw the same batches again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from msmd_builder.core.errors import ConfigError
from msmd_builder.dataset.packed import PackedPairs
from msmd_builder.dataset.pairs import (
    NO_SHEET_AUGMENTATION,
    SNIPPET_HEIGHT_PX,
    SNIPPET_WIDTH_PX,
    SheetAugmentation,
)

__all__ = ["Augmentation", "PairBatcher"]


@dataclass(frozen=True)
class Augmentation:
    """The random choices of one batch (numpy arrays of the batch's length).

    Attributes
    ----------
    scale : np.ndarray of float64
        Sheet scale factor per pair.
    dx, dy : np.ndarray of int64
        Snippet window shift per pair, strip pixels.
    performance : np.ndarray of int64 or None
        Index, among its piece's performances, of the performance each pair's
        audio comes from; None keeps every pair's own audio.
    """

    scale: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    performance: np.ndarray | None = None


class PairBatcher:
    """Cut batches of pairs from packed arrays on one device.

    Parameters
    ----------
    packed : PackedPairs
        The pairs.
    device : torch.device or str, optional
        Where the arrays live and the batches are cut.
    sheet_augmentation : SheetAugmentation, optional
        Ranges :meth:`draw` draws from (default: none).
    audio_augmentation : bool, optional
        Whether :meth:`draw` picks a random performance of each pair's piece
        (needs ``packed`` made with ``alternatives``).
    """

    def __init__(
        self,
        packed: PackedPairs,
        device: torch.device | str = "cpu",
        *,
        sheet_augmentation: SheetAugmentation = NO_SHEET_AUGMENTATION,
        audio_augmentation: bool = False,
    ) -> None:
        if audio_augmentation and packed.alternatives.shape[1] == 0:
            raise ConfigError("audio augmentation needs pairs packed with alternatives")
        self.packed = packed
        self.device = torch.device(device)
        self.sheet_augmentation = sheet_augmentation
        self.audio_augmentation = audio_augmentation
        self.context_frames = packed.context_frames
        self._n_segments_of_piece = packed.n_segments_of_piece

        def put(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

        self.strip = put(packed.strip)
        self.strip_start = put(packed.strip_start)
        self.strip_last = put(packed.strip_width - 1)
        spectrogram = packed.spectrogram
        if spectrogram.shape[0] == 0:  # every excerpt reads zeros; keep one frame to index
            spectrogram = np.zeros((1, spectrogram.shape[1]), np.float16)
        self.spectrogram = put(spectrogram)
        self.segment_start = put(packed.segment_start)
        self.segment_frames = put(packed.segment_frames)
        self.piece = put(packed.piece.astype(np.int64))
        self.x_px = put(packed.x_px.astype(np.float64))
        self.segment = put(packed.segment.astype(np.int64))
        self.onset = put(packed.onset)
        self.piece_segments = put(packed.piece_segments.astype(np.int64))
        self.alternatives = put(packed.alternatives)
        f64 = torch.float64
        self._rows = torch.arange(SNIPPET_HEIGHT_PX, dtype=f64, device=self.device)
        self._rows = self._rows + 0.5 - SNIPPET_HEIGHT_PX / 2
        self._cols = torch.arange(SNIPPET_WIDTH_PX, dtype=f64, device=self.device)
        self._cols = self._cols + 0.5 - SNIPPET_WIDTH_PX / 2
        self._frames = torch.arange(self.context_frames, device=self.device)
        self._ink = torch.tensor(1.0 / (4 * 255), dtype=torch.float32, device=self.device)

    def __len__(self) -> int:
        return len(self.packed)

    def draw(
        self,
        indices: np.ndarray,
        rng: np.random.Generator,
        *,
        audio_indices: np.ndarray | None = None,
    ) -> Augmentation:
        """Draw the augmentation of the pairs ``indices`` (sheet first, then audio).

        ``audio_indices`` (the shuffled-pairs control) names the pairs the
        excerpts come from, whose pieces the performances are drawn among.
        """
        n = len(indices)
        aug = self.sheet_augmentation
        if aug == NO_SHEET_AUGMENTATION:
            scale, dx, dy = np.ones(n), np.zeros(n, np.int64), np.zeros(n, np.int64)
        else:
            scale = rng.uniform(aug.scale[0], aug.scale[1], size=n)
            dx = rng.integers(-aug.shift_x_px, aug.shift_x_px + 1, size=n)
            dy = rng.integers(-aug.shift_y_px, aug.shift_y_px + 1, size=n)
        performance = None
        if self.audio_augmentation:
            audio_from = indices if audio_indices is None else audio_indices
            counts = self._n_segments_of_piece[self.packed.piece[np.asarray(audio_from)]]
            performance = rng.integers(0, counts)
        return Augmentation(scale, dx, dy, performance)

    def batch(
        self,
        indices: np.ndarray,
        augmentation: Augmentation | None = None,
        *,
        audio_indices: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut the pairs ``indices`` as network input.

        Parameters
        ----------
        indices : np.ndarray
            Pair indices.
        augmentation : Augmentation, optional
            From :meth:`draw`; None cuts the pairs as they are.
        audio_indices : np.ndarray, optional
            Take each excerpt from these pairs instead (the shuffled-pairs control).

        Returns
        -------
        sheets : torch.Tensor [shape=(n, 1, 80, 100), dtype=float32]
        audio : torch.Tensor [shape=(n, 1, 92, context_frames), dtype=float32]
            Both channels-last, on the batcher's device.
        """
        idx = torch.as_tensor(np.ascontiguousarray(indices, dtype=np.int64), device=self.device)
        audio_from = idx
        if audio_indices is not None:
            audio_from = torch.as_tensor(
                np.ascontiguousarray(audio_indices, dtype=np.int64), device=self.device
            )
            if len(audio_from) != len(idx):
                raise ConfigError("audio_indices must have the length of indices")
        if augmentation is None:
            sheets = self._snippets(idx, None, None, None)
            audio = self._excerpts(audio_from, None)
        else:
            sheets = self._snippets(idx, augmentation.scale, augmentation.dx, augmentation.dy)
            audio = self._excerpts(audio_from, augmentation.performance)
        memory = torch.channels_last
        return sheets.contiguous(memory_format=memory), audio.contiguous(memory_format=memory)

    def sheets(self, indices: np.ndarray) -> torch.Tensor:
        """Cut only the snippets of the pairs ``indices``, unaugmented (channels-last)."""
        idx = torch.as_tensor(np.ascontiguousarray(indices, dtype=np.int64), device=self.device)
        return self._snippets(idx, None, None, None).contiguous(memory_format=torch.channels_last)

    def _snippets(
        self,
        idx: torch.Tensor,
        scale: np.ndarray | None,
        dx: np.ndarray | None,
        dy: np.ndarray | None,
    ) -> torch.Tensor:
        dev = self.device
        piece = self.piece[idx]
        centre = self.strip.shape[1] / 2
        left = self.packed.pad_px + self.x_px[idx]
        if scale is None:
            rows = torch.floor(centre + self._rows).long().expand(len(idx), -1)
            cols = torch.floor(left[:, None] + self._cols).long()
        else:
            s = torch.as_tensor(scale, dtype=torch.float64, device=dev)[:, None]
            rows = torch.floor(centre + self._rows / s).long()
            rows = rows + torch.as_tensor(dy, device=dev)[:, None]
            cols = torch.floor(left[:, None] + self._cols / s).long()
            cols = cols + torch.as_tensor(dx, device=dev)[:, None]
        rows = rows.clamp(0, self.strip.shape[1] - 1)
        cols = torch.minimum(cols.clamp(min=0), self.strip_last[piece][:, None])
        cols = cols + self.strip_start[piece][:, None]
        n = len(idx)
        # strip[x] is one contiguous strip column: take the window's columns, then its rows.
        columns = torch.index_select(self.strip, 0, cols.reshape(-1)).view(n, SNIPPET_WIDTH_PX, -1)
        window = columns.gather(2, rows[:, None, :].expand(-1, SNIPPET_WIDTH_PX, -1))
        w = window.to(torch.int16)  # (n, columns, rows); sums of four pixels fit in int16
        blocks = (w[:, 0::2, 0::2] + w[:, 1::2, 0::2] + w[:, 0::2, 1::2] + w[:, 1::2, 1::2]).mT
        blocks = blocks.to(torch.float32)
        return (blocks * self._ink)[:, None]

    def _excerpts(self, idx: torch.Tensor, performance: np.ndarray | None) -> torch.Tensor:
        segment, onset = self.segment[idx], self.onset[idx]
        if performance is not None:
            choice = torch.as_tensor(performance, dtype=torch.int64, device=self.device)
            other_onset = self.alternatives[idx, choice]
            found = other_onset >= 0
            segment = torch.where(found, self.piece_segments[self.piece[idx], choice], segment)
            onset = torch.where(found, other_onset, onset)
        frames = onset[:, None] - self.context_frames // 2 + self._frames
        length = self.segment_frames[segment][:, None]
        inside = (frames >= 0) & (frames < length)
        columns = self.segment_start[segment][:, None] + torch.minimum(
            frames.clamp(min=0), (length - 1).clamp(min=0)
        )
        columns = columns.clamp(max=self.spectrogram.shape[0] - 1)  # empty segments at the end
        n = len(idx)
        excerpts = torch.index_select(self.spectrogram, 0, columns.reshape(-1)).view(
            n, self.context_frames, -1
        )  # (n, frames, bins): one contiguous row of bins per frame
        excerpts = torch.where(inside[:, :, None], excerpts.to(torch.float32), 0.0)
        return excerpts.mT[:, None]
