"""The report's sections, built once from a report document, and their Markdown form."""

from __future__ import annotations

import json

from msmd_builder.pipeline.report.facts import composer_counts, stage_seconds
from msmd_builder.pipeline.report.markdown import render_markdown
from msmd_builder.pipeline.report.model import Column, Compared, Row, Table, format_value
from msmd_builder.pipeline.report.sections import report_sections

SECTION_IDS = [
    "summary",
    "table1",
    "alignment",
    "composers",
    "performances",
    "stage-seconds",
    "failures",
    "timeline",
    "jump-readings",
    "printed-order",
    "recordings",
    "failed",
    "pieces",
]


def _piece(piece_id, status="ok", **details):
    return {
        "piece_id": piece_id,
        "status": status,
        "stage": "render" if status == "failed" else "align",
        "error_class": "lilypond" if status == "failed" else "",
        "message": "syntax error at <c e g> | line 3\nand more" if status == "failed" else "",
        "seconds": {"render": 2.5, "normalize": 0.5},
        "details": details,
    }


def _document():
    """Two aligned pieces (one performed as printed), one failure, Table 1 beside MSMD's."""
    stats = {
        "pages": 2,
        "systems": 5,
        "noteheads": 300,
        "performed_notes": 310,
        "aligned_performed_notes": 310,
        "sounding_visible_noteheads": 200,
        "aligned_sounding_visible_noteheads": 199,
        "midi_notes": 300,
        "matched_midi_notes": 300,
    }
    return {
        "summary": {
            "pieces": 3,
            "status_counts": {"ok": 2, "failed": 1},
            "failure_classes": {"lilypond": 1},
            "wall_seconds": 12.34,
            "workers": 2,
            "worker_idle_seconds": 15.7,
            "cpu_count": 4,
            "lilypond_version": "2.25.12",
            "lilypond_seconds_median": 2.5,
            "lilypond_seconds_total": 7.5,
            "table1": {
                "all": {
                    "train": {
                        "pieces": 1,
                        "pages": 2,
                        "noteheads": 300,
                        "events": 310,
                        "aligned_pairs": 310,
                    },
                    "test": {
                        "pieces": 1,
                        "pages": 1,
                        "noteheads": 1200,
                        "events": 1000,
                        "aligned_pairs": 990,
                    },
                }
            },
            "msmd_table1": {"all": {"train": {"pieces": 360, "noteheads": 316038}}},
        },
        "pieces": [
            _piece("BachJS__A__one", pdf_files=["a.pdf"], midi_files=["a.mid"], alignment=stats),
            _piece(
                "BachJS__B__two",
                alignment={**stats, "pages": 4, "aligned_sounding_visible_noteheads": 200},
                repeats_fallback="Dal Segno with 2 segno signs | cannot unroll",
                repeats_fallback_class="not-unrollable",
            ),
            _piece("MozartWA__C__three", "failed", composer="Mozart, W. A."),
        ],
    }


def test_every_section_is_there_in_order_and_says_what_is_missing():
    sections = report_sections(_document())
    assert [s.id for s in sections] == SECTION_IDS
    by_id = {s.id: s for s in sections}
    assert by_id["performances"].missing.startswith("This report has no performances")
    assert by_id["performances"].facts == by_id["performances"].tables == ()
    assert by_id["pieces"].collapsed and by_id["pieces"].title == "All pieces (3)"
    # An empty report still has every section, each saying why it is empty.
    empty = report_sections({})
    assert [s.id for s in empty] == SECTION_IDS
    assert all(s.missing for s in empty if s.id != "summary")
    assert report_sections({"summary": {}, "pieces": []}) == empty


