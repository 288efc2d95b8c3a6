"""Evaluation of a trained model on the test pieces of a split.

:func:`evaluate` runs, on the performances at the reference tempo (ratio 1.0):

* two-way snippet retrieval (2018, Section 4; 2019, Table 2): ``n`` test pairs
  at evenly spaced indices of the ordered test pool (2,000 and 10,000 by
  default, fewer if the pool is smaller); audio-to-sheet (an excerpt finds its
  snippet among ``n``) and sheet-to-audio; R@1, R@5, R@25, MRR, median rank,
  and the random baseline for ``n`` candidates;
* piece identification (2018, Section 5, Table 4): 100 excerpts evenly spaced
  over each test performance each retrieve their 25 nearest snippets among all
  snippets of all test pieces, which vote for their piece (audio to score); and
  100 snippets evenly spaced along each piece's unrolled score vote the same way
  among all excerpts of all test performances (score to audio); Rk@1/5/10;

then, when the test performances come at several tempo ratios (the tempo
robustness recipe of the dataset build), the retrieval MRR per ratio (2019,
Table 3); and for an attention model, plots of its attention weights for a few
test pairs and of attention entropy against the number of onsets in the
excerpt (2019, Figures 3 and 4).

Writes into ``out_dir``: ``evaluation.json``, ``evaluation.md`` and, for the
attention model, ``attention_examples.png`` and ``attention_entropy.png``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msmd_builder.core.cache import atomic_path
from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PerformanceRecord, PieceRecord
from msmd_builder.dataset.pairs import (
    PairPool,
    PairSettings,
    evenly_spaced,
    evenly_spaced_excerpts,
    evenly_spaced_snippets,
)
from msmd_builder.train.embedding import embed_pairs
from msmd_builder.train.metrics import (
    entropy,
    identification_metrics,
    nearest,
    random_baseline,
    retrieval_metrics,
    retrieval_ranks,
    vote_ranks,
)
from msmd_builder.train.models import PRECISIONS, EmbeddingModel, as_input, model_device
from msmd_builder.train.runtime import autocast, resolve_device, use_bfloat16

__all__ = ["EvalSettings", "evaluate", "embed_view", "tempo_ratio", "format_report"]


@dataclass(frozen=True)
class EvalSettings:
    """What :func:`evaluate` measures.

    Attributes
    ----------
    n_pairs : tuple of int
        Retrieval test sizes (candidates per query): 2,000 (2018) and 10,000 (2019);
        a size larger than the test pool means the whole pool, reported once.
    reference_tempo : float
        Tempo ratio of the performances used for retrieval and identification.
    identification_queries : int
        Excerpts (snippets) per test performance (piece) for identification.
    identification_neighbours : int
        Nearest candidates that vote, per query excerpt or snippet.
    tempo_pairs : int
        Test pairs per tempo ratio for the tempo-robustness MRR.
    attention_examples : int
        Pairs shown in the attention plot.
    attention_pairs : int
        Pairs in the entropy-against-onsets plot.
    one_per_onset : bool
        The pool rule (as in training).
    precision : {'auto', 'float32', 'bfloat16'}
        Autocast of the networks.
    threads : int
        torch intra-op threads.
    device : {'cpu', 'cuda'}
        Where the networks run.
    """

    n_pairs: tuple[int, ...] = (2000, 10000)
    reference_tempo: float = 1.0
    identification_queries: int = 100
    identification_neighbours: int = 25
    tempo_pairs: int = 2000
    attention_examples: int = 6
    attention_pairs: int = 2000
    one_per_onset: bool = True
    precision: str = "auto"
    threads: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.n_pairs or min(self.n_pairs) < 2:
            raise ConfigError(f"n_pairs must be sizes >= 2, got {self.n_pairs}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.identification_queries < 1 or self.identification_neighbours < 1:
            raise ConfigError("identification_queries and identification_neighbours must be >= 1")


def tempo_ratio(performance: PerformanceRecord) -> float:
    """Return the performance's tempo ratio from its plan (1.0 if the plan has none)."""
    return round(float(performance.plan.get("tempo_ratio", 1.0)), 3)


