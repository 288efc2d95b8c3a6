"""Facts pulled out of a build report's pieces.

One place for them: :func:`~msmd_builder.pipeline.report.write.write_report`
stores some in the summary, :mod:`~msmd_builder.pipeline.report.sections`
words them (and recomputes them from the pieces when a summary lacks them),
and the plots of :mod:`msmd_builder.outputs.report_html` draw them.  Every
function takes pieces as the report's JSON stores them (dicts of
:class:`~msmd_builder.pipeline.run.PieceOutcome` fields).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "TOP_COMPOSERS",
    "aligned_share",
    "alignment_of",
    "alignment_totals",
    "composer_counts",
    "composer_of",
    "failure_counts",
    "performance_totals",
    "performances_of",
    "stage_seconds",
]

#: Composers counted by name in :func:`composer_counts`; the rest are summed as "other".
TOP_COMPOSERS = 20


def composer_of(piece: Mapping[str, Any]) -> str:
    """Return a piece's composer: its ``details.composer``, else the id's first part."""
    composer = (piece.get("details") or {}).get("composer")
    if composer:
        return str(composer)
    return str(piece.get("piece_id", "")).split("__")[0] or "unknown"


def alignment_of(piece: Mapping[str, Any]) -> dict[str, Any]:
    """Alignment counts of a piece that reached the align stage, else an empty dict."""
    stats = (piece.get("details") or {}).get("alignment")
    return stats if isinstance(stats, dict) and piece.get("status") != "failed" else {}


def on_timeline(piece: Mapping[str, Any]) -> bool:
    """Return whether a built piece had its repeats unrolled on the shared timeline."""
    return piece.get("status") != "failed" and (piece.get("details") or {}).get("repeats") == (
        "timeline"
    )


def jump_readings_of(piece: Mapping[str, Any]) -> str:
    """Return how a built piece's written jumps were read by a rule ("" when none needed one)."""
    return str(alignment_of(piece).get("jump_readings") or "")


def aligned_share(stats: Mapping[str, Any]) -> float | None:
    """Percentage of sounding visible noteheads aligned, None without any."""
    sounding = stats.get("sounding_visible_noteheads") or 0
    if not sounding:
        return None
    return 100 * stats.get("aligned_sounding_visible_noteheads", 0) / sounding


def performances_of(pieces: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every performance row of the pieces that did not fail."""
    return [
        row
        for piece in pieces
        if piece.get("status") != "failed"
        for row in (piece.get("details") or {}).get("performances") or []
        if isinstance(row, dict)
    ]


def alignment_totals(pieces: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Sum the alignment counts of the pieces that reached the align stage."""
    totals: Counter[str] = Counter()
    for piece in pieces:
        stats = alignment_of(piece)
        if stats:
            totals["pieces"] += 1
            totals.update({k: v for k, v in stats.items() if isinstance(v, int)})
    return dict(totals)


def performance_totals(pieces: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the performances of the pieces that reached the perform stage."""
    rows = performances_of(pieces)
    if not rows:
        return {}
    seconds: Counter[str] = Counter()
    for piece in pieces:
        seconds.update((piece.get("details") or {}).get("perform_seconds", {}))
    checked = [r["onset_fraction"] for r in rows if r.get("onset_fraction") is not None]
    by_font: Counter[str] = Counter()
    synth_cost: dict[str, list[float]] = {}
    for r in rows:
        by_font[r["soundfont"]] += r["duration_sec"]
        timing = r.get("seconds") or {}
        if "synthesis" in timing and r["duration_sec"] > 0:
            minutes = r["duration_sec"] / 60
            synth_cost.setdefault(r["soundfont"], []).append(timing["synthesis"] / minutes)
            synth_cost.setdefault("(spectrogram)", []).append(timing["spectrogram"] / minutes)
    return {
        "pieces": sum(
            1
            for p in pieces
            if p.get("status") != "failed" and (p.get("details") or {}).get("performances")
        ),
        "performances": len(rows),
        "audio_hours": round(sum(r["duration_sec"] for r in rows) / 3600, 3),
        "audio_hours_per_soundfont": {k: round(v / 3600, 3) for k, v in sorted(by_font.items())},
        # Performances synthesized in this run only (cached ones carry no timing).
        "synthesis_sec_per_audio_min_median": {
            k: round(statistics.median(v), 3) for k, v in sorted(synth_cost.items())
        },
        "seconds": {k: round(v, 2) for k, v in sorted(seconds.items())},
        "onset_checks": len(checked),
        "onset_fraction_min": min(checked) if checked else None,
        "onset_fraction_median": statistics.median(checked) if checked else None,
        "onset_checks_below_98": sum(1 for f in checked if f < 0.98),
    }


def stage_seconds(
    summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]
) -> list[tuple[str, float, float]]:
    """``(stage, total, median per piece)`` in stage order: the summary's, else the pieces'."""
    from msmd_builder.stages import STAGE_NAMES

    per_stage: dict[str, list[float]] = {}
    for piece in pieces:
        for stage, sec in (piece.get("seconds") or {}).items():
            per_stage.setdefault(stage, []).append(float(sec))
    totals = dict(summary.get("stage_seconds_total") or {}) or {
        k: sum(v) for k, v in per_stage.items()
    }
    medians = dict(summary.get("stage_seconds_median") or {}) or {
        k: statistics.median(v) for k, v in per_stage.items()
    }
    order = {stage: i for i, stage in enumerate(STAGE_NAMES)}
    stages = sorted(totals, key=lambda s: (order.get(s, len(order)), s))
    return [(s, float(totals[s]), float(medians.get(s, 0.0))) for s in stages]


def failure_counts(
    summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Failed pieces per error class and per stage, most frequent first."""
    failed = [p for p in pieces if p.get("status") == "failed"]
    classes = Counter(summary.get("failure_classes") or {}) or Counter(
        str(p.get("error_class")) for p in failed
    )
    stages = Counter(str(p.get("stage")) for p in failed)
    return _ranked(classes), _ranked(stages)


def composer_counts(pieces: Sequence[Mapping[str, Any]]) -> list[tuple[str, Counter[str]]]:
    """Pieces per status of the :data:`TOP_COMPOSERS` largest composers, then of the rest."""
    by_composer: dict[str, Counter[str]] = {}
    for piece in pieces:
        by_composer.setdefault(composer_of(piece), Counter())[str(piece.get("status"))] += 1
    ranked = sorted(by_composer, key=lambda c: (-sum(by_composer[c].values()), c))
    shown, rest = ranked[:TOP_COMPOSERS], ranked[TOP_COMPOSERS:]
    counts = [(c, by_composer[c]) for c in shown]
    if rest:
        other: Counter[str] = Counter()
        for c in rest:
            other.update(by_composer[c])
        counts.append((f"other ({len(rest)} composers)", other))
    return counts


def _ranked(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
