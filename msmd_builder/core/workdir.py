"""Every path of a build's work directory, in one place.

::

    <work>/index.csv                          corpus index (the scan)
    <work>/corpus.json                        the Mutopia root the index was made from
    <work>/reports/                           reports of ``corpus render``
    <work>/timings.json                       longest build of each piece (scheduling)
    <work>/pieces/<piece_id>/                 one :class:`PieceDir` per piece:
        normalize.json, source/               normalized sources
        repeats.json                          printed-order fallback memo
        render/render.json, *.pdf, *.midi,    LilyPond's outputs and the hooks' tables
               *.msmd-*.tsv, lilypond.log
        render-scratch/                       what LilyPond writes, while it runs
        score/score.json, geometry.npz,       page images and geometry
              page-<book>-<page>.png
        align/align.json, alignment.npz       performed notes linked to noteheads
        perform/perform.json, <id>.npz,       performances (synthesized, and aligned
                <id>.flac                     recordings, listed under "recordings")
        recordings/references/<order>.npz     reference features of each playing order
        recordings/orders.npz                 the playing orders a recording is tried against
        packed/<role>.h5, <role>.json         the piece's shard group per split role
        view/                                 overlays and the HTML page

Stages, the orchestrator, the built-piece reader, the viewer and the command
line all take their paths from here; nothing else joins ``"pieces"`` and a
piece id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WorkDir", "PieceDir"]


@dataclass(frozen=True)
class WorkDir:
    """A build's work directory.

    Attributes
    ----------
    root : Path
        The folder (``--work-dir``).
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def index(self) -> Path:
        """The corpus index written by ``msmd-build corpus scan``."""
        return self.root / "index.csv"

    @property
    def corpus_record(self) -> Path:
        """JSON with the Mutopia root the index was made from."""
        return self.root / "corpus.json"

    @property
    def reports(self) -> Path:
        """Folder of ``corpus render`` reports."""
        return self.root / "reports"

    @property
    def timings(self) -> Path:
        """The longest each piece's build has taken (the longest-first schedule)."""
        return self.root / "timings.json"

    @property
    def pieces(self) -> Path:
        """Folder of the per-piece folders."""
        return self.root / "pieces"

    def piece(self, piece_id: str) -> PieceDir:
        """Return the folder of one piece."""
        if not piece_id or "/" in piece_id or os.sep in piece_id or piece_id in (".", ".."):
            raise ValueError(f"not a piece id: {piece_id!r}")
        return PieceDir(self.pieces / piece_id, piece_id)


@dataclass(frozen=True)
class PieceDir:
    """The work folder of one piece, and every file the stages write there.

    Attributes
    ----------
    root : Path
        ``<work>/pieces/<piece_id>``.
    piece_id : str
        The piece.
    """

    root: Path
    piece_id: str

    @classmethod
    def of(cls, work_dir: str | os.PathLike[str], piece_id: str) -> PieceDir:
        """Return the folder of ``piece_id`` in ``work_dir``."""
        return WorkDir(Path(work_dir)).piece(piece_id)

    @property
    def work_dir(self) -> Path:
        """The work directory this piece belongs to."""
        return self.root.parent.parent

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the work directory (``pieces/<id>/...``), for messages."""
        return Path(path).relative_to(self.work_dir).as_posix()

    # normalize
    @property
    def source(self) -> Path:
        """Normalized sources, mirroring the Mutopia tree."""
        return self.root / "source"

    @property
    def normalize_record(self) -> Path:
        """Record of the normalize stage."""
        return self.root / "normalize.json"

    @property
    def repeats_memo(self) -> Path:
        """Memo of a printed-order fallback."""
        return self.root / "repeats.json"

    # render
    @property
    def render(self) -> Path:
        """LilyPond's outputs: PDFs, MIDIs, log and the hooks' tables."""
        return self.root / "render"

    @property
    def render_record(self) -> Path:
        """Record of the render stage."""
        return self.render / "render.json"

    @property
    def render_scratch(self) -> Path:
        """The one folder a (sandboxed) LilyPond run may write; emptied after each run."""
        return self.root / "render-scratch"

    # score
    @property
    def score(self) -> Path:
        """Page images and geometry."""
        return self.root / "score"

    @property
    def score_record(self) -> Path:
        """Record of the score stage."""
        return self.score / "score.json"

    @property
    def geometry(self) -> Path:
        """Noteheads and systems tables."""
        return self.score / "geometry.npz"

    def page_image(self, book: int, page: int) -> Path:
        """Return the PNG of page ``page`` of book ``book``."""
        return self.score / f"page-{book}-{page}.png"

    # align
    @property
    def align(self) -> Path:
        """Alignment outputs."""
        return self.root / "align"

    @property
    def align_record(self) -> Path:
        """Record of the align stage."""
        return self.align / "align.json"

    @property
    def alignment(self) -> Path:
        """The performed-notes table."""
        return self.align / "alignment.npz"

    # perform
    @property
    def perform(self) -> Path:
        """Performance files."""
        return self.root / "perform"

    @property
    def perform_record(self) -> Path:
        """Record (index) of the perform stage."""
        return self.perform / "perform.json"

    def performance(self, performance_id: str) -> Path:
        """Return the ``.npz`` file of one performance."""
        return self.perform / f"{performance_id}.npz"

    def performance_audio(self, performance_id: str) -> Path:
        """Return the ``.flac`` file of one performance (when audio is kept)."""
        return self.perform / f"{performance_id}.flac"

    # shards
    @property
    def packed(self) -> Path:
        """A piece's shard groups, compressed once per split role and copied into shards."""
        return self.root / "packed"

    def packed_piece(self, role: str) -> Path:
        """Return the HDF5 file holding the piece's shard group for one role."""
        return self.packed / f"{role}.h5"

    def packed_record(self, role: str) -> Path:
        """Return the record (key, counts, checksum) of :meth:`packed_piece`."""
        return self.packed / f"{role}.json"

    # recordings
    @property
    def recordings(self) -> Path:
        """Caches of the recordings step (the references a recording is aligned to)."""
        return self.root / "recordings"

    def recording_reference(self, order_key: str) -> Path:
        """Return the cached reference features of one playing order."""
        return self.recordings / "references" / f"{order_key}.npz"

    @property
    def recording_orders(self) -> Path:
        """The cached playing orders a recording of the piece is compared against."""
        return self.recordings / "orders.npz"

    # outputs for people
    @property
    def view(self) -> Path:
        """Default folder of overlays and the HTML page."""
        return self.root / "view"