@torch.no_grad()
def embed_view(
    model: EmbeddingModel, view: str, arrays: np.ndarray, bf16: bool, batch: int = 250
) -> np.ndarray:
    """Embed (n, height, width) snippets (``view="sheet"``) or excerpts (``"audio"``)."""
    out = []
    fn = model.embed_sheet if view == "sheet" else model.embed_audio
    device = model_device(model)
    for start in range(0, len(arrays), batch):
        x = as_input(arrays[start : start + batch, None], device)
        with autocast(device, bf16):
            out.append(fn(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.settings.embedding_dim), np.float32)


def _retrieval(sheet: np.ndarray, audio: np.ndarray) -> dict[str, Any]:
    return {
        "audio_to_sheet": retrieval_metrics(retrieval_ranks(audio, sheet)),
        "sheet_to_audio": retrieval_metrics(retrieval_ranks(sheet, audio)),
        "random": random_baseline(len(sheet)),
    }


def _identification(
    model: EmbeddingModel,
    pool: PairPool,
    sheet_db: np.ndarray,
    audio_db: np.ndarray,
    settings: EvalSettings,
    bf16: bool,
) -> dict[str, Any]:
    labels = pool.entries["piece"]
    n_pieces = len(pool.piece_ids)
    k = settings.identification_neighbours
    context = pool.settings.context_frames
    a2s_ranks, s2a_ranks = [], []
    for piece in range(n_pieces):
        for perf in pool.performances(piece):
            queries = evenly_spaced_excerpts(
                perf.spectrogram, settings.identification_queries, context
            )
            hits = labels[nearest(embed_view(model, "audio", queries, bf16), sheet_db, k)]
            votes = np.bincount(hits.ravel(), minlength=n_pieces)
            a2s_ranks.append(vote_ranks(votes[None], np.array([piece]))[0])
        snippets = evenly_spaced_snippets(pool.score(piece), settings.identification_queries)
        hits = labels[nearest(embed_view(model, "sheet", snippets, bf16), audio_db, k)]
        votes = np.bincount(hits.ravel(), minlength=n_pieces)
        s2a_ranks.append(vote_ranks(votes[None], np.array([piece]))[0])
    return {
        "pieces": n_pieces,
        "audio_to_score": identification_metrics(np.array(a2s_ranks)),
        "score_to_audio": identification_metrics(np.array(s2a_ranks)),
    }


def _onsets_in_window(perf: PerformanceRecord, onset_frame: int, context: int) -> int:
    start = onset_frame - context // 2
    frames = np.unique(perf.onset_frame)
    return int(np.count_nonzero((frames >= start) & (frames < start + context)))


def _attention(
    model: EmbeddingModel, pool: PairPool, settings: EvalSettings, out: Path | None, bf16: bool
) -> dict[str, Any]:
    indices = evenly_spaced(len(pool), settings.attention_pairs)
    weights, onsets = [], []
    for start in range(0, len(indices), 250):
        chunk = indices[start : start + 250]
        _, audio = pool.batch(chunk)
        device = model_device(model)
        with torch.no_grad(), autocast(device, bf16):
            w = model.attention_weights(as_input(audio, device))
        weights.append(w.float().cpu().numpy())
        context = pool.settings.context_frames
        for i in chunk:
            perf = pool.performance_of(int(i))
            onsets.append(_onsets_in_window(perf, int(pool.entries[i]["onset_frame"]), context))
    w_all = np.concatenate(weights)
    ent = entropy(w_all)
    counts = np.asarray(onsets)
    corr = float(np.corrcoef(counts, ent)[0, 1]) if np.std(counts) > 0 and np.std(ent) > 0 else 0.0
    result = {
        "pairs": int(len(indices)),
        "mean_entropy": float(ent.mean()),
        "max_entropy": float(np.log(w_all.shape[1])),
        "entropy_onset_correlation": corr,
    }
    if out is not None:
        _plot_attention(pool, indices, w_all, ent, counts, settings, out)
        result["plots"] = ["attention_examples.png", "attention_entropy.png"]
    return result


