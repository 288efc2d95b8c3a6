"""The build report: ``report.json`` (every outcome and the summary) and ``report.md``."""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from msmd_builder.core.cache import atomic_write_json, atomic_write_text
from msmd_builder.lilypond.tools import lilypond_version
from msmd_builder.pipeline.run import PieceOutcome

__all__ = ["write_report", "load_report"]


def write_report(
    outcomes: Sequence[PieceOutcome],
    *,
    out_dir: str | Path,
    name: str,
    wall_seconds: float,
    workers: int,
    extra_summary: dict[str, Any] | None = None,
    title: str | None = None,
) -> tuple[Path, Path]:
    """Write a build report as JSON (all facts) and Markdown (for people).

    ``extra_summary`` adds facts of later, whole-dataset steps (splits,
    shards, their Table-1 statistics) to the summary.

    Returns
    -------
    json_path, markdown_path : Path
    """
    out = Path(out_dir)
    counts = Counter(o.status for o in outcomes)
    failures = Counter(o.error_class for o in outcomes if o.status == "failed")
    stage_seconds: dict[str, list[float]] = {}
    for outcome in outcomes:
        for stage, sec in outcome.seconds.items():
            stage_seconds.setdefault(stage, []).append(sec)
    lilypond_seconds = [
        float(o.details["lilypond_seconds"]) for o in outcomes if "lilypond_seconds" in o.details
    ]
    summary = {
        "pieces": len(outcomes),
        "status_counts": dict(counts),
        "failure_classes": dict(failures),
        "wall_seconds": round(wall_seconds, 2),
        "workers": workers,
        "stage_seconds_total": {k: round(sum(v), 2) for k, v in stage_seconds.items()},
        "stage_seconds_median": {
            k: round(statistics.median(v), 3) for k, v in stage_seconds.items()
        },
        "lilypond_seconds_median": round(statistics.median(lilypond_seconds), 3)
        if lilypond_seconds
        else None,
        "lilypond_seconds_total": round(sum(lilypond_seconds), 2),
        "lilypond_version": lilypond_version(),
        "cpu_count": os.cpu_count(),
        "alignment_totals": _alignment_totals(outcomes),
        "performance_totals": _performance_totals(outcomes),
        "printed_order_fallbacks": dict(
            Counter(
                o.details["repeats_fallback_class"]
                for o in outcomes
                if o.status != "failed" and "repeats_fallback_class" in o.details
            )
        ),
    }
    summary.update(_source_facts(outcomes))
    if extra_summary:
        summary.update(extra_summary)
    document = {"summary": summary, "pieces": [asdict(o) for o in outcomes]}
    json_path = out / f"{name}.json"
    md_path = out / f"{name}.md"
    atomic_write_json(json_path, document)
    atomic_write_text(md_path, _markdown(summary, outcomes, title or f"Build report: {name}"))
    return json_path, md_path


def _source_facts(outcomes: Sequence[PieceOutcome]) -> dict[str, Any]:
    """How the sources were confined, upgraded and laid out.

    ``sandbox``: pieces per confinement of their LilyPond run (``bwrap``,
    ``off``, ``unavailable``), with ``sandbox_warning`` when ``--sandbox auto``
    found no working bubblewrap; ``syntax_rules``: per syntax rule, the number
    of distinct source files it rewrote; ``relayouts``: pieces laid out again
    because their music ran off the page, per re-layout.
    """
    from msmd_builder.lilypond.sandbox import sandbox_problem

    sandbox = Counter(str(o.details["sandbox"]) for o in outcomes if "sandbox" in o.details)
    rewritten: dict[str, set[str]] = {}
    for outcome in outcomes:
        rules = outcome.details.get("syntax_rules") or {}
        for rule, files in rules.items():  # type: ignore[union-attr]
            rewritten.setdefault(rule, set()).update(files)
    facts: dict[str, Any] = {
        "sandbox": dict(sandbox),
        "syntax_rules": {rule: len(files) for rule, files in sorted(rewritten.items())},
        "relayouts": dict(
            Counter(str(o.details["relayout"]) for o in outcomes if "relayout" in o.details)
        ),
    }
    if sandbox.get("unavailable"):
        facts["sandbox_warning"] = (
            f"{sandbox['unavailable']} piece(s) rendered without the sandbox: "
            f"{sandbox_problem() or 'bubblewrap did not work'}; LilyPond ran their Scheme "
            "with the build's own rights (see docs/security.md)"
        )
    return facts


def _alignment_totals(outcomes: Sequence[PieceOutcome]) -> dict[str, int]:
    """Sum the alignment counts of the pieces that reached the align stage."""
    totals: Counter[str] = Counter()
    for outcome in outcomes:
        stats = outcome.details.get("alignment")
        if outcome.status != "failed" and isinstance(stats, dict):
            totals["pieces"] += 1
            totals.update({k: v for k, v in stats.items() if isinstance(v, int)})
    return dict(totals)


def _performance_totals(outcomes: Sequence[PieceOutcome]) -> dict[str, Any]:
    """Sum the performances of the pieces that reached the perform stage."""
    rows = [
        row
        for o in outcomes
        if o.status != "failed"
        for row in o.details.get("performances", [])  # type: ignore[union-attr]
    ]
    if not rows:
        return {}
    seconds: Counter[str] = Counter()
    for o in outcomes:
        seconds.update(o.details.get("perform_seconds", {}))  # type: ignore[arg-type]
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
            1 for o in outcomes if o.status != "failed" and o.details.get("performances")
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


