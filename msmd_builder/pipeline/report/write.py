"""Write a build report: ``report.json`` (every outcome and the summary) and ``report.md``."""

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
from msmd_builder.pipeline.report.facts import (
    alignment_totals,
    jump_readings_of,
    on_timeline,
    performance_totals,
)
from msmd_builder.pipeline.report.markdown import render_markdown
from msmd_builder.pipeline.report.sections import report_sections
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
    pieces_wall_seconds: float | None = None,
) -> tuple[Path, Path]:
    """Write a build report as JSON (all facts) and Markdown (for people).

    ``extra_summary`` adds facts of later, whole-dataset steps (splits,
    shards, their Table-1 statistics, the recordings aligned) to the summary.
    ``pieces_wall_seconds`` is the wall time of the per-piece phase (default
    ``wall_seconds``); the workers' idle time is ``workers`` times it less the
    seconds the pieces' stages took.

    Returns
    -------
    json_path, markdown_path : Path
    """
    out = Path(out_dir)
    pieces = [asdict(o) for o in outcomes]
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
        "alignment_totals": alignment_totals(pieces),
        "performance_totals": performance_totals(pieces),
        "printed_order_fallbacks": dict(
            Counter(
                o.details["repeats_fallback_class"]
                for o in outcomes
                if o.status != "failed" and "repeats_fallback_class" in o.details
            )
        ),
        "worker_idle_seconds": _idle_seconds(
            outcomes, workers, wall_seconds if pieces_wall_seconds is None else pieces_wall_seconds
        ),
        "repeats_on_timeline": sum(1 for p in pieces if on_timeline(p)),
        "jumps_read_by_rule": sum(1 for p in pieces if jump_readings_of(p)),
    }
    summary.update(_source_facts(outcomes))
    if extra_summary:
        summary.update(extra_summary)
    summary.update(_recording_facts(summary.get("recordings") or []))
    document = {"summary": summary, "pieces": pieces}
    json_path = out / f"{name}.json"
    md_path = out / f"{name}.md"
    atomic_write_json(json_path, document)
    markdown = render_markdown(report_sections(document), title or f"Build report: {name}")
    atomic_write_text(md_path, markdown)
    return json_path, md_path


def _idle_seconds(outcomes: Sequence[PieceOutcome], workers: int, wall: float) -> float:
    """Worker seconds of the per-piece phase in which no stage of any piece ran."""
    busy = sum(sum(o.seconds.values()) for o in outcomes)
    return round(max(workers * wall - busy, 0.0), 2)


def load_report(path: str | Path) -> dict:
    """Read a JSON report written by :func:`write_report`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _source_facts(outcomes: Sequence[PieceOutcome]) -> dict[str, Any]:
    """How the sources were confined, upgraded and laid out.

    ``sandbox``: pieces per confinement of their LilyPond run (``bwrap``,
    ``off``, ``unavailable``), with ``sandbox_warning`` when ``--sandbox auto``
    found no working bubblewrap; ``syntax_rules``: per syntax rule, the number
    of distinct source files it rewrote; ``relayouts``: pieces laid out again
    because their music ran off the page, per re-layout;
    ``lilypond_crashes_retried``: pieces that built after their LilyPond run
    crashed and was run again (one that crashed every time fails as ``crash``).
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
        "lilypond_crashes_retried": sum(
            1 for o in outcomes if o.details.get("lilypond_crashes_retried")
        ),
    }
    if sandbox.get("unavailable"):
        facts["sandbox_warning"] = (
            f"{sandbox['unavailable']} piece(s) rendered without the sandbox: "
            f"{sandbox_problem() or 'bubblewrap did not work'}; LilyPond ran their Scheme "
            "with the build's own rights (see docs/security.md)"
        )
    return facts


def _recording_facts(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How many of the build's recordings were aligned, and why the others were not.

    ``rows`` is the summary's ``recordings`` (one per recording, from
    :func:`~msmd_builder.pipeline.recordings.align_dataset_recordings`); none:
    no facts (a build without recordings).
    """
    if not rows:
        return {}
    return {
        "recordings_aligned": sum(1 for row in rows if row.get("status") == "ok"),
        "recording_failures": dict(
            sorted(
                Counter(
                    str(row.get("error_class", "")) for row in rows if row.get("status") != "ok"
                ).items()
            )
        ),
    }