def test_facts_and_tables_of_the_sections():
    by_id = {s.id: s for s in report_sections(_document())}
    summary = {f.label: f.value for f in by_id["summary"].facts}
    assert summary == {
        "pieces": "3",
        "status": "failed 1, ok 2",
        "produced PDF and MIDI": "1 (33.3 %)",
        "through every stage": "2 (66.7 %), of which 0 with LilyPond errors in the log",
        "failed": "1",
        "wall time": "12.3 s with 2 worker(s) on 4 CPU(s)",
        "worker idle time (per-piece phase)": "15.7 s",
        "LilyPond": "2.25.12: median 2.5 s, total 7.5 s",
        "sandbox": "-",
        "syntax rules (files rewritten)": "none",
        "re-laid out (music past the page edge)": "none",
        "built after a LilyPond crash and another run": "0 piece(s)",
    }
    aligned = {f.label: f.value for f in by_id["alignment"].facts}
    # Totals recomputed from the pieces when the summary has none: 399 of 400 heads.
    assert aligned["sounding visible noteheads aligned"] == "99.75 %"
    assert aligned["pages per piece"] == "median 3, minimum 2, maximum 4"
    assert aligned["sounding visible noteheads aligned per piece"] == (
        "median 99.75 %, minimum 99.50 %; 1 of 2 pieces complete"
    )
    (totals,) = by_id["alignment"].tables
    assert totals.rows == (Row((2, 6, 10, 600, 620, 620)),)

    (table1,) = by_id["table1"].tables
    assert table1.name == "t1" and table1.reference == "MSMD" and table1.grouped
    assert [c.label for c in table1.columns if c.compared] == [
        "pieces",
        "pages",
        "noteheads",
        "events",
        "aligned pairs",
    ]
    assert [row.cells[:3] for row in table1.rows] == [
        ("all", "train", Compared(1, 360)),
        ("all", "test", Compared(1, None)),
        ("all", "total", Compared(2, 360)),
    ]
    assert [row.total for row in table1.rows] == [False, False, True]
    assert table1.rows[-1].cells[4] == Compared(1500, 316038)
    assert table1.group_spans() == (3, 0, 0)

    (folded,) = by_id["printed-order"].tables
    assert folded.rows == (
        Row(
            (
                "BachJS__B__two",
                "not-unrollable",
                "Dal Segno with 2 segno signs | cannot unroll",
            )
        ),
    )
    (failed,) = by_id["failed"].tables
    assert failed.rows[0].cells[:3] == ("MozartWA__C__three", "render", "lilypond")
    classes, stages = by_id["failures"].tables
    assert classes.rows == (Row(("lilypond", 1)),) and stages.rows == (Row(("render", 1)),)
    (composers,) = by_id["composers"].tables
    assert composers.rows == (
        Row(("BachJS", 2, 0, 0, 2)),
        Row(("Mozart, W. A.", 0, 0, 1, 1)),
    )
    (timings,) = by_id["stage-seconds"].tables
    assert timings.rows == (Row(("normalize", 1.5, 0.5)), Row(("render", 7.5, 2.5)))


def test_markdown_shows_every_section_fact_and_row():
    text = render_markdown(report_sections(_document()), "Test report")
    assert text.startswith("# Test report\n\n## Summary\n\n- pieces: 3\n")
    titles = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert titles == [s.title for s in report_sections(_document())]
    assert "- produced PDF and MIDI: 1 (33.3 %)\n" in text
    # Ours with MSMD's in parentheses, the split named once, the total in bold.
    assert "| all | train | 1 (360) | 2 (–) | 300 (316,038) | 310 (–) | 310 (–) |\n" in text
    assert "|  | test | 1 (–) | 1 (–) | 1,200 (–) |" in text
    assert "|  | **total** | **2 (360)** | **3 (–)** | **1,500 (316,038)** |" in text
    assert "In parentheses: MSMD's figures." in text
    # Pipes, newlines and chords in messages cannot break a table row.
    assert (
        "| MozartWA__C__three | render | lilypond | syntax error at \\<c e g> \\| line 3 and more |"
        in text
    )
    assert (
        "| BachJS__B__two | not-unrollable | Dal Segno with 2 segno signs \\| cannot unroll |"
        in text
    )
    assert "*This report has no performances (the build stopped before the perform stage).*" in text
    assert "| stage | total | median |\n| --- | ---: | ---: |\n| normalize | 1.5 | 0.5 |" in text