def _markdown(summary: dict, outcomes: Sequence[PieceOutcome], title: str) -> str:
    n = summary["pieces"] or 1
    produced = summary["status_counts"].get("ok", 0) + summary["status_counts"].get("degraded", 0)
    rendered = sum(
        1 for o in outcomes if o.details.get("pdf_files") and o.details.get("midi_files")
    )
    lines = [
        f"# {title}",
        "",
        f"- pieces: {summary['pieces']}",
        f"- produced PDF and MIDI: {rendered} ({100 * rendered / n:.1f} %)",
        f"- through every stage: {produced} ({100 * produced / n:.1f} %), of which "
        f"{summary['status_counts'].get('degraded', 0)} with LilyPond errors in the log",
        f"- failed: {summary['status_counts'].get('failed', 0)}",
        f"- wall time: {summary['wall_seconds']} s with {summary['workers']} worker(s)",
        f"- LilyPond {summary['lilypond_version']}: median {summary['lilypond_seconds_median']} s, "
        f"total {summary['lilypond_seconds_total']} s",
        f"- sandbox: {', '.join(f'{k} {v}' for k, v in summary['sandbox'].items()) or '-'}",
        f"- syntax rules (files rewritten): "
        f"{', '.join(f'{k} {v}' for k, v in summary['syntax_rules'].items()) or 'none'}",
        f"- re-laid out (music past the page edge): "
        f"{', '.join(f'{k} {v}' for k, v in summary['relayouts'].items()) or 'none'}",
        *([f"- **warning**: {summary['sandbox_warning']}"] if "sandbox_warning" in summary else []),
        "",
        "## Seconds per stage",
        "",
        "| stage | total | median |",
        "| --- | ---: | ---: |",
    ]
    for stage, total in summary["stage_seconds_total"].items():
        lines.append(f"| {stage} | {total} | {summary['stage_seconds_median'][stage]} |")
    totals = summary.get("alignment_totals") or {}
    if totals:
        sounding = totals.get("sounding_visible_noteheads", 0) or 1
        midi = totals.get("midi_notes", 0) or 1
        lines += [
            "",
            "## Aligned data",
            "",
            "| pieces | pages | systems | noteheads | performed notes | aligned pairs |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {totals.get('pieces', 0)} | {totals.get('pages', 0)} | {totals.get('systems', 0)} "
            f"| {totals.get('noteheads', 0)} | {totals.get('performed_notes', 0)} "
            f"| {totals.get('aligned_performed_notes', 0)} |",
            "",
            f"- sounding visible noteheads aligned: "
            f"{100 * totals.get('aligned_sounding_visible_noteheads', 0) / sounding:.2f} %",
            f"- MIDI notes accounted for: {100 * totals.get('matched_midi_notes', 0) / midi:.2f} %",
            f"- pitch mismatches: {totals.get('pitch_mismatches', 0)}",
        ]
    perf = summary.get("performance_totals") or {}
    if perf:
        lines += [
            "",
            "## Performances",
            "",
            f"- {perf['performances']} performances of {perf['pieces']} pieces, "
            f"{perf['audio_hours']} hours of audio",
            "- seconds: " + ", ".join(f"{k} {v}" for k, v in perf["seconds"].items()),
            f"- onset checks: {perf['onset_checks']}, median fraction within one frame "
            f"{perf['onset_fraction_median']}, minimum {perf['onset_fraction_min']}, "
            f"{perf['onset_checks_below_98']} below 0.98",
        ]
    msmd = summary.get("msmd_table1") or {}
    columns = ("pieces", "pages", "noteheads", "events", "aligned_pairs")
    for split, parts in (summary.get("table1") or {}).items():
        reference = msmd.get(split, {})
        lines += [
            "",
            f"## Split {split}" + (" (MSMD's Table 1 in parentheses)" if reference else ""),
            "",
            "| part | pieces | pages | noteheads | events | aligned pairs |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for part, row in parts.items():
            ref = reference.get(part, {})
            cells = [f"{row.get(c, 0):,}" + (f" ({ref[c]:,})" if c in ref else "") for c in columns]
            lines.append(f"| {part} | " + " | ".join(cells) + " |")
    lines += ["", "## Failure classes", "", "| class | pieces |", "| --- | ---: |"]
    for cls, count in sorted(summary["failure_classes"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {cls} | {count} |")
    folded = [o for o in outcomes if o.status != "failed" and "repeats_fallback" in o.details]
    if folded:
        lines += [
            "",
            "## Built in printed order",
            "",
            "Their unfolded performance could not be built (reading-order failure, or a",
            "jump that does not read into one playing order); they are performed as printed.",
            "",
            "| piece | class | reason |",
            "| --- | --- | --- |",
        ]
        for o in folded:
            message = str(o.details["repeats_fallback"]).replace("|", "\\|").replace("\n", " ")
            cls = o.details.get("repeats_fallback_class", "")
            lines.append(f"| {o.piece_id} | {cls} | {message[:200]} |")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines += ["", "## Failed pieces", "", "| piece | stage | class | message |"]
        lines.append("| --- | --- | --- | --- |")
        for o in failed:
            message = o.message.replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| {o.piece_id} | {o.stage} | {o.error_class} | {message} |")
    return "\n".join(lines) + "\n"


def load_report(path: str | Path) -> dict:
    """Read a JSON report written by :func:`write_report`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
