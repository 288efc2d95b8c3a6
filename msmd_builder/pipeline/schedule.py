"""Longest first: the order pieces are handed to the workers, and what each took.

With pieces taken in index order, a long piece drawn last keeps one worker
busy while the others idle.  Handing out the longest pieces first (the
"longest processing time" rule) leaves only short pieces for the end.  A
piece's cost is the longest it has taken in an earlier build of the same work
directory (``<work>/timings.json``, written after every run); a piece never
built is estimated from the size of its sources, at the median seconds per
byte of the pieces that have a timing (LilyPond's time and the length of the
music both grow with the source).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from msmd_builder.core.cache import atomic_write_json, read_json
from msmd_builder.core.workdir import WorkDir
from msmd_builder.stages.corpus.index import PieceEntry

__all__ = ["TIMINGS_FORMAT", "estimate_costs", "longest_first", "record_timings"]

#: ``format_name`` of ``<work>/timings.json``.
TIMINGS_FORMAT = "msmd-builder/piece-timings"
TIMINGS_VERSION = 1
#: Seconds per source byte when no piece has a timing yet (only the order matters then).
DEFAULT_SECONDS_PER_BYTE = 1e-4


def _read_timings(work: WorkDir) -> dict[str, float]:
    try:
        document = read_json(work.timings)
    except (OSError, ValueError):
        return {}
    if (
        document.get("format_name") != TIMINGS_FORMAT
        or document.get("format_version") != TIMINGS_VERSION
    ):
        return {}
    return {str(k): float(v) for k, v in (document.get("seconds") or {}).items()}


def _source_bytes(entry: PieceEntry, corpus_root: str | Path) -> int:
    root = Path(corpus_root)
    total = 0
    for name in (entry.main_file, *entry.includes):
        try:
            total += (root / name).stat().st_size
        except OSError:
            continue
    return total


def estimate_costs(
    entries: Sequence[PieceEntry], work_dir: str | Path, corpus_root: str | Path
) -> dict[str, float]:
    """Return each piece's expected seconds: its longest earlier build, else from its size."""
    timings = _read_timings(WorkDir(Path(work_dir)))
    sizes = {e.piece_id: _source_bytes(e, corpus_root) for e in entries}
    rates = [timings[i] / sizes[i] for i in sizes if i in timings and sizes[i] > 0]
    rate = statistics.median(rates) if rates else DEFAULT_SECONDS_PER_BYTE
    return {i: timings.get(i, sizes[i] * rate) for i in sizes}


def longest_first(entries: Sequence[PieceEntry], costs: Mapping[str, float]) -> list[PieceEntry]:
    """Return the entries by expected cost, longest first (ties keep their order)."""
    return sorted(entries, key=lambda e: -costs.get(e.piece_id, 0.0))


def record_timings(work_dir: str | Path, seconds: Mapping[str, float]) -> None:
    """Keep, per piece, the longest total seconds any build of it has taken.

    The longest, not the latest: a rebuild that finds every stage cached takes
    a fraction of a second and says nothing of what the piece costs.
    """
    work = WorkDir(Path(work_dir))
    before = _read_timings(work)
    timings = dict(before)
    for piece_id, sec in seconds.items():
        timings[piece_id] = round(max(float(sec), timings.get(piece_id, 0.0)), 3)
    if timings == before:
        return  # a cached rebuild writes nothing
    atomic_write_json(
        work.timings,
        {
            "format_name": TIMINGS_FORMAT,
            "format_version": TIMINGS_VERSION,
            "seconds": dict(sorted(timings.items())),
        },
    )
