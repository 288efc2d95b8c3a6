"""The sections of a build report, built once from its JSON document.

:func:`report_sections` turns a report document (``{"summary": {...},
"pieces": [...]}``, as :func:`~msmd_builder.pipeline.report.write.write_report`
writes it) into :class:`~msmd_builder.pipeline.report.model.Section` objects.
Both forms of the report are rendered from them, so they cannot drift apart:
``report.md`` (:func:`~msmd_builder.pipeline.report.markdown.render_markdown`)
and ``report.html`` (:func:`msmd_builder.outputs.report_html.write_report_html`,
which adds plots).

Every key a report may lack (``table1``, ``msmd_table1``, a piece's
``composer``, ``title``, ``alignment`` or ``performances``) is optional: the
section then says what is missing.  Rows are ordered by name or count, never
by the order of a JSON object, so a report reads the same whether it is
rendered while being written or after being read back.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from msmd_builder.pipeline.report.facts import (
    TOP_COMPOSERS,
    aligned_share,
    alignment_of,
    alignment_totals,
    composer_counts,
    composer_of,
    failure_counts,
    jump_readings_of,
    on_timeline,
    performance_totals,
    stage_seconds,
)
from msmd_builder.pipeline.report.model import (
    Cell,
    Column,
    Compared,
    Fact,
    Row,
    Section,
    Table,
    format_value,
)

__all__ = ["MESSAGE_CHARS", "TABLE1_COLUMNS", "report_sections"]

#: Characters of a failure message or fallback reason shown in a table.
MESSAGE_CHARS = 500
#: The columns of MSMD's Table 1, as keys of ``summary.table1[split][part]``.
TABLE1_COLUMNS = ("pieces", "pages", "noteheads", "events", "aligned_pairs")

_STATUSES = ("ok", "degraded", "failed")
_PARTS = ("train", "valid", "test")


def report_sections(document: Mapping[str, Any]) -> tuple[Section, ...]:
    """Build the sections of a report from its JSON document, in the order shown.

    Parameters
    ----------
    document : mapping
        ``{"summary": {...}, "pieces": [...]}``; both keys may be missing.

    Returns
    -------
    tuple of Section
        Summary, Table 1, aligned data, composers, performances, seconds per
        stage, failures, repeats on the shared timeline, jumps read by a rule,
        printed-order fallbacks, recordings, failed pieces, all pieces.
        Every section is always present; one with nothing to show says why in
        ``missing``.
    """
    summary: Mapping[str, Any] = document.get("summary") or {}
    pieces: list[Mapping[str, Any]] = list(document.get("pieces") or [])
    return (
        _summary(summary, pieces),
        _table1(summary),
        _aligned_data(summary, pieces),
        _composers(pieces),
        _performances(summary, pieces),
        _stage_seconds(summary, pieces),
        _failures(summary, pieces),
        _on_timeline(pieces),
        _jumps_read(pieces),
        _printed_order(pieces),
        _recordings(summary),
        _failed(pieces),
        _all_pieces(pieces),
    )


def _summary(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> Section:
    counts = Counter(summary.get("status_counts") or Counter(str(p.get("status")) for p in pieces))
    n = int(summary.get("pieces", len(pieces)))
    rendered = sum(
        1
        for p in pieces
        if (p.get("details") or {}).get("pdf_files") and (p.get("details") or {}).get("midi_files")
    )
    produced = counts.get("ok", 0) + counts.get("degraded", 0)
    return Section(
        "summary",
        "Summary",
        facts=(
            Fact("pieces", format_value(n)),
            Fact("status", _listing(sorted(counts.items()))),
            Fact("produced PDF and MIDI", f"{rendered} ({_percent(rendered, n)})"),
            Fact(
                "through every stage",
                f"{produced} ({_percent(produced, n)}), of which {counts.get('degraded', 0)} "
                "with LilyPond errors in the log",
            ),
            Fact("failed", format_value(counts.get("failed", 0))),
            Fact(
                "wall time",
                f"{format_value(summary.get('wall_seconds'))} s with "
                f"{format_value(summary.get('workers'))} worker(s) on "
                f"{format_value(summary.get('cpu_count'))} CPU(s)",
            ),
            Fact(
                "worker idle time (per-piece phase)",
                f"{format_value(summary.get('worker_idle_seconds'))} s",
            ),
            Fact(
                "LilyPond",
                f"{format_value(summary.get('lilypond_version'))}: median "
                f"{format_value(summary.get('lilypond_seconds_median'))} s, total "
                f"{format_value(summary.get('lilypond_seconds_total'))} s",
            ),
            Fact("sandbox", _listing(sorted((summary.get("sandbox") or {}).items())) or "-"),
            Fact(
                "syntax rules (files rewritten)",
                _listing(sorted((summary.get("syntax_rules") or {}).items())) or "none",
            ),
            Fact(
                "re-laid out (music past the page edge)",
                _listing(sorted((summary.get("relayouts") or {}).items())) or "none",
            ),
            Fact(
                "built after a LilyPond crash and another run",
                f"{format_value(summary.get('lilypond_crashes_retried', 0))} piece(s)",
            ),
            *(
                [Fact("warning", str(summary["sandbox_warning"]))]
                if summary.get("sandbox_warning")
                else []
            ),
        ),
    )


def _table1(summary: Mapping[str, Any]) -> Section:
    ours: Mapping[str, Any] = summary.get("table1") or {}
    msmd: Mapping[str, Any] = summary.get("msmd_table1") or {}
    title = "Dataset statistics (Table 1)"
    if not ours and not msmd:
        return Section(
            "table1",
            title,
            missing="This report has no split statistics (no table1): "
            "they are computed when splits are made.",
        )
    extra = sorted(
        {
            key
            for parts in ours.values()
            for row in parts.values()
            for key in row
            if key not in TABLE1_COLUMNS
        }
    )
    with_msmd = bool(msmd)
    columns = (
        Column("split"),
        Column("part"),
        *(Column(c.replace("_", " "), "number", compared=with_msmd) for c in TABLE1_COLUMNS),
        *(Column(c.replace("_", " "), "number") for c in extra),
    )
    rows = []
    for split in sorted({*ours, *msmd}):
        parts = dict(ours.get(split) or {})
        ref_parts = dict(msmd.get(split) or {})
        names = sorted({*parts, *ref_parts}, key=_part_order)
        if len(names) > 1 and "total" not in names:
            names.append("total")
            parts["total"] = _total(parts.values()) if parts else None
            ref_parts["total"] = _total(ref_parts.values()) if ref_parts else None
        for part in names:
            row, ref = parts.get(part) or {}, ref_parts.get(part) or {}
            cells: list[Cell] = [split, part]
            for column in TABLE1_COLUMNS:
                ours_value = row.get(column)
                cells.append(Compared(ours_value, ref.get(column)) if with_msmd else ours_value)
            cells += [row.get(column) for column in extra]
            rows.append(Row(tuple(cells), total=part == "total"))
    prose = (
        "Pieces, pages, noteheads, performed events and aligned notehead–event pairs per "
        "split and part"
        + (", with the numbers of MSMD (Dorfer et al. 2018, Table 1) beside ours." if msmd else ".")
    )
    table = Table(
        columns, tuple(rows), name="t1", reference="MSMD" if with_msmd else "", grouped=True
    )
    return Section("table1", title, prose=(prose,), tables=(table,))


def _part_order(part: str) -> tuple[int, str]:
    return (_PARTS.index(part) if part in _PARTS else len(_PARTS), part)


def _total(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Sum the integer columns of a split's parts."""
    total: Counter[str] = Counter()
    for row in rows:
        total.update({k: v for k, v in row.items() if isinstance(v, int)})
    return dict(total)


