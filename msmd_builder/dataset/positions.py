"""Where the score is at every spectrogram frame: the ground truth of score following.

Score following in sheet images (Dorfer et al. 2016; Henkel et al. 2019;
Henkel and Widmer 2021, ``CPJKU/cyolo_score_following``) needs, for every
audio frame of a performance, the position in the score: the page, the
system, the bar and an x on the page.  Notes give that position only at their
onsets; between onsets the literature either holds the position of the last
onset that has sounded (cyolo's ``interp1d(kind="previous")`` over the onset
frames in ``utils/data_utils.py::load_piece``) or moves it linearly towards
the next onset (the MSMD score-following game's linear interpolation over the
unrolled score).  Both are offered here, with the bar sounding at the frame
taken exactly from the performance's measure occurrences.

:func:`onset_positions` reduces a performance's aligned notes to one position
per onset frame as cyolo does: the notes of one frame vote for a system, a page
and a measure box (each the most frequent among them; on a tie the first in
playing order), x is the mean of their notehead centres on that system and y
the system's vertical centre.  :func:`frame_positions` spreads those
over every frame; frames before the first onset take its position and frames
after the last onset keep the last one, each flagged.  :func:`iter_frame_positions`
walks the performances of many pieces.  Nothing here imports torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PerformanceRecord, PieceRecord

__all__ = [
    "POSITION_MODES",
    "ONSET_POSITION_DTYPE",
    "FRAME_POSITION_DTYPE",
    "system_order",
    "notehead_boxes",
    "onset_positions",
    "frame_positions",
    "iter_frame_positions",
]

#: ``"previous"``: the position of the last onset that has sounded;
#: ``"interpolated"``: moving linearly along the unrolled systems to the next onset.
POSITION_MODES = ("previous", "interpolated")

#: One row per distinct onset frame of a performance, in time order.
#:
#: ``frame``       the onset frame
#: ``page``        index into ``PieceRecord.pages``
#: ``system``      row of ``PieceRecord.systems``
#: ``measure_id``  the measure box the notes are in (row of ``PieceRecord.measures``)
#: ``x_px``        mean notehead centre on the page image, pixels
#: ``y_px``        vertical centre of the system, pixels
#: ``n_notes``     aligned notes starting in the frame
ONSET_POSITION_DTYPE = np.dtype(
    [
        ("frame", np.int64),
        ("page", np.int32),
        ("system", np.int32),
        ("measure_id", np.int32),
        ("x_px", np.float64),
        ("y_px", np.float64),
        ("n_notes", np.int32),
    ]
)

#: One row per spectrogram frame of a performance.
#:
#: ``frame``           frame index (0 .. n_frames - 1)
#: ``page``, ``system``, ``measure_id``, ``x_px``, ``y_px``  the position
#:                     (as :data:`ONSET_POSITION_DTYPE`; in ``interpolated``
#:                     mode the system and box the moving x is in)
#: ``onset``           row of :func:`onset_positions` last sounded (-1 before the first)
#: ``measure``, ``occurrence``  the measure sounding at the frame and which time
#:                     it is played (from the performance's measure occurrences;
#:                     -1 outside them)
#: ``before_first``    the frame comes before the first onset
#: ``after_last``      the frame comes after the last onset
FRAME_POSITION_DTYPE = np.dtype(
    [
        ("frame", np.int64),
        ("page", np.int32),
        ("system", np.int32),
        ("measure_id", np.int32),
        ("x_px", np.float64),
        ("y_px", np.float64),
        ("onset", np.int32),
        ("measure", np.int32),
        ("occurrence", np.int16),
        ("before_first", np.bool_),
        ("after_last", np.bool_),
    ]
)


def system_order(piece: PieceRecord) -> np.ndarray:
    """Rows of ``piece.systems`` in reading order ((book, system), as :func:`unroll_systems`)."""
    return np.lexsort((piece.systems["system"], piece.systems["book"]))


def notehead_boxes(piece: PieceRecord) -> np.ndarray:
    """Return the measure box (row of ``piece.measures``) holding each notehead's centre, or -1.

    A box holds a notehead when both are on the same (book, system) and the
    notehead's horizontal centre lies in ``[x0_px, x1_px)``.
    """
    heads, boxes = piece.noteheads, piece.measures
    out = np.full(len(heads), -1, dtype=np.int32)
    centre = (heads["x0_px"].astype(np.float64) + heads["x1_px"]) / 2
    for key in {(int(b), int(s)) for b, s in zip(boxes["book"], boxes["system"], strict=True)}:
        rows = np.flatnonzero((boxes["book"] == key[0]) & (boxes["system"] == key[1]))
        on = np.flatnonzero((heads["book"] == key[0]) & (heads["system"] == key[1]))
        for r in rows:
            inside = (centre[on] >= boxes["x0_px"][r]) & (centre[on] < boxes["x1_px"][r])
            out[on[inside]] = r
    return out


def _system_rows(piece: PieceRecord) -> dict[tuple[int, int], int]:
    keys = zip(piece.systems["book"].tolist(), piece.systems["system"].tolist(), strict=True)
    return {key: i for i, key in enumerate(keys)}


def onset_positions(
    piece: PieceRecord, performance: PerformanceRecord, *, onset_frame: np.ndarray | None = None
) -> np.ndarray:
    """One score position per distinct onset frame of a performance's aligned notes.

    Parameters
    ----------
    piece : PieceRecord
        Pages, systems, noteheads and measures.
    performance : PerformanceRecord
        Its events and onset frames.
    onset_frame : np.ndarray, optional
        Frame of each event under another frame rule (for instance cyolo's
        ``int(onset_sec * 22050 / 1102)``); default the performance's own
        ``onset_frame`` (MSMD's ``ceil(onset_sec * 20)``).

    Returns
    -------
    np.ndarray
        :data:`ONSET_POSITION_DTYPE`, sorted by frame.  Notes without a
        visible notehead on a page image, or whose notehead lies in no measure
        box, do not count.
    """
    heads = piece.noteheads
    frames = np.asarray(performance.onset_frame if onset_frame is None else onset_frame)
    ids = performance.events["notehead_id"]
    box_of = notehead_boxes(piece)
    usable = (ids >= 0) & (ids < len(heads))
    safe = np.where(usable, ids, 0)
    usable &= heads["visible"][safe] & (heads["page"][safe] >= 0)
    usable &= np.isfinite(heads["x0_px"][safe]) & (box_of[safe] >= 0)
    rows = np.flatnonzero(usable)
    system_row = _system_rows(piece)
    page_of = {
        (int(b), int(p)): i for i, (b, p) in enumerate(piece.page_keys.reshape(-1, 2).tolist())
    }
    centre = (heads["x0_px"].astype(np.float64) + heads["x1_px"]) / 2
    systems = piece.systems
    by_frame: dict[int, list[int]] = {}
    for r in rows:  # playing order
        by_frame.setdefault(int(frames[r]), []).append(int(ids[r]))
    out = np.zeros(len(by_frame), dtype=ONSET_POSITION_DTYPE)
    for i, frame in enumerate(sorted(by_frame)):
        notes = by_frame[frame]
        keys = [(int(heads["book"][n]), int(heads["system"][n])) for n in notes]
        system_key = Counter(keys).most_common(1)[0][0]
        on_system = [n for n, k in zip(notes, keys, strict=True) if k == system_key]
        system = system_row[system_key]
        pages = Counter(page_of[(int(heads["book"][n]), int(heads["page"][n]))] for n in notes)
        out[i] = (
            frame,
            pages.most_common(1)[0][0],
            system,
            Counter(int(box_of[n]) for n in notes).most_common(1)[0][0],
            float(np.mean(centre[on_system])),
            (float(systems["y0_px"][system]) + float(systems["y1_px"][system])) / 2,
            len(notes),
        )
    return out


def _measure_at(performance: PerformanceRecord, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    measure = np.full(n_frames, -1, dtype=np.int32)
    occurrence = np.full(n_frames, -1, dtype=np.int16)
    for row in performance.measures:
        a, b = max(int(row["start_frame"]), 0), min(int(row["end_frame"]), n_frames)
        measure[a:b] = row["measure"]
        occurrence[a:b] = row["occurrence"]
    return measure, occurrence


def frame_positions(
    piece: PieceRecord,
    performance: PerformanceRecord,
    *,
    mode: str = "previous",
    onset_frame: np.ndarray | None = None,
    n_frames: int | None = None,
) -> np.ndarray:
    """Return the score position at every spectrogram frame of a performance.

    Parameters
    ----------
    piece : PieceRecord
        The piece.
    performance : PerformanceRecord
        One of its performances.
    mode : {'previous', 'interpolated'}
        ``previous``: every frame takes the position of the last onset at or
        before it (cyolo's convention).  ``interpolated``: between two onsets
        x moves linearly along the unrolled systems (one strip, systems side
        by side in reading order) from one onset's x to the next; where the
        next onset lies behind in the strip (a repeat, a jump) the position is
        held until it sounds.
    onset_frame : np.ndarray, optional
        Onset frames under another frame rule (see :func:`onset_positions`).
    n_frames : int, optional
        Frames to cover; default the spectrogram's.

    Returns
    -------
    np.ndarray
        :data:`FRAME_POSITION_DTYPE`, one row per frame.  Frames before the
        first onset take its position (``before_first``); frames after the
        last keep the last one (``after_last``).  Without any aligned note
        every position field is -1 / NaN.

    Raises
    ------
    ConfigError
        For an unknown ``mode``.
    """
    if mode not in POSITION_MODES:
        raise ConfigError(f"mode must be one of {', '.join(POSITION_MODES)}, got {mode!r}")
    n = int(performance.spectrogram.shape[1] if n_frames is None else n_frames)
    out = np.zeros(n, dtype=FRAME_POSITION_DTYPE)
    out["frame"] = np.arange(n)
    out["measure"], out["occurrence"] = _measure_at(performance, n)
    onsets = onset_positions(piece, performance, onset_frame=onset_frame)
    if not len(onsets):
        out[["page", "system", "measure_id", "onset"]] = -1
        out["x_px"] = out["y_px"] = np.nan
        return out
    last = np.searchsorted(onsets["frame"], out["frame"], side="right") - 1
    out["before_first"] = last < 0
    out["after_last"] = out["frame"] > onsets["frame"][-1]
    out["onset"] = last
    held = onsets[np.maximum(last, 0)]
    for name in ("page", "system", "measure_id", "x_px", "y_px"):
        out[name] = held[name]
    if mode == "interpolated" and len(onsets) > 1:
        _interpolate(piece, onsets, out)
    return out


def _interpolate(piece: PieceRecord, onsets: np.ndarray, out: np.ndarray) -> None:
    """Move x along the unrolled systems between consecutive onsets (in place)."""
    systems = piece.systems
    order = system_order(piece)
    widths = (systems["x1_px"] - systems["x0_px"]).astype(np.float64)[order]
    start = np.zeros(len(systems))
    start[order] = np.concatenate([[0.0], np.cumsum(widths)[:-1]])
    strip = start[onsets["system"]] + onsets["x_px"] - systems["x0_px"][onsets["system"]]
    page_of = {
        (int(b), int(p)): i for i, (b, p) in enumerate(piece.page_keys.reshape(-1, 2).tolist())
    }
    box_rows = np.arange(len(piece.measures))
    for k in range(len(onsets) - 1):
        if strip[k + 1] <= strip[k]:
            continue  # a jump back: hold until the next onset sounds
        a, b = int(onsets["frame"][k]), int(onsets["frame"][k + 1])
        frames = np.arange(a + 1, min(b, len(out)))
        if not len(frames):
            continue
        s = strip[k] + (frames - a) / (b - a) * (strip[k + 1] - strip[k])
        j = order[np.searchsorted(start[order], s, side="right") - 1]
        x = systems["x0_px"][j] + (s - start[j])
        out["x_px"][frames] = x
        out["system"][frames] = j
        out["y_px"][frames] = (systems["y0_px"][j].astype(np.float64) + systems["y1_px"][j]) / 2
        out["page"][frames] = [
            page_of[(int(systems["book"][i]), int(systems["page"][i]))] for i in j
        ]
        for f, i, xi in zip(frames, j, x, strict=True):
            here = (
                (piece.measures["book"] == systems["book"][i])
                & (piece.measures["system"] == systems["system"][i])
                & (piece.measures["x0_px"] <= xi)
                & (xi < piece.measures["x1_px"])
            )
            hit = box_rows[here]
            out["measure_id"][f] = hit[0] if len(hit) else -1


def iter_frame_positions(
    pieces: Iterable[PieceRecord],
    *,
    mode: str = "previous",
    keep_performance: Callable[[PerformanceRecord], bool] | None = None,
) -> Iterator[tuple[PieceRecord, PerformanceRecord, np.ndarray]]:
    """Yield ``(piece, performance, positions)`` for every performance of many pieces.

    Parameters
    ----------
    pieces : iterable of PieceRecord
        For instance ``open_split(path).iter_pieces("test")``.
    mode : {'previous', 'interpolated'}
        See :func:`frame_positions`.
    keep_performance : callable, optional
        ``keep_performance(performance) -> bool`` selects performances; default all.

    Examples
    --------
    >>> with open_split("dataset/all") as split:  # doctest: +SKIP
    ...     for piece, perf, pos in iter_frame_positions(split.iter_pieces("test")):
    ...         spectrogram = perf.spectrogram  # (92, n_frames); pos has n_frames rows
    """
    for piece in pieces:
        for performance in piece.performances:
            if keep_performance is None or keep_performance(performance):
                yield piece, performance, frame_positions(piece, performance, mode=mode)
