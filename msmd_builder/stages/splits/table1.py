"""MSMD's Table 1 (pieces, pages, noteheads, events, aligned pairs per part) for our splits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from msmd_builder.core.errors import ConfigError
from msmd_builder.stages.splits.split import Split

__all__ = [
    "PartStats",
    "MSMD_TABLE1",
    "TABLE1_STAT_KEYS",
    "split_statistics",
    "total_statistics",
    "table1_document",
    "format_table1",
]


@dataclass(frozen=True)
class PartStats:
    """Table-1 figures of one split part: pieces, pages, noteheads, events, aligned pairs."""

    pieces: int
    pages: int
    noteheads: int
    events: int
    """Performed note events (MSMD: MIDI note events)."""
    aligned_pairs: int
    """Notehead / note-event pairs (MSMD: "Aln. Pairs")."""
    without_stats: int = 0
    """Pieces of the part with no statistics (not built); counted in ``pieces`` only."""

    def to_dict(self) -> dict[str, int]:
        """Return the figures as a JSON-ready mapping (field name -> count)."""
        return asdict(self)

    def __add__(self, other: PartStats) -> PartStats:
        return PartStats(
            self.pieces + other.pieces,
            self.pages + other.pages,
            self.noteheads + other.noteheads,
            self.events + other.events,
            self.aligned_pairs + other.aligned_pairs,
            self.without_stats + other.without_stats,
        )


MSMD_TABLE1: dict[str, dict[str, PartStats]] = {
    "all": {
        "train": PartStats(360, 970, 316_038, 310_377, 308_761),
        "valid": PartStats(19, 28, 6_907, 6_583, 6_660),
        "test": PartStats(100, 131, 29_851, 29_811, 29_321),
    },
    "bach-only": {
        "train": PartStats(100, 251, 77_834, 75_283, 74_769),
        "valid": PartStats(23, 40, 10_805, 10_379, 10_428),
        "test": PartStats(50, 88, 23_733, 23_296, 23_119),
    },
    "bach-out": {
        "train": PartStats(281, 725, 235_590, 233_041, 231_617),
        "valid": PartStats(25, 25, 4_834, 4_772, 4_809),
        "test": PartStats(173, 379, 112_372, 108_958, 108_316),
    },
}
"""MSMD's statistics per split and part, from Table 1 of Dorfer, Hajič, Arzt, Frostel and
Widmer, "Learning Audio–Sheet Music Correspondences for Cross-Modal Retrieval and Piece
Identification", Transactions of the International Society for Music Information Retrieval
1(1), 2018. Totals: 479 pieces / 344,742 aligned pairs (``all``, ``bach-out``), 173 / 108,316
(``bach-only``).
"""


TABLE1_STAT_KEYS: dict[str, str] = {
    "pages": "pages",
    "noteheads": "noteheads",
    "events": "performed_notes",
    "aligned_pairs": "aligned_performed_notes",
}
"""Table-1 column (:class:`PartStats` field) -> key of the per-piece alignment statistics."""


def split_statistics(split: Split, stats: Mapping[str, Mapping[str, int]]) -> dict[str, PartStats]:
    """Sum per-piece statistics per part, as in MSMD's Table 1.

    Parameters
    ----------
    split : Split
        The split.
    stats : Mapping
        Piece id -> statistics with at least the keys of :data:`TABLE1_STAT_KEYS`
        (``pages``, ``noteheads``, ``performed_notes``, ``aligned_performed_notes``).
        A piece without an entry counts in ``pieces`` and ``without_stats`` only.

    Returns
    -------
    dict
        Part name -> :class:`PartStats`, in the split's part order.
    """
    result: dict[str, PartStats] = {}
    for part, ids in split.parts.items():
        sums = dict.fromkeys(TABLE1_STAT_KEYS, 0)
        without = 0
        for piece_id in ids:
            piece = stats.get(piece_id)
            if piece is None:
                without += 1
                continue
            for column, key in TABLE1_STAT_KEYS.items():
                if key not in piece:
                    raise ConfigError(f"statistics of {piece_id!r} lack {key!r}")
                sums[column] += int(piece[key])
        result[part] = PartStats(pieces=len(ids), without_stats=without, **sums)
    return result


def total_statistics(parts: Mapping[str, PartStats]) -> PartStats:
    """Return the sum over parts (Table 1's "# Pieces / Aln. Pairs" column)."""
    total = PartStats(0, 0, 0, 0, 0)
    for stats in parts.values():
        total = total + stats
    return total


def table1_document(
    statistics: Mapping[str, Mapping[str, PartStats]],
) -> dict[str, dict[str, dict[str, int]]]:
    """Return split -> part -> figures as plain JSON data.

    The shape of a build report's ``summary["table1"]`` and
    ``summary["msmd_table1"]`` (``table1_document(MSMD_TABLE1)``), which
    :mod:`msmd_builder.outputs.report_html` renders.
    """
    return {
        split: {part: stats.to_dict() for part, stats in parts.items()}
        for split, parts in statistics.items()
    }


def format_table1(
    parts: Mapping[str, PartStats],
    *,
    title: str = "",
    reference: Mapping[str, PartStats] | None = None,
) -> str:
    """Return a Markdown table in the form of MSMD's Table 1.

    Parameters
    ----------
    parts : Mapping
        Part name -> statistics (from :func:`split_statistics`).
    title : str
        Heading line, omitted when empty.
    reference : Mapping, optional
        MSMD's figures for the same split (e.g. ``MSMD_TABLE1["all"]``);
        each cell then reads ``ours (MSMD)``.
    """
    columns = ("pieces", "pages", "noteheads", "events", "aligned_pairs")
    rows = {**parts, "total": total_statistics(parts)}
    ref_rows = None
    if reference is not None:
        ref_rows = {**reference, "total": total_statistics(reference)}
    lines = [f"### {title}", ""] if title else []
    suffix = " (MSMD)" if ref_rows is not None else ""
    lines.append(
        "| part | " + " | ".join(c.replace("_", " ") + suffix for c in columns) + " | no stats |"
    )
    lines.append("| --- |" + " ---: |" * (len(columns) + 1))
    for part, stats in rows.items():
        cells = []
        for column in columns:
            cell = f"{getattr(stats, column):,}"
            if ref_rows is not None:
                ref = ref_rows.get(part)
                cell += f" ({getattr(ref, column):,})" if ref is not None else " (-)"
            cells.append(cell)
        lines.append(f"| {part} | " + " | ".join(cells) + f" | {stats.without_stats} |")
    return "\n".join(lines) + "\n"