def _aligned_data(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> Section:
    totals = summary.get("alignment_totals") or alignment_totals(pieces)
    if not totals:
        return Section("alignment", "Aligned data", missing="No piece reached the align stage.")
    labels = ("pieces", "pages", "systems", "noteheads", "performed notes", "aligned pairs")
    keys = ("pieces", "pages", "systems", "noteheads", "performed_notes", "aligned_performed_notes")
    table = Table(
        tuple(Column(label, "number") for label in labels),
        (Row(tuple(totals.get(k, 0) for k in keys)),),
    )
    facts = [
        Fact(
            "sounding visible noteheads aligned",
            _percent(
                totals.get("aligned_sounding_visible_noteheads", 0),
                totals.get("sounding_visible_noteheads", 0),
                digits=2,
            ),
        ),
        Fact(
            "MIDI notes accounted for",
            _percent(totals.get("matched_midi_notes", 0), totals.get("midi_notes", 0), digits=2),
        ),
        Fact("pitch mismatches", format_value(totals.get("pitch_mismatches", 0))),
    ]
    stats = [alignment_of(p) for p in pieces]
    pages = [s["pages"] for s in stats if isinstance(s.get("pages"), int)]
    heads = [s["noteheads"] for s in stats if isinstance(s.get("noteheads"), int)]
    shares = [share for s in stats if (share := aligned_share(s)) is not None]
    if pages:
        facts.append(Fact("pages per piece", _spread(pages)))
    if heads:
        facts.append(Fact("noteheads per piece", _spread(heads)))
    if shares:
        complete = sum(1 for s in shares if s >= 100)
        facts.append(
            Fact(
                "sounding visible noteheads aligned per piece",
                f"median {statistics.median(shares):.2f} %, minimum {min(shares):.2f} %; "
                f"{complete} of {len(shares)} pieces complete",
            )
        )
    return Section(
        "alignment",
        "Aligned data",
        prose=(
            "Pages, systems and noteheads of the engraved scores, the notes they perform, "
            "and how completely noteheads and performed notes are linked.",
        ),
        facts=tuple(facts),
        tables=(table,),
    )


def _spread(values: Sequence[float]) -> str:
    return (
        f"median {format_value(statistics.median(values))}, "
        f"minimum {format_value(min(values))}, maximum {format_value(max(values))}"
    )


def _composers(pieces: Sequence[Mapping[str, Any]]) -> Section:
    if not pieces:
        return Section("composers", "Pieces per composer", missing="No pieces in this report.")
    columns = (
        Column("composer"),
        *(Column(status, "number") for status in _STATUSES),
        Column("pieces", "number"),
    )
    rows = tuple(
        Row((name, *(counts.get(s, 0) for s in _STATUSES), sum(counts.values())))
        for name, counts in composer_counts(pieces)
    )
    return Section(
        "composers",
        "Pieces per composer",
        prose=(
            f"The {TOP_COMPOSERS} composers with the most pieces by name, the rest together; "
            "a piece's composer is the one recorded for it, else the first part of its id.",
        ),
        tables=(Table(columns, rows),),
    )


def _performances(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> Section:
    perf = summary.get("performance_totals") or performance_totals(pieces)
    if not perf:
        return Section(
            "performances",
            "Performances",
            missing="This report has no performances (the build stopped before the perform stage).",
        )
    facts = [
        Fact(
            "performances",
            f"{format_value(perf.get('performances'))} of {format_value(perf.get('pieces'))} "
            f"pieces, {format_value(perf.get('audio_hours'))} hours of audio",
        )
    ]
    if perf.get("audio_hours_per_soundfont"):
        facts.append(
            Fact(
                "hours of audio per soundfont", _listing(perf["audio_hours_per_soundfont"].items())
            )
        )
    if perf.get("synthesis_sec_per_audio_min_median"):
        facts.append(
            Fact(
                "seconds of synthesis per minute of audio (median)",
                _listing(perf["synthesis_sec_per_audio_min_median"].items()),
            )
        )
    if perf.get("seconds"):
        facts.append(Fact("seconds", _listing(perf["seconds"].items())))
    if perf.get("onset_checks"):
        facts.append(
            Fact(
                "onset checks",
                f"{format_value(perf.get('onset_checks'))}, median fraction within one frame "
                f"{format_value(perf.get('onset_fraction_median'))}, minimum "
                f"{format_value(perf.get('onset_fraction_min'))}, "
                f"{format_value(perf.get('onset_checks_below_98'))} below 0.98",
            )
        )
    return Section("performances", "Performances", facts=tuple(facts))


def _stage_seconds(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> Section:
    timings = stage_seconds(summary, pieces)
    if not timings:
        return Section(
            "stage-seconds", "Seconds per stage", missing="This report has no stage timings."
        )
    columns = (Column("stage"), Column("total", "number"), Column("median", "number"))
    rows = tuple(
        Row((stage, round(total, 2), round(median, 3))) for stage, total, median in timings
    )
    return Section(
        "stage-seconds",
        "Seconds per stage",
        prose=("Wall-clock seconds of each stage: over all pieces, and the median per piece.",),
        tables=(Table(columns, rows),),
    )


def _failures(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> Section:
    classes, stages = failure_counts(summary, pieces)
    if not classes:
        return Section("failures", "Failures", missing="No piece failed.")
    tables = [Table((Column("class"), Column("pieces", "number")), tuple(map(Row, classes)))]
    if stages:
        tables.append(Table((Column("stage"), Column("pieces", "number")), tuple(map(Row, stages))))
    return Section(
        "failures",
        "Failures",
        prose=("Failed pieces by error class and by the stage they failed in.",),
        tables=tuple(tables),
    )


def _built(pieces: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(
        (p for p in pieces if p.get("status") != "failed"), key=lambda p: str(p.get("piece_id"))
    )


def _on_timeline(pieces: Sequence[Mapping[str, Any]]) -> Section:
    timeline = [p for p in _built(pieces) if on_timeline(p)]
    title = f"Repeats on the shared timeline ({len(timeline)})"
    if not timeline:
        return Section("timeline", title, missing="No piece writes a repeat in some voices only.")
    rows = tuple(
        Row(
            (
                str(p.get("piece_id", "")),
                str(p["details"].get("repeats_timeline", ""))[:MESSAGE_CHARS],
            )
        )
        for p in timeline
    )
    return Section(
        "timeline",
        title,
        prose=(
            "A repeat is written in some voices only; every voice is played by the score's "
            "repeat structure (docs/alignment.md).",
        ),
        tables=(Table((Column("piece"), Column("where", "message")), rows),),
    )


def _jumps_read(pieces: Sequence[Mapping[str, Any]]) -> Section:
    read = [p for p in _built(pieces) if jump_readings_of(p)]
    title = f"Jumps read by a rule ({len(read)})"
    if not read:
        return Section("jump-readings", title, missing="No written jump needed a reading rule.")
    rows = tuple(
        Row(
            (
                str(p.get("piece_id", "")),
                str(p["details"]["alignment"].get("jumps", "")),
                jump_readings_of(p)[:MESSAGE_CHARS],
            )
        )
        for p in read
    )
    return Section(
        "jump-readings",
        title,
        prose=("Written jumps whose text reads more than one way, and the reading taken.",),
        tables=(Table((Column("piece"), Column("jumps"), Column("reading", "message")), rows),),
    )


def _printed_order(pieces: Sequence[Mapping[str, Any]]) -> Section:
    folded = [
        p
        for p in pieces
        if p.get("status") != "failed" and "repeats_fallback" in (p.get("details") or {})
    ]
    title = f"Built in printed order ({len(folded)})"
    if not folded:
        return Section(
            "printed-order", title, missing="Every piece is performed in its unfolded order."
        )
    columns = (Column("piece"), Column("class"), Column("reason", "message"))
    rows = tuple(
        Row(
            (
                str(p.get("piece_id", "")),
                str(p["details"].get("repeats_fallback_class", "")),
                str(p["details"]["repeats_fallback"])[:MESSAGE_CHARS],
            )
        )
        for p in sorted(folded, key=lambda p: str(p.get("piece_id")))
    )
    return Section(
        "printed-order",
        title,
        prose=(
            "Their performance could not be built in playing order (reading-order failure, "
            "repeats or a jump that do not read into one playing order); the last resort: they "
            "are performed as printed.",
        ),
        tables=(Table(columns, rows),),
    )


def _recordings(summary: Mapping[str, Any]) -> Section:
    rows_in: list[Mapping[str, Any]] = list(summary.get("recordings") or [])
    aligned = int(summary.get("recordings_aligned", sum(r.get("status") == "ok" for r in rows_in)))
    title = f"Recordings ({aligned} of {len(rows_in)} aligned)"
    if not rows_in:
        return Section("recordings", title, missing="No recording was aligned in this build.")
    columns = (
        Column("piece"),
        Column("file"),
        Column("role"),
        Column("playing order"),
        Column("cost", "number"),
        Column("other orders"),
        Column("confidence", "number"),
        Column("failure", "message"),
    )
    rows = []
    for r in sorted(rows_in, key=lambda r: (str(r.get("piece_id") or ""), str(r.get("file")))):
        head = (str(r.get("piece_id") or "?"), str(r.get("file", "")), str(r.get("role", "")))
        if r.get("status") == "ok":
            costs: Mapping[str, float] = r.get("costs") or {}
            others = ", ".join(
                f"{name} {float(cost):.3f}"
                for name, cost in sorted(costs.items())
                if name != r.get("playing_order")
            )
            cells: tuple[Any, ...] = (
                str(r.get("playing_order", "")),
                f"{float(r.get('cost', float('nan'))):.3f}",
                others or "-",
                f"{float(r.get('confidence_median', float('nan'))):.2f}",
                "",
            )
        else:
            message = f"{r.get('error_class', '')}: {r.get('message', '')}"
            cells = ("", None, "", None, message[:MESSAGE_CHARS])
        rows.append(Row(head + cells))
    return Section(
        "recordings",
        title,
        prose=(
            "Recordings aligned to their pieces and added as performances (docs/recordings.md). "
            "Cost: the playing order's normalized alignment cost (0 = same music; above the "
            "threshold a recording is refused); confidence: the median of its notes' (0 to 1).",
        ),
        tables=(Table(columns, tuple(rows)),),
    )


def _failed(pieces: Sequence[Mapping[str, Any]]) -> Section:
    failed = [p for p in pieces if p.get("status") == "failed"]
    title = f"Failed pieces ({len(failed)})"
    if not failed:
        return Section("failed", title, missing="No piece failed.")
    columns = (Column("piece"), Column("stage"), Column("class"), Column("message", "message"))
    rows = tuple(
        Row(
            (
                str(p.get("piece_id", "")),
                str(p.get("stage", "")),
                str(p.get("error_class", "")),
                str(p.get("message", ""))[:MESSAGE_CHARS],
            )
        )
        for p in sorted(failed, key=lambda p: (str(p.get("error_class")), str(p.get("piece_id"))))
    )
    return Section("failed", title, tables=(Table(columns, rows),))


def _all_pieces(pieces: Sequence[Mapping[str, Any]]) -> Section:
    title = f"All pieces ({len(pieces)})"
    if not pieces:
        return Section("pieces", title, missing="No pieces in this report.")
    columns = (
        Column("piece"),
        Column("composer"),
        Column("title"),
        Column("status", "status"),
        Column("pages", "number"),
        Column("noteheads", "number"),
        Column("aligned", "number"),
        Column("performances", "number"),
        Column("seconds", "number"),
    )
    rows = []
    for p in pieces:
        details = p.get("details") or {}
        stats = alignment_of(p)
        share = aligned_share(stats)
        seconds = sum(float(v) for v in (p.get("seconds") or {}).values())
        rows.append(
            Row(
                (
                    str(p.get("piece_id", "")),
                    composer_of(p),
                    str(details.get("title") or ""),
                    str(p.get("status", "")),
                    stats.get("pages"),
                    stats.get("noteheads"),
                    None if share is None else f"{share:.1f} %",
                    len(details.get("performances") or []),
                    round(seconds, 2),
                )
            )
        )
    return Section("pieces", title, tables=(Table(columns, tuple(rows)),), collapsed=True)


def _percent(part: float, whole: float, *, digits: int = 1) -> str:
    return f"{100 * part / (whole or 1):.{digits}f} %"


def _listing(pairs: Iterable[tuple[str, Any]]) -> str:
    return ", ".join(f"{k} {format_value(v)}" for k, v in pairs)
