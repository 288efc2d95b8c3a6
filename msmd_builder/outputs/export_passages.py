"""A plain layout for audio–sheet music passage retrieval, one file per piece.

The passage model of Carvalho and Widmer (ISMIR 2023, ``luisfvc/lcasr``,
``msmd_dataset.py::load_msmd_piece`` and ``SystemDataset``) reads per piece
``<piece>.npz`` with an ``unrolled_score`` (every system side by side, 255 =
paper) and ``performances``: one dict per performance with ``perf`` (a name
holding ``tempo-<1000 x ratio>_<soundfont>``, which it parses to choose
performances), ``spec`` (the 92-bin spectrogram) and ``o2sc``: one row per
system, ``[first column of the system in unrolled_score, first frame of its
audio]``; a system's passage runs to the next row (the last to the ends of the
score and the spectrogram).  The snippet model of Dorfer et al. (TISMIR 2018,
``CPJKU/audio_sheet_retrieval``, ``utils/data_pools.py::prepare_piece_data``)
reads the same unrolled score with, per performance, ``[onset frame, x in the
unrolled score]`` of the first aligned note of every onset frame: ``o2c``
here.

Our performances play repeats and jumps, so a system can be played more than
once.  ``unrolled_score`` therefore holds the system *occurrences* in playing
order (a repeated system appears again), which keeps ``o2sc`` increasing, as
that code expects; every performance of a piece plays the same order, so one
strip serves them all.  Each system occurrence is the strip of
:func:`~msmd_builder.dataset.pairs.unroll_systems` (200 px centred on the
system) and its audio span the exact one of
:func:`~msmd_builder.dataset.passages.system_passages`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PerformanceRecord, PieceRecord
from msmd_builder.dataset.pairs import unroll_systems
from msmd_builder.dataset.passages import system_passages

__all__ = ["PASSAGES_FORMAT", "PASSAGES_VERSION", "performance_name", "passage_arrays"]

#: ``format_name`` stored beside the fields the retrieval code reads.
PASSAGES_FORMAT = "msmd-builder/export-passages"
PASSAGES_VERSION = 1


def performance_name(performance: PerformanceRecord) -> str:
    """``tempo-<1000 x ratio>_<soundfont>[_humanized]``, the name lcasr parses."""
    plan = performance.plan
    name = f"tempo-{round(1000 * float(plan['tempo_ratio']))}_{plan['soundfont']}"
    return f"{name}_humanized" if plan.get("humanize") else name


def passage_arrays(piece: PieceRecord) -> dict[str, Any]:
    """Return the arrays of one piece's passage-retrieval ``.npz`` (module docstring).

    Returns
    -------
    dict
        ``unrolled_score`` (uint8, 200 x width, 255 = paper), ``systems``
        (int32: the ``PieceRecord.systems`` row of each occurrence in the
        strip), ``performances`` (object array of dicts ``perf``,
        ``performance_id``, ``spec``, ``o2sc``, ``o2c``) and
        ``msmd_builder_json``.

    Raises
    ------
    ConfigError
        If the piece's performances do not play the systems in one order.
    """
    score = unroll_systems(piece)
    lists = [system_passages(piece, p, score=score) for p in piece.performances]
    order = [p.system for p in lists[0]] if lists else []
    for performance, passages in zip(piece.performances, lists, strict=True):
        if [p.system for p in passages] != order:
            raise ConfigError(
                f"{piece.piece_id}: {performance.performance_id} plays the systems in another "
                "order than the first performance"
            )
    bands = []
    starts = []
    offset = 0
    for passage in lists[0] if lists else []:
        a, b = score.pad_px + passage.strip_x0_px, score.pad_px + passage.strip_x1_px
        band = score.strip[:, a:b]
        bands.append(255 - band)  # back to paper = 255
        starts.append(offset)
        offset += band.shape[1]
    height = score.strip.shape[0]
    unrolled = np.concatenate(bands, axis=1) if bands else np.full((height, 0), 255, np.uint8)
    heads = piece.noteheads
    performances = []
    for performance, passages in zip(piece.performances, lists, strict=True):
        o2sc = np.array(
            [[starts[k], p.start_frame] for k, p in enumerate(passages)], dtype=np.int64
        ).reshape(-1, 2)
        o2c: list[list[int]] = []
        seen: set[int] = set()
        events = performance.events
        for k, passage in enumerate(passages):
            system = piece.systems[passage.system]
            inside = (events["onset_sec"] >= passage.start_sec) & (
                events["onset_sec"] < passage.end_sec
            )
            for r in np.flatnonzero(inside & (events["notehead_id"] >= 0)):
                n = int(events["notehead_id"][r])
                frame = int(performance.onset_frame[r])
                x = score.notehead_x_px[n]
                same_system = heads["book"][n] == system["book"] and (
                    heads["system"][n] == system["system"]
                )
                if frame in seen or not same_system or not np.isfinite(x):
                    continue
                seen.add(frame)
                o2c.append([frame, int(starts[k] + x - passage.strip_x0_px)])
        o2c.sort()
        performances.append(
            {
                "perf": performance_name(performance),
                "performance_id": performance.performance_id,
                "spec": np.asarray(performance.spectrogram, dtype=np.float32),
                "o2sc": o2sc,
                "o2c": np.array(o2c, dtype=np.int64).reshape(-1, 2),
            }
        )
    provenance = {
        "format_name": PASSAGES_FORMAT,
        "format_version": PASSAGES_VERSION,
        "piece_id": piece.piece_id,
        "strip_height_px": int(height),
        "units": "o2sc: [column, frame]; o2c: [frame, column]; columns of unrolled_score",
    }
    return {
        "unrolled_score": np.ascontiguousarray(unrolled, dtype=np.uint8),
        "systems": np.array(order, dtype=np.int32),
        "performances": np.array(performances, dtype=object),
        "msmd_builder_json": np.array(json.dumps(provenance, sort_keys=True)),
    }
