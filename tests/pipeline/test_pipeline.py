"""Integration: the CLI over examples/ and over a few real Mutopia pieces."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.lilypond.logs import read_table
from tests.conftest import EXAMPLES_ROOT, build_through_align
from tests.helpers.writes import file_writes


@pytest.fixture(scope="module")
def examples_work(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    runner = CliRunner()
    scan = runner.invoke(main, ["corpus", "scan", str(EXAMPLES_ROOT), "--work-dir", str(work)])
    assert scan.exit_code == 0, scan.output
    render = runner.invoke(main, ["corpus", "render", "--work-dir", str(work), "--workers", "2"])
    assert render.exit_code == 0, render.output
    return work


def test_every_example_renders_cleanly(examples_work):
    report = json.loads((examples_work / "reports" / "render.json").read_text())
    assert report["summary"]["pieces"] == 14
    statuses = {p["piece_id"]: p["status"] for p in report["pieces"]}
    assert set(statuses.values()) == {"ok"}, statuses
    md = (examples_work / "reports" / "render.md").read_text()
    assert "produced PDF and MIDI: 14 (100.0 %)" in md
    totals = report["summary"]["alignment_totals"]
    assert totals["pieces"] == 14
    assert totals["pitch_mismatches"] == 0
    assert totals["matched_midi_notes"] == totals["midi_notes"]
    assert totals["aligned_performed_notes"] == totals["performed_notes"]
    # The D.C. al Fine waltz replays its first 8 bars (71 notes) after the end.
    assert totals["realized_jumps"] == 1
    assert totals["performed_notes"] == totals["midi_notes"] + 71
    assert totals["aligned_sounding_visible_noteheads"] == totals["sounding_visible_noteheads"]
    etude = examples_work / "pieces" / "ExampleC__O25__sixteenth-etude" / "score"
    assert sorted(p.name for p in etude.glob("page-*.png")) == [f"page-0-{i}.png" for i in range(4)]


def test_examples_geometry_tables_are_written(examples_work):
    piece = examples_work / "pieces" / "ExampleC__O25__sixteenth-etude" / "render"
    noteheads = read_table(piece / "sixteenth-etude.msmd-noteheads.tsv", "noteheads")
    pages = {row["page"] for row in noteheads}
    assert pages == {"1", "2", "3", "4"}  # the four-page example, every page has noteheads
    minuet = examples_work / "pieces" / "ExampleA__O1__volta-minuet" / "render"
    heads = read_table(minuet / "volta-minuet.msmd-noteheads.tsv", "noteheads")
    performed = read_table(minuet / "volta-minuet.msmd-performed.tsv", "performed")
    assert len(performed) > len(heads)  # its \repeat volta plays sections twice


def test_second_render_is_cached(examples_work):
    before = file_writes(examples_work / "pieces")
    runner = CliRunner()
    result = runner.invoke(
        main, ["corpus", "render", "--work-dir", str(examples_work), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((examples_work / "reports" / "render.json").read_text())
    assert report["summary"]["pieces"] == 14
    assert {p["status"] for p in report["pieces"]} == {"ok"}
    assert file_writes(examples_work / "pieces") == before  # every stage was cached


def test_piece_command_unknown_id(examples_work):
    result = CliRunner().invoke(main, ["piece", "Nobody__X__y", "--work-dir", str(examples_work)])
    assert result.exit_code != 0
    assert "not in" in result.output


@pytest.mark.corpus
@pytest.mark.parametrize(
    "piece_id",
    [
        "BachJS__BWV846__wtk1-prelude1",
        "MozartWA__KV331__KV331_1_2_var1",
        "ChopinFF__O9__nocturne_in_b-flat_minor",  # needs convert-ly and a compat shim
    ],
)
def test_real_pieces_render(real_mutopia, tmp_path, piece_id):
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["piece", piece_id, "--work-dir", str(tmp_path), "--mutopia-root", str(real_mutopia)],
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["status"] in ("ok", "degraded")
    assert outcome["details"]["pdf_files"] and outcome["details"]["midi_files"]


def test_view_draws_coloured_overlays(examples_work):
    from PIL import Image

    from msmd_builder.outputs.overlays import COLOURS

    result = CliRunner().invoke(
        main, ["view", "ExampleA__O2__tied-chorale", "--work-dir", str(examples_work)]
    )
    assert result.exit_code == 0, result.output
    paths = result.output.split()
    assert len(paths) == 1
    rgb = np.asarray(Image.open(paths[0]).convert("RGB")).reshape(-1, 3)
    pixels = {tuple(int(v) for v in p) for p in np.unique(rgb, axis=0)}
    # Aligned heads in green, tie continuations in blue; nothing unaligned here.
    assert COLOURS["aligned"] in pixels and COLOURS["tied"] in pixels
    assert COLOURS["unaligned"] not in pixels


@pytest.mark.corpus
def test_a_repeat_in_some_voices_only_is_played_on_the_shared_timeline(real_mutopia, tmp_path):
    """The Goldberg aria's source repeats the soprano only; the bass writes its bars once."""

    def build(**kwargs):
        return build_through_align(
            real_mutopia, "BachJS__BWV988__bwv-988-aria", tmp_path / "work", **kwargs
        )

    outcome = build(repeats_fallback=False)  # a reading of the score, not a fallback
    assert outcome.status == "ok", outcome.message
    assert outcome.details["repeats"] == "timeline"
    assert "\\repeat volta 2 at bwv-988-aria.ly:61:4" in outcome.details["repeats_timeline"]
    assert "repeats_fallback" not in outcome.details
    stats = outcome.details["alignment"]
    # Both halves repeated, in both hands: every MIDI note of the printed
    # timeline played twice, back to the first system twice.
    assert stats["midi_notes"] == stats["matched_midi_notes"] == 418
    assert stats["performed_notes"] == stats["aligned_performed_notes"] == 836
    assert stats["timeline_repeats"] == 2
    assert (stats["reading_order_back_jumps"], stats["reading_order_violations"]) == (2, 0)
    # The memo sends a rebuild straight to the timeline, with nothing redone.
    piece_folder = tmp_path / "work" / "pieces" / "BachJS__BWV988__bwv-988-aria"
    before = file_writes(piece_folder)
    again = build()
    assert again.details["repeats"] == "timeline"
    assert file_writes(piece_folder) == before


@pytest.mark.corpus
def test_a_jump_that_does_not_read_is_built_in_printed_order(real_mutopia, tmp_path):
    """BWV 807's prelude writes its Fine after the Dal Segno: the last resort is printed order."""
    outcome = build_through_align(
        real_mutopia, "BachJS__BWV807__bach-english-suite-2-prelude", tmp_path / "work"
    )
    assert outcome.status == "ok", outcome.message
    assert outcome.details["repeats"] == "folded"
    assert outcome.details["repeats_fallback_class"] == "not-unrollable"
    assert (
        "the Fine is not between the jump's start and the jump"
        in (outcome.details["repeats_fallback"])
    )
    stats = outcome.details["alignment"]
    assert stats["performed_notes"] == stats["midi_notes"] == stats["matched_midi_notes"]
    assert stats["reading_order_violations"] == 0
