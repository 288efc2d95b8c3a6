"""System passages: each system as a performance plays it, with its audio span.

Passage retrieval (Carvalho and Widmer, ISMIR 2023, ``luisfvc/lcasr``) pairs a
whole staff system of the score with the audio that plays it, instead of a
fixed-size snippet around one note.  :func:`system_passages` lists, for one
performance, every *system occurrence*: a run of measure occurrences printed
on one system, in playing order (a repeat that goes back to an earlier system,
or a Da Capo, plays that system again: a new occurrence).  Its audio span is
exact: from the start of its first measure occurrence to the end of its last
(the measures' times come from LilyPond's timing, see
:mod:`msmd_builder.stages.align.measures`).  A measure broken by a line break
is split where the performance crosses the break: at the onset of its first
note printed on the later system (or, without one, in proportion to the
widths of its boxes).

Each passage has its image twice: as the slice of the unrolled strip
(:func:`~msmd_builder.dataset.pairs.unroll_systems`: 200 px centred on the
system, ink = 255) and as the system's box on its page.  :class:`PassagePool`
indexes the passages of many pieces and cuts (sheet, spectrogram) pairs on
demand, like :class:`~msmd_builder.dataset.pairs.PairPool`;
:func:`passage_snippets` cuts a pair into the snippet sequences of the 2023
recurrent model (:data:`LCASR_2023`).  Nothing here imports torch.

The 2019 settings (Balke et al., ISMIR 2019) are snippet pairs, not passages:
a 160 x 200 px sheet snippet with 42, 84 or 168 frames of audio around one
onset (``PairPool`` with ``PairSettings(context_frames=...)``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PerformanceRecord, PieceRecord
from msmd_builder.core.units import FPS, sec_to_frame
from msmd_builder.dataset.pairs import UnrolledScore, unroll_systems
from msmd_builder.dataset.positions import system_order

__all__ = [
    "SystemPassage",
    "system_passages",
    "PassageSnippetSettings",
    "LCASR_2023",
    "passage_snippets",
    "PassagePool",
]


@dataclass(frozen=True)
class SystemPassage:
    """One system as a performance plays it.

    Attributes
    ----------
    system : int
        Row of ``PieceRecord.systems``.
    occurrence : int
        0 the first time the performance plays this system, 1 the second, ...
    page : int
        Index into ``PieceRecord.pages``.
    box_px : tuple of float
        ``(x0, y0, x1, y1)``: the system's box on its page image.
    strip_x0_px, strip_x1_px : int
        The system's columns in the unrolled strip (without its padding).
    start_sec, end_sec : float
        Its audio span in the performance's seconds.
    start_frame, end_frame : int
        The spectrogram frames ``[start_frame, end_frame)`` of that span.
    first_measure, last_measure : int
        Rows of the performance's ``measures`` it covers (inclusive).
    """

    system: int
    occurrence: int
    page: int
    box_px: tuple[float, float, float, float]
    strip_x0_px: int
    strip_x1_px: int
    start_sec: float
    end_sec: float
    start_frame: int
    end_frame: int
    first_measure: int
    last_measure: int


def _split_times(
    piece: PieceRecord, performance: PerformanceRecord, row: np.void, boxes: np.ndarray
) -> list[float]:
    """Where a measure occurrence printed over several boxes passes from one to the next."""
    start, end = float(row["start_sec"]), float(row["end_sec"])
    events = performance.events
    heads = piece.noteheads
    inside = (events["onset_sec"] >= start) & (events["onset_sec"] < end)
    inside &= events["notehead_id"] >= 0
    ids = events["notehead_id"][inside]
    onsets = events["onset_sec"][inside]
    widths = np.maximum(boxes["x1_px"] - boxes["x0_px"], 0).astype(np.float64)
    cuts = []
    for k in range(1, len(boxes)):
        later = heads["book"][ids] == boxes["book"][k]
        later &= heads["system"][ids] >= boxes["system"][k]
        if later.any():
            cuts.append(float(onsets[later].min()))
        else:
            share = widths[:k].sum() / widths.sum() if widths.sum() > 0 else k / len(boxes)
            cuts.append(start + share * (end - start))
    return cuts


def system_passages(
    piece: PieceRecord, performance: PerformanceRecord, *, score: UnrolledScore | None = None
) -> list[SystemPassage]:
    """List the system occurrences of a performance, in playing order.

    Parameters
    ----------
    piece : PieceRecord
        Pages, systems, measures, noteheads.
    performance : PerformanceRecord
        Its ``measures`` (measure occurrences in its seconds) and events.
    score : UnrolledScore, optional
        ``unroll_systems(piece)``, when already made (for the strip columns).

    Returns
    -------
    list of SystemPassage
    """
    score = unroll_systems(piece) if score is None else score
    systems = piece.systems
    order = system_order(piece)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    strip_end = np.r_[score.system_x0_px[1:], score.width_px]
    row_of = {
        (int(b), int(s)): i
        for i, (b, s) in enumerate(zip(systems["book"], systems["system"], strict=True))
    }
    page_of = {
        (int(b), int(p)): i for i, (b, p) in enumerate(piece.page_keys.reshape(-1, 2).tolist())
    }
    boxes_of: dict[int, np.ndarray] = {}
    for m in np.unique(piece.measures["measure"]):
        boxes = piece.measures[piece.measures["measure"] == m]
        boxes_of[int(m)] = boxes[np.argsort(boxes["part"])]
    # (system row, start_sec, end_sec, measure occurrence row) in playing order.
    pieces_in_order: list[tuple[int, float, float, int]] = []
    for i, row in enumerate(performance.measures):
        boxes = boxes_of.get(int(row["measure"]))
        if boxes is None or not len(boxes) or boxes["page"][0] < 0:
            continue
        times = [float(row["start_sec"]), *_split_times(piece, performance, row, boxes)]
        times.append(float(row["end_sec"]))
        for k, box in enumerate(boxes):
            system = row_of[(int(box["book"]), int(box["system"]))]
            pieces_in_order.append((system, times[k], times[k + 1], i))
    passages: list[SystemPassage] = []
    seen: dict[int, int] = defaultdict(int)
    k = 0
    while k < len(pieces_in_order):
        system, start, end, first = pieces_in_order[k]
        last = first
        while k + 1 < len(pieces_in_order) and pieces_in_order[k + 1][0] == system:
            k += 1
            end, last = pieces_in_order[k][2], pieces_in_order[k][3]
        box = systems[system]
        passages.append(
            SystemPassage(
                system=system,
                occurrence=seen[system],
                page=page_of[(int(box["book"]), int(box["page"]))],
                box_px=(
                    float(box["x0_px"]),
                    float(box["y0_px"]),
                    float(box["x1_px"]),
                    float(box["y1_px"]),
                ),
                strip_x0_px=int(score.system_x0_px[rank[system]]),
                strip_x1_px=int(strip_end[rank[system]]),
                start_sec=start,
                end_sec=end,
                start_frame=int(sec_to_frame(start)),
                end_frame=int(sec_to_frame(end)),
                first_measure=first,
                last_measure=last,
            )
        )
        seen[system] += 1
        k += 1
    return passages


@dataclass(frozen=True)
class PassageSnippetSettings:
    """How a passage is cut into snippet sequences for a recurrent model.

    Attributes
    ----------
    sheet_context_px : int
        Width of a sheet snippet before downsizing by two.
    staff_height_px : int
        Height of a sheet snippet before downsizing by two (rows centred on the strip).
    sheet_overlap : float
        Overlap of consecutive sheet snippets (hop = width * (1 - overlap)).
    sheet_left_pad_px : int
        Blank columns before the downsized system, so the first snippet
        starts before the system.
    snippet_sec : float
        Length of an audio snippet.
    spec_overlap : float
        Overlap of consecutive audio snippets.
    """

    sheet_context_px: int = 180
    staff_height_px: int = 160
    sheet_overlap: float = 0.1
    sheet_left_pad_px: int = 20
    snippet_sec: float = 1.0
    spec_overlap: float = 0.1

    def __post_init__(self) -> None:
        if not (0 <= self.sheet_overlap < 1 and 0 <= self.spec_overlap < 1):
            raise ConfigError("overlaps must lie in [0, 1)")
        if self.sheet_context_px < 2 or self.staff_height_px < 2 or self.snippet_sec <= 0:
            raise ConfigError("snippet sizes must be positive")


#: The 2023 passage model's snippets (``luisfvc/lcasr``, ``config/msmd_config.yaml``:
#: ``snippet_len: 1``, ``sheet_context: 180``, ``staff_height: 160``,
#: ``sheet_overlap: 0.1``, ``spec_overlap: 0.1``; ``msmd_dataset.py``: systems
#: downsized by two, a 20-column blank left margin).
LCASR_2023 = PassageSnippetSettings()


def passage_snippets(
    sheet: np.ndarray, excerpt: np.ndarray, settings: PassageSnippetSettings = LCASR_2023
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one passage into a sequence of sheet snippets and one of audio snippets.

    Parameters
    ----------
    sheet : np.ndarray [shape=(200, width), dtype=float32]
        The passage's strip slice, ink in [0, 1] (as :meth:`PassagePool.get`).
    excerpt : np.ndarray [shape=(92, n_frames)]
        Its spectrogram frames.
    settings : PassageSnippetSettings
        Snippet sizes and overlaps.

    Returns
    -------
    sheet_snippets : np.ndarray [shape=(n_sheet, staff_height / 2, sheet_context / 2)]
        Downsized by two (2 x 2 means); blank (0) beyond the system.
    audio_snippets : np.ndarray [shape=(n_audio, 92, snippet_sec * 20)]
        Zero beyond the passage's end.
    """
    height, width = sheet.shape
    small = sheet[: height // 2 * 2, : width // 2 * 2]
    small = (small[0::2, 0::2] + small[1::2, 0::2] + small[0::2, 1::2] + small[1::2, 1::2]) / 4
    context, rows = settings.sheet_context_px // 2, settings.staff_height_px // 2
    hop = max(int(context * (1 - settings.sheet_overlap)), 1)
    padded = np.pad(small, ((0, 0), (settings.sheet_left_pad_px, context)))
    top = small.shape[0] // 2 - rows // 2
    starts = range(0, small.shape[1] + settings.sheet_left_pad_px, hop)
    sheets = np.stack([padded[top : top + rows, s : s + context] for s in starts])
    frames = int(round(settings.snippet_sec * FPS))
    spec_hop = max(int(frames * (1 - settings.spec_overlap)), 1)
    n = excerpt.shape[1]
    padded_audio = np.pad(excerpt, ((0, 0), (0, frames)))
    audio = np.stack([padded_audio[:, s : s + frames] for s in range(0, max(n, 1), spec_hop)])
    return sheets.astype(np.float32), audio.astype(np.float32)


class PassagePool:
    """The system passages of many pieces, indexed, cut on demand.

    Order: pieces as given, their performances, passages in playing order.

    Parameters
    ----------
    pieces : iterable of PieceRecord
        The pieces.
    keep_performance : callable, optional
        ``keep_performance(performance) -> bool``; default all.

    Examples
    --------
    >>> pool = PassagePool(split.iter_pieces("train"))  # doctest: +SKIP
    >>> sheet, excerpt = pool.get(0)  # (200, width) and (92, n_frames) float32
    """

    def __init__(
        self,
        pieces: Iterable[PieceRecord],
        *,
        keep_performance: Callable[[PerformanceRecord], bool] | None = None,
    ) -> None:
        self._scores: list[UnrolledScore] = []
        self._performances: list[list[PerformanceRecord]] = []
        self.piece_ids: list[str] = []
        self.entries: list[tuple[int, int, SystemPassage]] = []
        for piece in pieces:
            performances = [
                p for p in piece.performances if keep_performance is None or keep_performance(p)
            ]
            if not performances:
                continue
            score = unroll_systems(piece)
            index = len(self.piece_ids)
            self.piece_ids.append(piece.piece_id)
            self._scores.append(score)
            self._performances.append(performances)
            for k, performance in enumerate(performances):
                for passage in system_passages(piece, performance, score=score):
                    self.entries.append((index, k, passage))

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Cut passage ``i``.

        Returns
        -------
        sheet : np.ndarray [shape=(200, width), dtype=float32]
            The system's strip slice, ink in [0, 1].
        excerpt : np.ndarray [shape=(92, end_frame - start_frame), dtype=float32]
            Its spectrogram frames (zero beyond the spectrogram's end).
        """
        piece, performance, passage = self.entries[i]
        score = self._scores[piece]
        a, b = score.pad_px + passage.strip_x0_px, score.pad_px + passage.strip_x1_px
        sheet = score.strip[:, a:b].astype(np.float32) / 255
        spectrogram = self._performances[piece][performance].spectrogram
        width = max(passage.end_frame - passage.start_frame, 0)
        excerpt = np.zeros((spectrogram.shape[0], width), dtype=np.float32)
        stop = min(passage.end_frame, spectrogram.shape[1])
        if stop > passage.start_frame:
            excerpt[:, : stop - passage.start_frame] = spectrogram[:, passage.start_frame : stop]
        return sheet, excerpt

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield every passage in pool order."""
        for i in range(len(self)):
            yield self.get(i)