def test_recordings_section_lists_each_recording_by_piece_and_file():
    document = _document()
    assert report_sections(document)[-3].missing == "No recording was aligned in this build."
    document["summary"]["recordings"] = [
        {
            "piece_id": "BachJS__B__two",
            "file": "live.flac",
            "role": "test",
            "status": "ok",
            "playing_order": "all repeats",
            "cost": 0.1234,
            "costs": {"no repeats": 0.4, "all repeats": 0.1234},
            "confidence_median": 0.876,
        },
        {
            "piece_id": "BachJS__A__one",
            "file": "noise.wav",
            "role": "test",
            "status": "failed",
            "error_class": "recording-silent",
            "message": "no sound | at all",
        },
    ]
    by_id = {s.id: s for s in report_sections(document)}
    section = by_id["recordings"]
    assert section.title == "Recordings (1 of 2 aligned)" and not section.missing
    (table,) = section.tables
    assert [row.cells for row in table.rows] == [
        (
            "BachJS__A__one",
            "noise.wav",
            "test",
            "",
            None,
            "",
            None,
            "recording-silent: no sound | at all",
        ),
        (
            "BachJS__B__two",
            "live.flac",
            "test",
            "all repeats",
            "0.123",
            "no repeats 0.400",
            "0.88",
            "",
        ),
    ]
    text = render_markdown(report_sections(document), "Test report")
    assert "## Recordings (1 of 2 aligned)" in text
    failed_row = "| BachJS__A__one | noise.wav | test |  | – |  | – | recording-silent: "
    assert failed_row + "no sound \\| at all |" in text


def test_json_order_does_not_change_the_report():
    document = _document()
    document["summary"]["stage_seconds_total"] = {"render": 7.5, "normalize": 1.5}
    document["summary"]["stage_seconds_median"] = {"render": 2.5, "normalize": 0.5}
    reread = json.loads(json.dumps(document, sort_keys=True))
    assert report_sections(reread) == report_sections(document)
    assert [s for s, _, _ in stage_seconds(reread["summary"], [])] == ["normalize", "render"]


def test_values_and_composer_ranking():
    assert [format_value(v) for v in (None, True, 1234567, 0.012345, 12345.6, "x")] == [
        "–",
        "True",
        "1,234,567",
        "0.0123",
        "12,346",
        "x",
    ]
    pieces = [{"piece_id": f"C{i:02d}__x__y", "status": "ok"} for i in range(22)]
    pieces += [{"piece_id": "C05__x__z", "status": "failed"}]
    ranked = composer_counts(pieces)
    assert ranked[0] == ("C05", {"ok": 1, "failed": 1})
    assert [name for name, _ in ranked[-2:]] == ["C19", "other (2 composers)"]
    assert sum(ranked[-1][1].values()) == 2


def test_group_spans_of_tables():
    rows = tuple(Row((group, i)) for i, group in enumerate("aabbbc"))
    table = Table((Column("group"), Column("n", "number")), rows, grouped=True)
    assert table.group_spans() == (2, 0, 3, 0, 0, 1)
    assert Table(table.columns, rows).group_spans() == (1,) * 6


def test_worker_idle_time_is_worker_seconds_less_the_stages_seconds(tmp_path):
    from msmd_builder.pipeline.report.write import load_report, write_report
    from msmd_builder.pipeline.run import PieceOutcome

    outcomes = [
        PieceOutcome("a", "ok", "align", seconds={"render": 2.5, "align": 0.5}),
        PieceOutcome("b", "ok", "align", seconds={"render": 1.0}),
    ]
    # Two workers for 4 s of the per-piece phase (the whole build took 10 s): 8 - 4 = 4 idle.
    json_path, _ = write_report(
        outcomes, out_dir=tmp_path, name="r", wall_seconds=10.0, workers=2, pieces_wall_seconds=4.0
    )
    assert load_report(json_path)["summary"]["worker_idle_seconds"] == 4.0
    json_path, _ = write_report(outcomes, out_dir=tmp_path, name="r", wall_seconds=1.5, workers=2)
    assert load_report(json_path)["summary"]["worker_idle_seconds"] == 0.0
