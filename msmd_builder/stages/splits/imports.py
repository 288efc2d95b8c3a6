"""Importing existing piece lists (MSMD's YAML) against a corpus.

Every listed piece that is not available is named with its reason: not in the
corpus, not a keyboard piece, failed in the build (with its class) or not built.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msmd_builder.core.cache import sha256_file
from msmd_builder.core.errors import ConfigError
from msmd_builder.stages.corpus.index import PieceEntry
from msmd_builder.stages.splits.split import Split, read_split

__all__ = [
    "NOT_IN_CORPUS",
    "NOT_SELECTED",
    "FAILED",
    "NOT_BUILT",
    "MissingPiece",
    "SplitImport",
    "BuildFacts",
    "import_split",
    "build_facts",
]


NOT_IN_CORPUS = "not in corpus"
"""Missing-piece reason: the id is not in the corpus index."""


NOT_SELECTED = "not selected as keyboard"
"""Missing-piece reason: in the index, but not selected as solo keyboard."""


FAILED = "failed"
"""Missing-piece reason: the build failed (see ``error_class`` and ``message``)."""


NOT_BUILT = "not built"
"""Missing-piece reason: selected (or unknown to the caller) but not among the built pieces."""


@dataclass(frozen=True)
class MissingPiece:
    """A piece listed by an imported split that is not among the available pieces."""

    piece_id: str
    part: str
    """The part the source file lists it in."""
    reason: str
    """:data:`NOT_IN_CORPUS`, :data:`NOT_SELECTED`, :data:`FAILED` or :data:`NOT_BUILT`."""
    error_class: str = ""
    """The build failure's class (``PieceError.error_class``) when ``reason`` is ``failed``."""
    message: str = ""
    """The build failure's message when ``reason`` is ``failed``."""

    def describe(self) -> str:
        """Return one readable line, e.g. ``X (test): failed [scheme] unbound variable``."""
        text = f"{self.piece_id} ({self.part}): {self.reason}"
        if self.reason == FAILED:
            text += f" [{self.error_class}]"
            if self.message:
                text += " " + " ".join(self.message.split())
        return text

    def to_dict(self) -> dict[str, str]:
        """Return the record as plain strings (as stored in an imported split's ``meta``)."""
        return {
            "piece_id": self.piece_id,
            "part": self.part,
            "reason": self.reason,
            "error_class": self.error_class,
            "message": self.message,
        }


@dataclass(frozen=True)
class SplitImport:
    """Result of :func:`import_split`: the usable split and what it lost."""

    split: Split
    """The source split restricted to the available pieces (part order and id order kept)."""
    listed: Split
    """The source split as read."""
    missing: tuple[MissingPiece, ...]
    """Every listed piece that is not available, in part order then file order."""

    @property
    def resolved(self) -> int:
        """Number of listed pieces that are available."""
        return len(self.split.piece_ids())

    def reason_counts(self) -> dict[str, int]:
        """Return the number of missing pieces per reason (failures per error class)."""
        counts = Counter(
            f"{m.reason}: {m.error_class}" if m.reason == FAILED else m.reason for m in self.missing
        )
        return dict(sorted(counts.items()))

    def summary(self) -> str:
        """Return a readable multi-line account: totals, per-part counts, each missing piece."""
        listed = self.listed.counts()
        kept = self.split.counts()
        lines = [
            f"{self.listed.name}: {self.resolved} of {len(self.listed.piece_ids())} "
            f"listed pieces available, {len(self.missing)} missing",
            "  " + ", ".join(f"{p} {kept[p]}/{listed[p]}" for p in listed),
        ]
        for reason, count in self.reason_counts().items():
            lines.append(f"  {count:4d}  {reason}")
        lines.extend("  - " + m.describe() for m in self.missing)
        return "\n".join(lines)


@dataclass(frozen=True)
class BuildFacts:
    """What a build report says about each piece, in the form the split functions take."""

    available_ids: frozenset[str]
    """Pieces that went through the build (status other than ``failed``)."""
    failed: dict[str, tuple[str, str]]
    """Failed piece id -> (error class, message)."""
    stats: dict[str, dict[str, int]]
    """Piece id -> alignment statistics (``pages``, ``noteheads``, ``performed_notes``, ...)."""


