"""Training pairs: sheet snippets and spectrogram excerpts around aligned notes.

Reads :class:`~msmd_builder.core.records.PieceRecord` objects and cuts the pairs of
Dorfer et al. (TISMIR 2018, Section 3.1), as MSMD's own data pool did:

1. :func:`unroll_systems` cuts a band :data:`STRIP_HEIGHT_PX` = 200 px high,
   centred on each staff system's vertical centre and as wide as the system,
   from the page images and concatenates the systems of all pages left to
   right into one strip (ink = 255, paper = 0).  Every notehead gets an x
   position in that strip.
2. A sheet snippet is the :data:`SNIPPET_HEIGHT_PX` x :data:`SNIPPET_WIDTH_PX`
   = 160 x 200 px (height x width) window of the strip centred on a notehead's
   x and on the strip's centre row, downsized by two to 80 x 100 px
   (:func:`cut_snippet`).  Sheet augmentation scales the strip by 0.95--1.05
   and shifts the window by up to 5 px in x and y.
3. An audio excerpt is the 92 x ``context_frames`` window of a performance's
   spectrogram whose frame ``context_frames // 2`` is the note's onset frame
   (:func:`cut_excerpt`), zero-padded beyond the spectrogram's ends; 42 frames
   (2.1 s) in 2018, 84 and 168 frames as well in Balke et al. (ISMIR 2019).
4. :class:`PairPool` indexes the (piece, performance, event) triples of many
   pieces in a fixed order and cuts a pair only when asked.

Like MSMD, a pool keeps by default one pair per distinct onset frame of a
performance (the first aligned note of a chord, in playing order):
the notes of a chord share their audio excerpt and nearly share their
snippet, so keeping them all would add near-duplicate retrieval candidates.

Nothing here imports torch; the trainer (:mod:`msmd_builder.train`) builds on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PerformanceRecord, PieceRecord

__all__ = [
    "STRIP_HEIGHT_PX",
    "SNIPPET_HEIGHT_PX",
    "SNIPPET_WIDTH_PX",
    "SNIPPET_SHAPE",
    "N_BINS",
    "CONTEXT_FRAMES",
    "ENTRY_DTYPE",
    "UnrolledScore",
    "SheetAugmentation",
    "NO_SHEET_AUGMENTATION",
    "PairSettings",
    "PairPool",
    "unroll_systems",
    "cut_snippet",
    "cut_excerpt",
    "evenly_spaced",
    "evenly_spaced_excerpts",
    "evenly_spaced_snippets",
]

#: Height of the unrolled system strip (MSMD: 100 px above and below the centre).
STRIP_HEIGHT_PX = 200
#: Sheet snippet cut from the strip, before downsizing: height x width.
SNIPPET_HEIGHT_PX = 160
SNIPPET_WIDTH_PX = 200
#: What the network sees: the snippet downsized by two (height, width).
SNIPPET_SHAPE = (SNIPPET_HEIGHT_PX // 2, SNIPPET_WIDTH_PX // 2)
#: Frequency bins of MSMD's spectrogram.
N_BINS = 92
#: The papers' audio contexts in frames: short (2018), medium and long (2019).
CONTEXT_FRAMES = (42, 84, 168)

# Blank paper kept beyond both ends of the strip so that shifted and scaled
# windows never index outside it.
_PAD_PX = 160

#: One row per pair of a :class:`PairPool`, in the pool's order.
#:
#: ``piece``        index into :attr:`PairPool.piece_ids`
#: ``performance``  index into that piece's performances
#: ``event``        row of the performance's ``events``
#: ``notehead_id``  the aligned notehead
#: ``onset_frame``  spectrogram frame of the onset
#: ``x_px``         notehead centre in the unrolled strip, pixels
ENTRY_DTYPE = np.dtype(
    [
        ("piece", np.int32),
        ("performance", np.int32),
        ("event", np.int32),
        ("notehead_id", np.int32),
        ("onset_frame", np.int64),
        ("x_px", np.float32),
    ]
)


@dataclass(frozen=True)
class UnrolledScore:
    """The systems of a piece side by side in one strip.

    Attributes
    ----------
    strip : np.ndarray [shape=(STRIP_HEIGHT_PX, width_px + 2 * pad_px), dtype=uint8]
        Ink (255 = black, 0 = paper), with ``pad_px`` blank columns on both sides.
    pad_px : int
        Blank columns before strip x = 0 (and after its end).
    width_px : int
        Width of the systems themselves.
    notehead_x_px : np.ndarray [shape=(n_noteheads,), dtype=float32]
        Centre of every notehead in strip x (without the padding); NaN if the
        notehead has no page position or no system.
    system_x0_px : np.ndarray [shape=(n_systems,), dtype=int64]
        Where each system starts in strip x, in strip order.
    """

    strip: np.ndarray
    pad_px: int
    width_px: int
    notehead_x_px: np.ndarray
    system_x0_px: np.ndarray


def unroll_systems(piece: PieceRecord, *, height_px: int = STRIP_HEIGHT_PX) -> UnrolledScore:
    """Concatenate all systems of a piece into one strip, in reading order.

    Each system contributes the page columns of its box and ``height_px`` rows
    centred on its vertical centre (rows beyond the page are blank); systems
    follow each other in (book, system) order.

    Parameters
    ----------
    piece : PieceRecord
        Pages, systems and noteheads of the piece.
    height_px : int, optional
        Height of the strip.

    Returns
    -------
    UnrolledScore

    Raises
    ------
    ConfigError
        If a system's page is missing from ``piece.pages``.
    """
    systems = np.sort(piece.systems, order=["book", "system"])
    bands: list[np.ndarray] = []
    starts = np.zeros(len(systems), dtype=np.int64)
    crop_x0 = np.zeros(len(systems), dtype=np.int64)
    offset = 0
    for i, box in enumerate(systems):
        try:
            page = piece.pages[piece.page_index(int(box["book"]), int(box["page"]))]
        except KeyError as exc:
            raise ConfigError(f"{piece.piece_id}: system {int(box['system'])}: {exc}") from exc
        if not np.all(np.isfinite([box["x0_px"], box["x1_px"], box["y0_px"], box["y1_px"]])):
            band = np.zeros((height_px, 0), dtype=np.uint8)
        else:
            x0 = max(int(np.floor(box["x0_px"])), 0)
            x1 = min(int(np.ceil(box["x1_px"])), page.shape[1])
            top = int(round((float(box["y0_px"]) + float(box["y1_px"])) / 2)) - height_px // 2
            band = np.zeros((height_px, max(x1 - x0, 0)), dtype=np.uint8)
            r0, r1 = max(top, 0), min(top + height_px, page.shape[0])
            if r1 > r0 and x1 > x0:
                band[r0 - top : r1 - top] = 255 - page[r0:r1, x0:x1]
            crop_x0[i] = x0
        starts[i] = offset
        offset += band.shape[1]
        bands.append(band)
    width = offset
    strip = np.zeros((height_px, width + 2 * _PAD_PX), dtype=np.uint8)
    for start, band in zip(starts, bands, strict=True):
        strip[:, _PAD_PX + start : _PAD_PX + start + band.shape[1]] = band

    keys = zip(systems["book"].tolist(), systems["system"].tolist(), strict=True)
    index = {key: i for i, key in enumerate(keys)}
    heads = piece.noteheads
    x_px = np.full(len(heads), np.nan, dtype=np.float32)
    centre = (heads["x0_px"].astype(np.float64) + heads["x1_px"]) / 2
    for i, (book, system) in enumerate(
        zip(heads["book"].tolist(), heads["system"].tolist(), strict=True)
    ):
        j = index.get((book, system))
        if j is not None and np.isfinite(centre[i]):
            x_px[i] = starts[j] + centre[i] - crop_x0[j]
    return UnrolledScore(strip, _PAD_PX, int(width), x_px, starts)


@dataclass(frozen=True)
class SheetAugmentation:
    """Random sheet changes of the 2018 paper (Section 3.2), all applied at once.

    Attributes
    ----------
    scale : tuple of float
        Range of the image scale factor (0.95 to 1.05 = 95 to 105 %).
    shift_x_px, shift_y_px : int
        The window moves by a whole number of pixels in ``[-shift, shift]``.
    """

    scale: tuple[float, float] = (0.95, 1.05)
    shift_x_px: int = 5
    shift_y_px: int = 5

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0.5 <= lo <= hi <= 2.0:
            raise ConfigError(f"sheet scale range must lie in [0.5, 2], got {(lo, hi)}")
        if not 0 <= self.shift_x_px <= 40 or not 0 <= self.shift_y_px <= 20:
            raise ConfigError(
                f"sheet shifts must be in 0..40 (x) and 0..20 (y) px, "
                f"got {self.shift_x_px}, {self.shift_y_px}"
            )


#: Sheet augmentation that changes nothing (for audio-only augmentation).
NO_SHEET_AUGMENTATION = SheetAugmentation(scale=(1.0, 1.0), shift_x_px=0, shift_y_px=0)


def cut_snippet(
    score: UnrolledScore,
    x_px: float,
    *,
    scale: float = 1.0,
    dx_px: int = 0,
    dy_px: int = 0,
) -> np.ndarray:
    """Cut the downsized sheet snippet centred on strip position ``x_px``.

    The 160 x 200 px window is sampled from the strip scaled by ``scale``
    about (``x_px``, strip centre) with nearest-neighbour lookup, moved by
    (``dx_px``, ``dy_px``) and averaged over 2 x 2 blocks.

    Parameters
    ----------
    score : UnrolledScore
        The strip.
    x_px : float
        Centre of the window in strip x (the notehead centre).
    scale : float, optional
        Image scale factor (1.0 = as rendered).
    dx_px, dy_px : int, optional
        Window shift in strip pixels.

    Returns
    -------
    np.ndarray [shape=SNIPPET_SHAPE, dtype=float32]
        Ink in [0, 1].
    """
    strip = score.strip
    rows = np.floor(
        strip.shape[0] / 2 + (np.arange(SNIPPET_HEIGHT_PX) + 0.5 - SNIPPET_HEIGHT_PX / 2) / scale
    ).astype(np.int64) + int(dy_px)
    cols = np.floor(
        score.pad_px
        + float(x_px)
        + (np.arange(SNIPPET_WIDTH_PX) + 0.5 - SNIPPET_WIDTH_PX / 2) / scale
    ).astype(np.int64) + int(dx_px)
    np.clip(rows, 0, strip.shape[0] - 1, out=rows)
    np.clip(cols, 0, strip.shape[1] - 1, out=cols)
    # Two one-axis lookups on the columns in reach: far cheaper than one 2-D fancy index.
    c0 = int(cols[0])
    window = np.take(np.take(strip[:, c0 : int(cols[-1]) + 1], rows, axis=0), cols - c0, axis=1)
    w = window.astype(np.uint16)
    w = w[0::2, 0::2] + w[1::2, 0::2] + w[0::2, 1::2] + w[1::2, 1::2]
    return w.astype(np.float32) * np.float32(1.0 / (4 * 255))


def cut_excerpt(spectrogram: np.ndarray, onset_frame: int, context_frames: int) -> np.ndarray:
    """Cut ``context_frames`` frames with the onset at index ``context_frames // 2``.

    Parameters
    ----------
    spectrogram : np.ndarray [shape=(n_bins, n_frames)]
        A performance's spectrogram.
    onset_frame : int
        Frame of the note onset.
    context_frames : int
        Width of the excerpt.

    Returns
    -------
    np.ndarray [shape=(n_bins, context_frames), dtype=float32]
        Zero (silence) where the window reaches beyond the spectrogram.
    """
    start = int(onset_frame) - context_frames // 2
    return _window(spectrogram, start, context_frames)


def _window(spectrogram: np.ndarray, start: int, width: int) -> np.ndarray:
    out = np.zeros((spectrogram.shape[0], width), dtype=np.float32)
    a, b = max(start, 0), min(start + width, spectrogram.shape[1])
    if b > a:
        out[:, a - start : b - start] = spectrogram[:, a:b]
    return out


def evenly_spaced(n_total: int, n: int) -> np.ndarray:
    """Return ``min(n, n_total)`` distinct indices evenly spaced over ``range(n_total)``.

    ``floor(k * n_total / n)`` for ``k < n``: the papers' test-pair selection
    ("evenly spaced indices of the ordered test pool"), reproducible without a seed.
    """
    if n_total <= 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n >= n_total:
        return np.arange(n_total, dtype=np.int64)
    return (np.arange(n, dtype=np.int64) * n_total) // n


def evenly_spaced_excerpts(spectrogram: np.ndarray, n: int, context_frames: int) -> np.ndarray:
    """Cut ``n`` excerpts whose starts are evenly spaced over a whole performance.

    The query set of piece identification (2018, Section 5): starts at
    ``linspace(0, n_frames - context_frames, n)``, rounded down.

    Returns
    -------
    np.ndarray [shape=(n, n_bins, context_frames), dtype=float32]
    """
    last = max(spectrogram.shape[1] - context_frames, 0)
    starts = np.linspace(0, last, n).astype(np.int64)
    return np.stack([_window(spectrogram, int(s), context_frames) for s in starts])


def evenly_spaced_snippets(score: UnrolledScore, n: int) -> np.ndarray:
    """Cut ``n`` snippets whose centres are evenly spaced along the whole strip.

    The query set of performance identification (sheet to audio).

    Returns
    -------
    np.ndarray [shape=(n,) + SNIPPET_SHAPE, dtype=float32]
    """
    half = SNIPPET_WIDTH_PX / 2
    last = max(score.width_px - half, half)
    centres = np.linspace(half, last, n)
    return np.stack([cut_snippet(score, float(x)) for x in centres])


@dataclass(frozen=True)
class PairSettings:
    """How a :class:`PairPool` cuts its pairs.

    Attributes
    ----------
    context_frames : int
        Audio excerpt width in frames (42, 84 or 168 in the papers).
    one_per_onset : bool
        Keep only the first aligned note of each distinct onset frame of a
        performance (MSMD's rule); False keeps every aligned note.
    sheet_augmentation : SheetAugmentation
        What ``get(..., augment=True)`` does to the sheet snippet.
    audio_augmentation : bool
        Whether ``get(..., augment=True)`` takes the audio from a random
        performance of the same piece (among the pool's performances).
    """

    context_frames: int = 42
    one_per_onset: bool = True
    sheet_augmentation: SheetAugmentation = field(default_factory=SheetAugmentation)
    audio_augmentation: bool = True

    def __post_init__(self) -> None:
        if self.context_frames < 2:
            raise ConfigError(f"context_frames must be >= 2, got {self.context_frames}")


@dataclass
class _PieceData:
    piece_id: str
    score: UnrolledScore
    performances: list[PerformanceRecord]
    keys: list[np.ndarray]  # per performance: (event_id, occurrence) as one int64 per row
    aligned: bool  # all performances list the same notes in the same rows


def _note_keys(events: np.ndarray) -> np.ndarray:
    return events["event_id"].astype(np.int64) * 65536 + events["occurrence"].astype(np.int64)


class PairPool:
    """All training pairs of a set of pieces, indexed, cut on demand.

    Order: pieces as given, then each piece's kept performances in record
    order, then events in playing order -- so evenly spaced indices sample
    every piece in proportion to its length.

    Parameters
    ----------
    pieces : iterable of PieceRecord
        The pieces; their arrays are referenced, not copied.
    settings : PairSettings, optional
        Context width, onset rule, augmentation.
    keep_performance : callable, optional
        ``keep_performance(performance) -> bool`` selects the performances
        that give pairs (e.g. one soundfont at tempo 1.0 for the papers'
        "no audio augmentation" setting); default all.

    Examples
    --------
    >>> pool = PairPool(pieces, PairSettings(context_frames=42))  # doctest: +SKIP
    >>> snippet, excerpt = pool.get(0)  # (80, 100) and (92, 42) float32  # doctest: +SKIP
    """

    def __init__(
        self,
        pieces: Iterable[PieceRecord],
        settings: PairSettings | None = None,
        *,
        keep_performance: Callable[[PerformanceRecord], bool] | None = None,
    ) -> None:
        self.settings = settings or PairSettings()
        self._pieces: list[_PieceData] = []
        chunks: list[np.ndarray] = []
        for piece in pieces:
            performances = [
                p for p in piece.performances if keep_performance is None or keep_performance(p)
            ]
            if not performances:
                continue
            score = unroll_systems(piece)
            keys = [_note_keys(p.events) for p in performances]
            aligned = all(np.array_equal(keys[0], k) for k in keys[1:])
            index = len(self._pieces)
            self._pieces.append(_PieceData(piece.piece_id, score, performances, keys, aligned))
            for k, perf in enumerate(performances):
                chunks.append(self._entries(index, k, perf, score))
        self.entries = np.concatenate(chunks) if chunks else np.zeros(0, dtype=ENTRY_DTYPE)

    def _entries(
        self, piece: int, performance: int, perf: PerformanceRecord, score: UnrolledScore
    ) -> np.ndarray:
        heads = perf.events["notehead_id"]
        n_heads = len(score.notehead_x_px)
        rows = np.flatnonzero((heads >= 0) & (heads < n_heads))
        rows = rows[np.isfinite(score.notehead_x_px[heads[rows]])]
        onset = np.asarray(perf.onset_frame, dtype=np.int64)[rows]
        if self.settings.one_per_onset and len(rows):
            _, first = np.unique(onset, return_index=True)
            first.sort()  # back to playing order
            rows, onset = rows[first], onset[first]
        out = np.zeros(len(rows), dtype=ENTRY_DTYPE)
        out["piece"] = piece
        out["performance"] = performance
        out["event"] = rows
        out["notehead_id"] = heads[rows]
        out["onset_frame"] = onset
        out["x_px"] = score.notehead_x_px[heads[rows]]
        return out

    # --- the index ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def piece_ids(self) -> list[str]:
        """Ids of the pieces with pairs, in pool order (``entries["piece"]`` indexes this)."""
        return [p.piece_id for p in self._pieces]

    def performances(self, piece: int) -> list[PerformanceRecord]:
        """Return the performances of piece number ``piece`` that give pairs."""
        return self._pieces[piece].performances

    def score(self, piece: int) -> UnrolledScore:
        """Return the unrolled strip of piece number ``piece``."""
        return self._pieces[piece].score

    def performance_of(self, i: int) -> PerformanceRecord:
        """Return the performance pair ``i`` takes its audio from (without augmentation)."""
        e = self.entries[i]
        return self._pieces[int(e["piece"])].performances[int(e["performance"])]

    # --- cutting -----------------------------------------------------------------

    def get(
        self, i: int, augment: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cut pair ``i``.

        Parameters
        ----------
        i : int
            Index into the pool.
        augment : bool, optional
            Apply the settings' sheet and audio augmentation.
        rng : numpy.random.Generator, optional
            Source of the augmentation's randomness (required with ``augment``).

        Returns
        -------
        snippet : np.ndarray [shape=SNIPPET_SHAPE, dtype=float32]
        excerpt : np.ndarray [shape=(n_bins, context_frames), dtype=float32]
        """
        e = self.entries[i]
        data = self._pieces[int(e["piece"])]
        perf_index, row = int(e["performance"]), int(e["event"])
        scale, dx, dy = 1.0, 0, 0
        if augment:
            if rng is None:
                raise ConfigError("augment=True needs an rng")
            aug = self.settings.sheet_augmentation
            scale = float(rng.uniform(*aug.scale))
            dx = int(rng.integers(-aug.shift_x_px, aug.shift_x_px + 1))
            dy = int(rng.integers(-aug.shift_y_px, aug.shift_y_px + 1))
            if self.settings.audio_augmentation and len(data.performances) > 1:
                other = int(rng.integers(len(data.performances)))
                perf_index, row = self._same_note(data, perf_index, row, other)
        perf = data.performances[perf_index]
        snippet = cut_snippet(data.score, float(e["x_px"]), scale=scale, dx_px=dx, dy_px=dy)
        onset = int(perf.onset_frame[row])
        return snippet, cut_excerpt(perf.spectrogram, onset, self.settings.context_frames)

    @staticmethod
    def _same_note(data: _PieceData, perf: int, row: int, other: int) -> tuple[int, int]:
        """Row of the same note in performance ``other``; stay put if it has none."""
        if data.aligned or other == perf:
            return other, row
        hits = np.flatnonzero(data.keys[other] == data.keys[perf][row])
        return (other, int(hits[0])) if hits.size else (perf, row)

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        augment: bool = False,
        rng: np.random.Generator | None = None,
        *,
        audio_indices: Sequence[int] | np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cut a batch of pairs in the layout a network takes.

        Parameters
        ----------
        indices : sequence of int
            Pool indices.
        augment, rng
            As for :meth:`get`.
        audio_indices : sequence of int, optional
            Take each excerpt from these pairs instead (the same length as
            ``indices``); a control experiment passes a permutation to pair
            snippets with wrong audio.

        Returns
        -------
        sheets : np.ndarray [shape=(n, 1) + SNIPPET_SHAPE, dtype=float32]
        audio : np.ndarray [shape=(n, 1, n_bins, context_frames), dtype=float32]
        """
        n = len(indices)
        audio_from = indices if audio_indices is None else audio_indices
        if len(audio_from) != n:
            raise ConfigError("audio_indices must have the length of indices")
        sheets = np.empty((n, 1, *SNIPPET_SHAPE), dtype=np.float32)
        audio: np.ndarray | None = None
        for j, (i, a) in enumerate(zip(indices, audio_from, strict=True)):
            snippet, excerpt = self.get(int(i), augment, rng)
            if int(a) != int(i):
                excerpt = self.get(int(a), augment, rng)[1]
            if audio is None:
                audio = np.empty((n, 1, *excerpt.shape), dtype=np.float32)
            sheets[j, 0] = snippet
            audio[j, 0] = excerpt
        if audio is None:
            audio = np.empty((0, 1, N_BINS, self.settings.context_frames), dtype=np.float32)
        return sheets, audio

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield every pair, unaugmented, in pool order."""
        for i in range(len(self)):
            yield self.get(i)