def _plot_attention(
    pool: PairPool,
    indices: np.ndarray,
    weights: np.ndarray,
    ent: np.ndarray,
    counts: np.ndarray,
    settings: EvalSettings,
    out: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = evenly_spaced(len(indices), settings.attention_examples)
    fig, axes = plt.subplots(3, len(picks), figsize=(2.6 * len(picks), 6), squeeze=False)
    for col, j in enumerate(picks):
        snippet, excerpt = pool.get(int(indices[j]))
        axes[0, col].imshow(snippet, cmap="gray_r")
        axes[0, col].set_title(f"{counts[j]} onsets", fontsize=8)
        axes[1, col].plot(weights[j] / weights[j].max())
        axes[1, col].set_xlim(0, len(weights[j]) - 1)
        axes[1, col].set_ylim(0, 1.05)
        axes[2, col].imshow(excerpt, origin="lower", aspect="auto", cmap="viridis")
        for row in range(3):
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
    axes[1, 0].set_ylabel("attention (normalised)", fontsize=8)
    fig.tight_layout()
    _save(fig, out / "attention_examples.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(counts, ent, s=4, alpha=0.4)
    ax.set_xlabel("onsets in the excerpt")
    ax.set_ylabel("attention entropy (nats)")
    fig.tight_layout()
    _save(fig, out / "attention_entropy.png")
    plt.close(fig)


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def evaluate(
    model: EmbeddingModel,
    test_pieces: Sequence[PieceRecord],
    settings: EvalSettings | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure retrieval, identification, tempo robustness and attention on test pieces.

    Parameters
    ----------
    model : EmbeddingModel
        A trained model (put in eval mode).
    test_pieces : sequence of PieceRecord
        The test pieces with their performances.
    settings : EvalSettings, optional
        What to measure; default :class:`EvalSettings`.
    out_dir : path-like, optional
        Where to write the report and plots; nothing is written without it.
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    dict
        ``retrieval`` (per test size), ``identification``, ``tempo`` (per ratio,
        or empty), ``attention`` (or None), ``settings``, ``test_pairs``.
    """
    settings = settings or EvalSettings()
    say = log or (lambda line: None)
    torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    bf16 = use_bfloat16(settings.precision, device)
    model.to(device).eval()
    context = model.settings.context_frames
    pair_settings = PairSettings(context_frames=context, one_per_onset=settings.one_per_onset)
    ratios = sorted({tempo_ratio(p) for piece in test_pieces for p in piece.performances})
    reference = settings.reference_tempo
    if reference not in ratios:
        if not ratios:
            raise ConfigError("the test pieces have no performances")
        reference = min(ratios, key=lambda r: abs(r - settings.reference_tempo))
    pool = PairPool(
        test_pieces, pair_settings, keep_performance=lambda p: tempo_ratio(p) == reference
    )
    if len(pool) < 2:
        raise ConfigError(f"{len(pool)} test pairs; need at least 2")
    say(f"test pool: {len(pool)} pairs of {len(pool.piece_ids)} pieces at tempo {reference}")
    sheet_all, audio_all = embed_pairs(model, pool, np.arange(len(pool)), bfloat16=bf16)

    report: dict[str, Any] = {
        "settings": {**asdict(settings), "n_pairs": list(settings.n_pairs)},
        "model": model.settings.to_dict(),
        "test_pieces": pool.piece_ids,
        "test_pairs": len(pool),
        "reference_tempo": reference,
        "retrieval": {},
    }
    done: set[int] = set()
    for n in settings.n_pairs:
        idx = evenly_spaced(len(pool), n)
        if len(idx) in done:  # a larger size capped at the pool: the same test again
            continue
        done.add(len(idx))
        result = _retrieval(sheet_all[idx], audio_all[idx])
        report["retrieval"][str(n)] = result
        say(
            f"retrieval, {len(idx)} candidates: MRR a2s {result['audio_to_sheet']['MRR']:.3f} "
            f"s2a {result['sheet_to_audio']['MRR']:.3f} (random {result['random']['MRR']:.4f})"
        )
    report["identification"] = _identification(model, pool, sheet_all, audio_all, settings, bf16)
    ident = report["identification"]
    say(
        f"piece identification, {ident['pieces']} pieces: Rk@1 audio-to-score "
        f"{ident['audio_to_score']['Rk@1']}, score-to-audio {ident['score_to_audio']['Rk@1']}"
    )
    report["tempo"] = {}
    if len(ratios) > 1:
        for ratio in ratios:
            tempo_pool = PairPool(
                test_pieces, pair_settings, keep_performance=lambda p, r=ratio: tempo_ratio(p) == r
            )
            idx = evenly_spaced(len(tempo_pool), settings.tempo_pairs)
            sheet, audio = embed_pairs(model, tempo_pool, idx, bfloat16=bf16)
            result = _retrieval(sheet, audio)
            report["tempo"][str(ratio)] = {
                "pairs": int(len(idx)),
                "audio_to_sheet_MRR": result["audio_to_sheet"]["MRR"],
                "sheet_to_audio_MRR": result["sheet_to_audio"]["MRR"],
                "audio_to_sheet_R@1": result["audio_to_sheet"]["R@1"],
            }
            say(f"tempo {ratio}: MRR a2s {result['audio_to_sheet']['MRR']:.3f}")
    out = Path(out_dir) if out_dir is not None else None
    report["attention"] = None
    if model.attention is not None:
        report["attention"] = _attention(model, pool, settings, out, bf16)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "evaluation.json") as tmp:
            Path(tmp).write_text(json.dumps(report, indent=2, default=float), encoding="utf-8")
        with atomic_path(out / "evaluation.md") as tmp:
            Path(tmp).write_text(format_report(report), encoding="utf-8")
    return report


def _row(name: str, m: dict[str, float]) -> str:
    return (
        f"| {name} | {m['R@1']:.2f} | {m['R@5']:.2f} | {m['R@25']:.2f} | {m['MRR']:.2f} "
        f"| {m['MR']:g} |"
    )


def format_report(report: dict[str, Any]) -> str:
    """Render an :func:`evaluate` result as Markdown (retrieval in the 2018 Table 3 layout)."""
    model = report["model"]
    lines = [
        f"# Evaluation: model {model['name']}, context {model['context_frames']} frames",
        "",
        f"{report['test_pairs']} test pairs from {len(report['test_pieces'])} pieces "
        f"(tempo ratio {report['reference_tempo']}).",
        "",
    ]
    for n, result in report["retrieval"].items():
        size = result["random"]["n"]
        lines += [
            f"## Snippet retrieval, {size} candidates (requested {n})",
            "",
            "| direction | R@1 | R@5 | R@25 | MRR | MR |",
            "| --- | --- | --- | --- | --- | --- |",
            _row("audio-to-sheet", result["audio_to_sheet"]),
            _row("sheet-to-audio", result["sheet_to_audio"]),
            _row("rand-bl", result["random"]),
            "",
        ]
    ident = report["identification"]
    lines += [
        f"## Piece identification, {ident['pieces']} pieces",
        "",
        "| direction | Rk@1 | Rk@5 | Rk@10 | >Rk@10 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, key in (("audio-to-score", "audio_to_score"), ("score-to-audio", "score_to_audio")):
        m = ident[key]
        lines.append(
            f"| {name} | {m['Rk@1']} ({m['R@1']:.2f}) | {m['Rk@5']} ({m['R@5']:.2f}) "
            f"| {m['Rk@10']} ({m['R@10']:.2f}) | {m['>Rk@10']} |"
        )
    lines.append("")
    if report["tempo"]:
        ratios = list(report["tempo"])
        lines += [
            "## Tempo robustness (MRR)",
            "",
            "| direction | " + " | ".join(f"ρ = {r}" for r in ratios) + " |",
            "| --- | " + " | ".join("---" for _ in ratios) + " |",
            "| audio-to-sheet | "
            + " | ".join(f"{report['tempo'][r]['audio_to_sheet_MRR']:.2f}" for r in ratios)
            + " |",
            "| sheet-to-audio | "
            + " | ".join(f"{report['tempo'][r]['sheet_to_audio_MRR']:.2f}" for r in ratios)
            + " |",
            "",
        ]
    if report.get("attention"):
        att = report["attention"]
        lines += [
            "## Attention",
            "",
            f"Mean entropy {att['mean_entropy']:.2f} nats (uniform: {att['max_entropy']:.2f}); "
            f"correlation of entropy with the onset count: {att['entropy_onset_correlation']:.2f} "
            f"over {att['pairs']} pairs.",
            "",
        ]
    return "\n".join(lines)
