"""Which built piece a recording plays: the 2018 paper's piece identification (Section 5).

*Database preparation.*  Every piece of a dataset split is cut into sheet
snippets as in training -- one centred on each printed notehead that starts a
distinct onset of the piece's reference performance, each printed notehead
once (a repeat played out does not count twice) -- and the snippets are
embedded with the model's sheet pathway.  The resulting :class:`SnippetIndex`
(embeddings, and each snippet's piece, page and system) is cached, keyed by
the checkpoint's and the split manifest's SHA-256, so it is built once.

*Query.*  The recording is read (soundfile: wav, flac, ogg, ...), mixed to
mono, resampled to 22,050 Hz (scipy's polyphase filter) and turned into
MSMD's spectrogram (:func:`~msmd_builder.stages.perform.spectrogram.compute_spectrogram`);
``excerpts`` excerpts evenly spaced over it are embedded with the audio
pathway, each retrieves its ``neighbours`` nearest snippets, and every
retrieved snippet votes for its piece.  Pieces rank by votes; a piece's
*share* is its part of all votes, and its best-matching system is the
(page, system) whose snippets got most of its votes.

Bad input raises :class:`~msmd_builder.core.errors.AudioInputError` with its
kind: ``unreadable``, ``silent`` (no sample above -80 dBFS) or ``too-short``
(fewer frames than one excerpt).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msmd_builder.core.cache import load_npz, save_npz, sha256_file, stable_key
from msmd_builder.core.errors import AudioInputError, ConfigError
from msmd_builder.core.records import PieceRecord
from msmd_builder.core.units import FPS, SAMPLE_RATE
from msmd_builder.dataset.packed import pack_pool
from msmd_builder.dataset.pairs import PairPool, PairSettings, evenly_spaced_excerpts
from msmd_builder.train.batches import PairBatcher
from msmd_builder.train.evaluate import embed_view
from msmd_builder.train.metrics import nearest
from msmd_builder.train.models import EmbeddingModel, model_device
from msmd_builder.train.runtime import autocast

__all__ = [
    "INDEX_FORMAT",
    "INDEX_VERSION",
    "SILENCE_PEAK",
    "SnippetIndex",
    "read_recording",
    "build_index",
    "cached_index",
    "identify",
    "format_ranking",
]

INDEX_FORMAT = "msmd-builder/identify-index"
INDEX_VERSION = 1
#: Peak amplitude below which a recording counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4


@dataclass
class SnippetIndex:
    """Embedded sheet snippets of a split's pieces.

    Attributes
    ----------
    piece_ids, titles : list of str
        The pieces (``piece`` indexes them) and their titles.
    embeddings : np.ndarray [shape=(n, 32), dtype=float32]
        Sheet embeddings.
    piece : np.ndarray [shape=(n,), dtype=int32]
        Piece of each snippet.
    book, page, system : np.ndarray [shape=(n,), dtype=int32]
        Where each snippet's notehead is printed: PDF (0-based), page (1-based)
        and system on that page (1-based).
    """

    piece_ids: list[str]
    titles: list[str]
    embeddings: np.ndarray
    piece: np.ndarray
    book: np.ndarray
    page: np.ndarray
    system: np.ndarray

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index (atomically)."""
        save_npz(
            path,
            format_name=INDEX_FORMAT,
            format_version=INDEX_VERSION,
            piece_ids=np.array(self.piece_ids, dtype=str),
            titles=np.array(self.titles, dtype=str),
            embeddings=self.embeddings,
            piece=self.piece,
            book=self.book,
            page=self.page,
            system=self.system,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SnippetIndex:
        """Read an index written by :meth:`save`."""
        data = load_npz(path, format_name=INDEX_FORMAT, format_version=INDEX_VERSION)
        return cls(
            piece_ids=[str(p) for p in data["piece_ids"]],
            titles=[str(t) for t in data["titles"]],
            **{k: data[k] for k in ("embeddings", "piece", "book", "page", "system")},
        )


def read_recording(path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """Read an audio file as MSMD's spectrogram.

    Returns
    -------
    spectrogram : np.ndarray [shape=(92, n_frames), dtype=float32]
    duration_s : float
        Length of the recording.

    Raises
    ------
    AudioInputError
        ``unreadable`` or ``silent``.
    """
    import soundfile
    from scipy.signal import resample_poly

    from msmd_builder.stages.perform.spectrogram import compute_spectrogram

    try:
        samples, rate = soundfile.read(os.fspath(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        raise AudioInputError("unreadable", f"{path}: no audio decoder reads it ({exc})") from exc
    mono = samples.mean(axis=1) if samples.size else np.zeros(0, np.float32)
    duration = len(mono) / rate if rate else 0.0
    if not np.all(np.isfinite(mono)):
        raise AudioInputError("unreadable", f"{path}: the samples are not finite numbers")
    if mono.size and float(np.max(np.abs(mono))) < SILENCE_PEAK:
        raise AudioInputError("silent", f"{path}: {duration:.1f} s without a sample above -80 dBFS")
    if rate != SAMPLE_RATE and mono.size:
        g = math.gcd(int(rate), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    if mono.size < 2048:  # one STFT window
        return np.zeros((92, 0), np.float32), duration
    return compute_spectrogram(mono), duration


def _systems_on_page(piece: PieceRecord) -> dict[tuple[int, int], int]:
    """(book, system) -> 1-based position of the system on its page."""
    out: dict[tuple[int, int], int] = {}
    rows = sorted(
        zip(
            piece.systems["book"].tolist(),
            piece.systems["page"].tolist(),
            piece.systems["system"].tolist(),
            strict=True,
        )
    )
    count: dict[tuple[int, int], int] = {}
    for book, page, system in rows:
        count[(book, page)] = count.get((book, page), 0) + 1
        out[(book, system)] = count[(book, page)]
    return out


@torch.no_grad()
def build_index(
    model: EmbeddingModel,
    pieces: Sequence[PieceRecord],
    *,
    bfloat16: bool = False,
    batch_size: int = 250,
    log: Callable[[str], None] | None = None,
) -> SnippetIndex:
    """Embed the snippets of ``pieces`` (see the module docstring); a piece id counts once."""
    say = log or (lambda line: None)
    model.eval()
    device = model_device(model)
    settings = PairSettings(context_frames=model.settings.context_frames)
    seen: set[str] = set()
    ids, titles, chunks = [], [], []
    for piece in pieces:
        if piece.piece_id in seen or not piece.performances:
            continue
        seen.add(piece.piece_id)
        reference = piece.performances[0].performance_id
        pool = PairPool(
            [piece], settings, keep_performance=lambda p, ref=reference: p.performance_id == ref
        )
        if not len(pool):
            continue
        heads = pool.entries["notehead_id"]
        _, first = np.unique(heads, return_index=True)
        rows = np.sort(first)
        batcher = PairBatcher(pack_pool(pool), device)
        embedded = []
        for start in range(0, len(rows), batch_size):
            sheets = batcher.sheets(rows[start : start + batch_size])
            with autocast(device, bfloat16):
                embedded.append(model.embed_sheet(sheets).float().cpu().numpy())
        where = piece.noteheads[heads[rows]]
        on_page = _systems_on_page(piece)
        places = zip(where["book"].tolist(), where["system"].tolist(), strict=True)
        chunks.append(
            (
                np.concatenate(embedded),
                np.full(len(rows), len(ids), np.int32),
                where["book"].astype(np.int32),
                where["page"].astype(np.int32) + 1,
                np.array([on_page.get(place, 0) for place in places], dtype=np.int32),
            )
        )
        ids.append(piece.piece_id)
        titles.append(str(piece.metadata.get("title", "")))
        say(f"indexed {piece.piece_id}: {len(rows)} snippets")
    if not chunks:
        raise ConfigError("no piece with aligned noteheads to index")
    columns = [np.concatenate(c) for c in zip(*chunks, strict=True)]
    return SnippetIndex(ids, titles, *columns)


def cached_index(
    model: EmbeddingModel,
    checkpoint: str | os.PathLike[str],
    split_dir: str | os.PathLike[str],
    parts: Sequence[str],
    index_dir: str | os.PathLike[str] | None = None,
    *,
    bfloat16: bool = False,
    log: Callable[[str], None] | None = None,
) -> tuple[SnippetIndex, Path | None, bool]:
    """Load the index of a split for a checkpoint, building and caching it if needed.

    The cache file is ``<index_dir>/<key>.npz`` (default ``index_dir``:
    ``<split_dir>/identify-index``), ``key`` hashing the checkpoint's and the
    split manifest's SHA-256, the parts and the index format.  An unwritable
    folder only costs the caching.

    Returns
    -------
    index : SnippetIndex
    path : Path or None
        The cache file (None if it could not be written).
    cached : bool
        Whether the index came from the cache.
    """
    from msmd_builder.dataset.reader import open_split
    from msmd_builder.stages.shards import MANIFEST_FILE

    say = log or (lambda line: None)
    split = Path(split_dir)
    key = stable_key(
        {
            "format": [INDEX_FORMAT, INDEX_VERSION],
            "checkpoint": sha256_file(checkpoint),
            "manifest": sha256_file(split / MANIFEST_FILE),
            "parts": list(parts),
            "bfloat16": bfloat16,
        }
    )
    folder = Path(index_dir) if index_dir is not None else split / "identify-index"
    path = folder / f"{key[:32]}.npz"
    if path.is_file():
        return SnippetIndex.load(path), path, True
    say(f"building the snippet index of {split} (once per checkpoint and dataset)")
    with open_split(split) as reader:
        chosen = [p for p in parts if p in reader.parts]
        if not chosen:
            raise ConfigError(f"{split} has none of the parts {list(parts)}")
        pieces = (piece for part in chosen for piece in reader.iter_pieces(part))
        index = build_index(model, list(pieces), bfloat16=bfloat16, log=log)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        index.save(path)
    except OSError as exc:
        say(f"index not cached ({exc})")
        return index, None, False
    return index, path, False


def identify(
    model: EmbeddingModel,
    spectrogram: np.ndarray,
    index: SnippetIndex,
    *,
    excerpts: int = 100,
    neighbours: int = 25,
    top: int = 10,
    bfloat16: bool = False,
) -> list[dict[str, Any]]:
    """Rank the indexed pieces for a recording's spectrogram.

    Returns
    -------
    list of dict
        The ``top`` pieces, best first: ``rank``, ``piece_id``, ``title``,
        ``votes``, ``share`` (of all votes), ``best`` (``book``, ``page``,
        ``system``, ``votes``: the system of the piece that got most votes).

    Raises
    ------
    AudioInputError
        ``too-short`` if the spectrogram is shorter than one excerpt.
    """
    context = model.settings.context_frames
    if spectrogram.shape[1] < context:
        raise AudioInputError(
            "too-short",
            f"{spectrogram.shape[1] / FPS:.2f} s of spectrogram, shorter than one "
            f"{context / FPS:.1f} s excerpt of the model",
        )
    queries = evenly_spaced_excerpts(spectrogram, excerpts, context)
    hits = nearest(embed_view(model, "audio", queries, bfloat16), index.embeddings, neighbours)
    hit_piece = index.piece[hits.ravel()]
    votes = np.bincount(hit_piece, minlength=len(index.piece_ids))
    order = sorted(range(len(votes)), key=lambda p: (-int(votes[p]), index.piece_ids[p]))
    ranking = []
    for rank, p in enumerate(order[:top], start=1):
        mine = hits.ravel()[hit_piece == p]
        best = None
        if mine.size:
            places = np.stack([index.book[mine], index.page[mine], index.system[mine]], axis=1)
            unique, counts = np.unique(places, axis=0, return_counts=True)
            book, page, system = (int(v) for v in unique[int(np.argmax(counts))])
            best = {"book": book, "page": page, "system": system, "votes": int(counts.max())}
        ranking.append(
            {
                "rank": rank,
                "piece_id": index.piece_ids[p],
                "title": index.titles[p],
                "votes": int(votes[p]),
                "share": float(votes[p] / hits.size),
                "best": best,
            }
        )
    return ranking


def format_ranking(result: dict[str, Any]) -> str:
    """Render an identification result as a Markdown table."""
    lines = [
        f"{result['audio']}: {result['duration_s']:.1f} s, {result['excerpts']} excerpts x "
        f"{result['neighbours']} nearest of {result['index']['snippets']} snippets "
        f"({result['index']['pieces']} pieces)",
        "",
        "| rank | piece | title | votes | share | best page / system |",
        "| ---: | --- | --- | ---: | ---: | --- |",
    ]
    for row in result["ranking"]:
        best = row["best"]
        where = "-" if best is None else f"page {best['page']}, system {best['system']}"
        if best is not None and best["book"]:
            where = f"book {best['book'] + 1}, {where}"
        lines.append(
            f"| {row['rank']} | {row['piece_id']} | {row['title']} | {row['votes']} "
            f"| {row['share']:.1%} | {where} |"
        )
    return "\n".join(lines)