def import_split(
    path: str | os.PathLike[str],
    *,
    available_ids: Iterable[str],
    index: Iterable[PieceEntry] | None = None,
    failed: Mapping[str, tuple[str, str]] | None = None,
) -> SplitImport:
    """Read an existing piece list and restrict it to the pieces that are available.

    Parameters
    ----------
    path : path-like
        A split file (e.g. MSMD's ``tismir2018_all_split.yaml``) in the layout
        :func:`read_split` reads.
    available_ids : iterable of str
        Pieces that can go into the dataset (built ones, or the keyboard
        selection before a build).
    index : iterable of PieceEntry, optional
        The corpus index; lets a missing piece be told apart as
        :data:`NOT_IN_CORPUS` or :data:`NOT_SELECTED`.
    failed : mapping, optional
        Piece id -> (error class, message) of failed builds (see :func:`build_facts`).

    Returns
    -------
    SplitImport
        ``split`` keeps the source's name, seed, part order and id order;
        its description records the source file, its SHA-256 and the
        missing pieces, so a written import documents its own losses.

    Notes
    -----
    The reason of a missing piece is, in this order: :data:`FAILED` when
    ``failed`` lists it, :data:`NOT_IN_CORPUS` when ``index`` lacks it,
    :data:`NOT_SELECTED` when ``index`` has it without ``is_keyboard``,
    otherwise :data:`NOT_BUILT`.
    """
    path = Path(path)
    listed = read_split(path)
    available = set(available_ids)
    failed = dict(failed or {})
    known = None if index is None else {entry.piece_id: entry for entry in index}
    missing: list[MissingPiece] = []
    parts: dict[str, tuple[str, ...]] = {}
    for part, ids in listed.parts.items():
        parts[part] = tuple(p for p in ids if p in available)
        for piece_id in ids:
            if piece_id in available:
                continue
            if piece_id in failed:
                error_class, message = failed[piece_id]
                missing.append(MissingPiece(piece_id, part, FAILED, error_class, message))
            elif known is not None and piece_id not in known:
                missing.append(MissingPiece(piece_id, part, NOT_IN_CORPUS))
            elif known is not None and not known[piece_id].is_keyboard:
                missing.append(MissingPiece(piece_id, part, NOT_SELECTED))
            else:
                missing.append(MissingPiece(piece_id, part, NOT_BUILT))
    description = {
        "recipe": "import",
        "source": path.name,
        "source_sha256": sha256_file(path),
        "source_description": dict(listed.description),
        "listed": len(listed.piece_ids()),
        "missing": [m.to_dict() for m in missing],
    }
    split = Split(listed.name, parts, listed.seed, description)
    return SplitImport(split=split, listed=listed, missing=tuple(missing))


def build_facts(report: Mapping[str, Any]) -> BuildFacts:
    """Read the per-piece outcomes of a build report (``msmd_builder.pipeline.write_report``).

    Parameters
    ----------
    report : Mapping
        The JSON document: ``{"pieces": [{"piece_id", "status", "error_class",
        "message", "details": {"alignment": {...}}}, ...], ...}``.

    Returns
    -------
    BuildFacts
        Available ids, failures and alignment statistics, for
        :func:`import_split` and :func:`split_statistics`.
    """
    pieces = report.get("pieces")
    if not isinstance(pieces, list):
        raise ConfigError("not a build report: no `pieces` list")
    available: set[str] = set()
    failed: dict[str, tuple[str, str]] = {}
    stats: dict[str, dict[str, int]] = {}
    for outcome in pieces:
        piece_id = outcome["piece_id"]
        if outcome.get("status") == "failed":
            failed[piece_id] = (outcome.get("error_class", ""), outcome.get("message", ""))
            continue
        available.add(piece_id)
        alignment = (outcome.get("details") or {}).get("alignment")
        if isinstance(alignment, Mapping):
            stats[piece_id] = {k: v for k, v in alignment.items() if isinstance(v, int)}
    return BuildFacts(frozenset(available), failed, stats)
