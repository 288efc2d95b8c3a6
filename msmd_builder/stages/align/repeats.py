"""Remember how a piece's repeats have to be rendered: on the shared timeline, or in printed order.

A piece is first rendered with LilyPond's unfolded MIDI.  Two findings send it
to another rendering, and this memo remembers them:

* the unfolded MIDI does not follow the score's repeat structure in every voice
  (a repeat written in some voices only,
  :class:`~msmd_builder.core.errors.RepeatsOutOfStepError`): the piece is
  rendered with ``repeats="timeline"`` and unrolled for every voice alike
  (:mod:`msmd_builder.stages.align.timeline`), a reading of the score, not a
  fallback;
* the performance fails the reading-order check or its written jump does not
  read into one playing order: with
  :attr:`~msmd_builder.stages.align.stage.AlignSettings.repeats_fallback` the
  piece is built in printed order instead, as MSMD did, and flagged (the last
  resort).

The memo (``pieces/<id>/repeats.json``, a :class:`~msmd_builder.core.cache.StageCache`
record) is keyed by the normalized sources and the versions of the hooks and
stages that decided, so a rebuild goes straight to the rendering that worked,
and a changed source or a new version of the hooks tries the unfolded one again.
"""

from __future__ import annotations

from typing import Any

from msmd_builder.core.cache import StageCache, sha256_file
from msmd_builder.core.workdir import PieceDir
from msmd_builder.lilypond.tools import patches_dir
from msmd_builder.stages import render
from msmd_builder.stages.align import stage as align
from msmd_builder.stages.normalize import NormalizedPiece

__all__ = ["MEMO_FORMAT", "RepeatsMemo"]

#: ``format_name`` of ``repeats.json``.
MEMO_FORMAT = "msmd-builder/repeats-memo"


class RepeatsMemo:
    """The repeats memo of one piece.

    Parameters
    ----------
    piece_dir : PieceDir
        The piece's work folder.
    normalized : NormalizedPiece
        Its normalized sources (their key is part of the memo's key).
    """

    def __init__(self, piece_dir: PieceDir, normalized: NormalizedPiece) -> None:
        self.cache = StageCache.for_document(
            piece_dir.repeats_memo,
            {
                "normalized": normalized.cache_key,
                "render": render.STAGE_VERSION,
                "align": align.STAGE_VERSION,
                "patches": {p.name: sha256_file(p) for p in sorted(patches_dir().glob("*.ily"))},
            },
            format_name=MEMO_FORMAT,
            format_version=2,
        )

    def _memo(self) -> dict[str, Any]:
        return dict(self.cache.lookup() or {})

    def mode(self) -> str | None:
        """Return the rendering the piece is known to need ("timeline", "folded"), or None."""
        used = self._memo().get("used")
        return str(used) if used else None

    def timeline_reason(self) -> str:
        """Return why the piece's repeats are unrolled on the shared timeline ("" if not)."""
        return str(self._memo().get("timeline_reason") or "")

    def folded(self) -> bool:
        """Return True when the piece is known to need printed order."""
        return self.mode() == "folded"

    def details(self) -> dict[str, str]:
        """Return what the report says of the piece's repeats.

        ``repeats_timeline``: why its repeats are unrolled on the shared
        timeline; ``repeats_fallback`` and ``repeats_fallback_class``: why it
        is built in printed order.
        """
        memo = self._memo()
        details: dict[str, str] = {}
        if memo.get("timeline_reason"):
            details["repeats_timeline"] = str(memo["timeline_reason"])[:500]
        if memo.get("used") == "folded":
            details["repeats_fallback"] = str(memo.get("reason", ""))[:500]
            details["repeats_fallback_class"] = str(memo.get("error_class", "verification"))
        return details

    def record_timeline(self, reason: str) -> None:
        """Remember that the piece's repeats are written in some voices only, and where."""
        self.cache.store({"requested": "unfolded", "used": "timeline", "timeline_reason": reason})

    def record_fallback(self, reason: str, error_class: str) -> None:
        """Remember that the piece needs printed order, and why (keeping a timeline reason)."""
        self.cache.store(
            {
                "requested": "unfolded",
                "used": "folded",
                "reason": reason,
                "error_class": error_class,
                "timeline_reason": self._memo().get("timeline_reason", ""),
            }
        )
