"""The printed-order fallback: remember that a piece's unfolded performance cannot be built.

Either the unfolded performance failed the reading-order check (a repeat written
in some voices only) or its written jump does not read into one playing order.
With :attr:`~msmd_builder.stages.align.stage.AlignSettings.repeats_fallback`
such a piece is built in printed order instead, as MSMD did, and flagged.

The memo (``pieces/<id>/repeats.json``, a :class:`~msmd_builder.core.cache.StageCache`
record) is keyed by the normalized sources and the versions of the hooks and
stages that decided, so a rebuild goes straight to the folded rendering, and a
changed source or a new version of the hooks tries the unfolded one again.
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
    """The fallback memo of one piece.

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
            format_version=1,
        )

    def folded(self) -> bool:
        """Return True when the piece is known to need printed order."""
        return self.cache.lookup() is not None

    def reason(self) -> dict[str, str]:
        """Why the piece is built folded: ``repeats_fallback`` (message) and its class."""
        memo: dict[str, Any] = self.cache.lookup() or {}
        return {
            "repeats_fallback": str(memo.get("reason", ""))[:500],
            "repeats_fallback_class": str(memo.get("error_class", "verification")),
        }

    def record(self, reason: str, error_class: str) -> None:
        """Remember that the unfolded performance failed, and why."""
        self.cache.store(
            {
                "requested": "unfolded",
                "used": "folded",
                "reason": reason,
                "error_class": error_class,
            }
        )
