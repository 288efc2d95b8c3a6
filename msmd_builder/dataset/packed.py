"""A pair pool flattened into a few arrays: what training cuts from, and what its cache stores.

:class:`~msmd_builder.dataset.pairs.PairPool` cuts one pair at a time from
per-piece objects, which is right for evaluation and inspection but leaves a
Python loop per pair in a training step, and needs the piece records (page
images and all) in memory.  :func:`pack_pool` copies what cutting needs into
flat arrays instead:

* every piece's unrolled strip (uint8, padding included) side by side in one
  array, stored column by column (one contiguous row of 200 pixels per strip
  column, which makes cutting a window two cheap lookups), with each piece's
  start and width;
* the spectrograms of the pool's performances one after the other in one
  array, frame by frame (one contiguous row of 92 bins per frame), rounded
  to float16 (relative error at most 2**-11; the trainer always cuts from
  these rounded values, so a run from a cache file equals a run from the
  dataset), with each segment's start and length;
* per pair: its piece, notehead x in the strip, audio segment and onset
  frame in it; with ``alternatives``, the onset of the same note in every
  other performance of its piece (for audio augmentation).

Cutting from these arrays is a few vectorized index computations per batch
(:mod:`msmd_builder.train.batches`), on a CPU or on an accelerator.
:meth:`PackedPairs.save` writes them to one compressed ``.npz``: the strips
are mostly blank paper and compress well, so a run's pair cache is a small
fraction of its dataset's shards and can travel with the run to another
machine.  :meth:`PackedPairs.subset` keeps only some pairs and, of the audio,
only the frames their excerpts read (the validation pairs of a run).

Nothing here imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from msmd_builder.core.cache import load_npz, save_npz
from msmd_builder.core.errors import ConfigError
from msmd_builder.dataset.pairs import N_BINS, STRIP_HEIGHT_PX, PairPool

__all__ = ["PACKED_FORMAT", "PACKED_VERSION", "PackedPairs", "pack_pool"]

PACKED_FORMAT = "msmd-builder/packed-pairs"
PACKED_VERSION = 1

# Arrays of a PackedPairs, in the order save() writes them.
_ARRAYS = (
    "strip",
    "strip_start",
    "strip_width",
    "spectrogram",
    "segment_start",
    "segment_frames",
    "piece",
    "x_px",
    "segment",
    "onset",
    "piece_segments",
    "alternatives",
)


@dataclass
class PackedPairs:
    """The pairs of a pool as flat arrays (see the module docstring).

    Attributes
    ----------
    piece_ids : list of str
        Pieces, in pool order (``piece`` indexes this).
    segment_ids : list of str
        Performance id of every audio segment (``segment`` indexes this).
    pad_px : int
        Blank strip columns before strip x = 0 of every piece.
    context_frames : int
        The excerpt width the pool was made for.
    strip : np.ndarray [shape=(total_width, STRIP_HEIGHT_PX), dtype=uint8]
        All pieces' strips side by side, transposed: ``strip[x, y]`` (ink = 255).
    strip_start, strip_width : np.ndarray [shape=(n_pieces,), dtype=int64]
        Where each piece's strip (with its padding) starts, and its width.
    spectrogram : np.ndarray [shape=(total_frames, N_BINS), dtype=float16]
        All audio segments one after the other, transposed: ``spectrogram[frame, bin]``.
    segment_start, segment_frames : np.ndarray [shape=(n_segments,), dtype=int64]
        Where each segment starts and how many frames it has; an excerpt
        reads zeros beyond them (as :func:`~msmd_builder.dataset.pairs.cut_excerpt`).
    piece, segment : np.ndarray [shape=(n_pairs,), dtype=int32]
        Each pair's piece and audio segment.
    x_px : np.ndarray [shape=(n_pairs,), dtype=float32]
        Notehead centre in the piece's strip (without the padding).
    onset : np.ndarray [shape=(n_pairs,), dtype=int64]
        Onset frame within the pair's segment.
    piece_segments : np.ndarray [shape=(n_pieces, k), dtype=int32]
        The segments (performances) of every piece, -1 beyond its count;
        ``k`` is 0 without alternatives.
    alternatives : np.ndarray [shape=(n_pairs, k), dtype=int64]
        Onset of the pair's note in each of its piece's segments, -1 where
        that performance lacks the note (audio augmentation then keeps the
        pair's own audio, as :meth:`PairPool.get` does).
    """

    piece_ids: list[str]
    segment_ids: list[str]
    pad_px: int
    context_frames: int
    strip: np.ndarray
    strip_start: np.ndarray
    strip_width: np.ndarray
    spectrogram: np.ndarray
    segment_start: np.ndarray
    segment_frames: np.ndarray
    piece: np.ndarray
    x_px: np.ndarray
    segment: np.ndarray
    onset: np.ndarray
    piece_segments: np.ndarray
    alternatives: np.ndarray

    def __len__(self) -> int:
        return len(self.piece)

    @property
    def n_segments_of_piece(self) -> np.ndarray:
        """Number of segments (performances) of every piece, for audio augmentation."""
        return (self.piece_segments >= 0).sum(axis=1).astype(np.int64)

    @property
    def nbytes(self) -> int:
        """Memory the arrays take."""
        return int(sum(getattr(self, name).nbytes for name in _ARRAYS))

    def subset(self, indices: np.ndarray) -> PackedPairs:
        """Keep only the pairs ``indices`` (in that order) and the audio their excerpts read.

        Each kept pair gets an audio segment of its own: the ``context_frames``
        window around its onset, cropped to its performance (so frames beyond
        the performance still read as zeros).  Strips are kept whole for the
        pieces in use.  Alternatives are dropped (a subset is for unaugmented
        use: validation).
        """
        idx = np.asarray(indices, dtype=np.int64)
        pieces, piece_of = np.unique(self.piece[idx], return_inverse=True)
        widths = self.strip_width[pieces]
        starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
        bands = zip(self.strip_start[pieces], widths, strict=True)
        strip = np.concatenate(
            [self.strip[s : s + w] for s, w in bands] or [np.zeros((0, STRIP_HEIGHT_PX), np.uint8)]
        )
        half = self.context_frames // 2
        seg = self.segment[idx]
        first = np.clip(self.onset[idx] - half, 0, self.segment_frames[seg])
        last = np.clip(self.onset[idx] - half + self.context_frames, 0, self.segment_frames[seg])
        lengths = (last - first).astype(np.int64)
        seg_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        windows = zip(first, last, self.segment_start[seg], strict=True)
        columns = np.concatenate(
            [np.arange(a, b) + start for a, b, start in windows] or [np.zeros(0, np.int64)]
        )
        return PackedPairs(
            piece_ids=[self.piece_ids[p] for p in pieces],
            segment_ids=[self.segment_ids[s] for s in seg],
            pad_px=self.pad_px,
            context_frames=self.context_frames,
            strip=np.ascontiguousarray(strip),
            strip_start=starts,
            strip_width=widths.astype(np.int64),
            spectrogram=np.ascontiguousarray(self.spectrogram[columns]),
            segment_start=seg_starts,
            segment_frames=lengths,
            piece=piece_of.astype(np.int32),
            x_px=self.x_px[idx].copy(),
            segment=np.arange(len(idx), dtype=np.int32),
            onset=(self.onset[idx] - first).astype(np.int64),
            piece_segments=np.zeros((len(pieces), 0), np.int32),
            alternatives=np.zeros((len(idx), 0), np.int64),
        )

    # --- files ------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the arrays to a compressed ``.npz`` (atomically)."""
        save_npz(
            path,
            format_name=PACKED_FORMAT,
            format_version=PACKED_VERSION,
            piece_ids=np.array(self.piece_ids, dtype=str),
            segment_ids=np.array(self.segment_ids, dtype=str),
            pad_px=np.int64(self.pad_px),
            context_frames=np.int64(self.context_frames),
            **{name: getattr(self, name) for name in _ARRAYS},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PackedPairs:
        """Read a file written by :meth:`save`."""
        data = load_npz(path, format_name=PACKED_FORMAT, format_version=PACKED_VERSION)
        return cls(
            piece_ids=[str(p) for p in data["piece_ids"]],
            segment_ids=[str(s) for s in data["segment_ids"]],
            pad_px=int(data["pad_px"]),
            context_frames=int(data["context_frames"]),
            **{name: data[name] for name in _ARRAYS},
        )


def _note_keys(events: np.ndarray) -> np.ndarray:
    return events["event_id"].astype(np.int64) * 65536 + events["occurrence"].astype(np.int64)


def pack_pool(pool: PairPool, *, alternatives: bool = False) -> PackedPairs:
    """Flatten a :class:`PairPool` (see the module docstring).

    Parameters
    ----------
    pool : PairPool
        The pool; pair ``i`` of the result is pair ``i`` of the pool.
    alternatives : bool, optional
        Record the onset of every pair's note in each performance of its
        piece, for audio augmentation (:meth:`PairPool.get` with ``augment``).

    Returns
    -------
    PackedPairs
    """
    n_pieces = len(pool.piece_ids)
    scores = [pool.score(p) for p in range(n_pieces)]
    pads = {s.pad_px for s in scores}
    if len(pads) > 1:
        raise ConfigError(f"strips with different paddings: {sorted(pads)}")
    widths = np.array([s.strip.shape[1] for s in scores], dtype=np.int64)
    strip_start = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    strip = np.concatenate(
        [s.strip.T for s in scores] or [np.zeros((0, STRIP_HEIGHT_PX), np.uint8)]
    )

    performances = [pool.performances(p) for p in range(n_pieces)]
    first_segment = np.concatenate([[0], np.cumsum([len(p) for p in performances])]).astype(int)
    segments = [perf for perfs in performances for perf in perfs]
    frames = np.array([perf.spectrogram.shape[1] for perf in segments], dtype=np.int64)
    segment_start = np.concatenate([[0], np.cumsum(frames)[:-1]]).astype(np.int64)
    spectrogram = np.concatenate(
        [perf.spectrogram.T.astype(np.float16) for perf in segments]
        or [np.zeros((0, N_BINS), np.float16)]
    )

    entries = pool.entries
    piece = entries["piece"].astype(np.int32)
    segment = (first_segment[piece] + entries["performance"]).astype(np.int32)
    k = max((len(p) for p in performances), default=0) if alternatives else 0
    piece_segments = np.full((n_pieces, k), -1, dtype=np.int32)
    alt = np.full((len(entries), k), -1, dtype=np.int64)
    if k:
        for p, perfs in enumerate(performances):
            piece_segments[p, : len(perfs)] = first_segment[p] + np.arange(len(perfs))
            rows_of = np.flatnonzero(piece == p)
            keys = [_note_keys(perf.events) for perf in perfs]
            aligned = all(np.array_equal(keys[0], other) for other in keys[1:])
            for j, perf in enumerate(perfs):
                own = entries["performance"][rows_of]
                events = entries["event"][rows_of]
                if aligned:
                    alt[rows_of, j] = np.asarray(perf.onset_frame, dtype=np.int64)[events]
                    continue
                for r, own_perf, event in zip(rows_of, own, events, strict=True):
                    key = keys[int(own_perf)][int(event)]
                    hits = np.flatnonzero(keys[j] == key)
                    if int(own_perf) == j:
                        alt[r, j] = int(perf.onset_frame[int(event)])
                    elif hits.size:
                        alt[r, j] = int(perf.onset_frame[int(hits[0])])
    return PackedPairs(
        piece_ids=list(pool.piece_ids),
        segment_ids=[perf.performance_id for perf in segments],
        pad_px=int(pads.pop()) if pads else 0,
        context_frames=int(pool.settings.context_frames),
        strip=np.ascontiguousarray(strip),
        strip_start=strip_start,
        strip_width=widths,
        spectrogram=np.ascontiguousarray(spectrogram),
        segment_start=segment_start,
        segment_frames=frames,
        piece=piece,
        x_px=entries["x_px"].astype(np.float32),
        segment=segment,
        onset=entries["onset_frame"].astype(np.int64),
        piece_segments=piece_segments,
        alternatives=alt,
    )
