"""Render stage: real LilyPond on small inputs written for each case."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mido
import pytest

from msmd_builder.core.errors import (
    LilyPondCrash,
    LilyPondSyntaxError,
    LilyPondTimeout,
    MissingIncludeError,
    NoOutputError,
    SchemeError,
    SourceEncodingError,
)
from msmd_builder.lilypond.logs import read_table
from tests.helpers.build import run_stages

HEADER = r"""\version "2.24.0"
\header { title = "Test" mutopiainstrument = "Piano" }
"""


def build(root: Path, main: str, work: Path, **options):
    return run_stages(root, main, work, "render", **options)


def midi_pitches(path: Path) -> list[int]:
    notes = []
    for track in mido.MidiFile(path).tracks:
        notes += [m.note for m in track if m.type == "note_on" and m.velocity > 0]
    return notes


def test_volta_is_unfolded_in_midi_but_not_in_print(make_piece, tmp_path):
    root, main = make_piece(
        "volta",
        HEADER
        + r"""
music = \relative c' { \repeat volta 2 { c4 d e f } \alternative { { g1 } { a1 } }
                       \repeat unfold 2 { b8 c } r2. }
\score { \new Staff \music \layout { } }
\score { \unfoldRepeats \new Staff \music \midi { \tempo 4 = 120 } }
""",
    )
    result = build(root, main, tmp_path / "work")
    assert result.status == "ok"
    assert result.pdf_files == ("volta.pdf",)
    assert result.midi_files == ("volta.midi",)  # the MIDI-only score is not rendered twice
    midi = Path(result.render_dir) / "volta.midi"
    assert midi_pitches(midi) == [60, 62, 64, 65, 67, 60, 62, 64, 65, 69, 71, 72, 71, 72]
    tempos = [m.tempo for t in mido.MidiFile(midi).tracks for m in t if m.type == "set_tempo"]
    assert tempos == [500000]  # \tempo of the MIDI-only score's \midi block is kept


def test_score_without_midi_block_still_gets_midi(make_piece, tmp_path):
    root, main = make_piece("nomidi", HEADER + r"\score { { c'4 d' e' f' } \layout { } }")
    result = build(root, main, tmp_path / "work")
    assert midi_pitches(Path(result.render_dir) / result.midi_files[0]) == [60, 62, 64, 65]


def test_two_scores_give_two_midi_files(make_piece, tmp_path):
    root, main = make_piece(
        "two",
        HEADER + r"\score { { c'1 } \layout { } \midi { } } \score { { d'2 e'2 } \layout { } }",
    )
    result = build(root, main, tmp_path / "work")
    assert result.pdf_files == ("two.pdf",)
    assert result.midi_files == ("two.midi", "two-1.midi")
    pitches = [midi_pitches(Path(result.render_dir) / name) for name in result.midi_files]
    assert pitches == [[60], [62, 64]]


def test_book_blocks_give_one_pdf_each(make_piece, tmp_path):
    root, main = make_piece(
        "books",
        HEADER + r"\book { \score { { c'1 } } } \book { \score { { \repeat volta 2 { e'1 } } } }",
    )
    result = build(root, main, tmp_path / "work")
    assert len(result.pdf_files) == 2
    assert [midi_pitches(Path(result.render_dir) / n) for n in result.midi_files] == [
        [60],
        [64, 64],
    ]


def test_cache_hit_returns_same_record_without_running(make_piece, tmp_path):
    root, main = make_piece("cached", HEADER + r"{ c'1 }")
    first = build(root, main, tmp_path / "work")
    log = Path(first.render_dir) / "lilypond.log"
    log.write_text("marker", encoding="utf-8")
    second = build(root, main, tmp_path / "work")
    assert second == first
    assert log.read_text(encoding="utf-8") == "marker"  # LilyPond did not run again


def test_old_syntax_is_upgraded_by_convert_ly(make_piece, tmp_path):
    root, main = make_piece(
        "old",
        '\\version "2.10.0"\n\\header { title = "Old" }\n'
        r"\score { \relative c' { \times 2/3 { c8 d e } f2. } \layout { } }",
    )
    result = build(root, main, tmp_path / "work")
    assert result.status == "ok"
    source = (tmp_path / "work/pieces/TestC__Op1__old/source" / main).read_text(encoding="utf-8")
    assert r"\tuplet 3/2" in source


@pytest.mark.parametrize(
    ("name", "body", "error", "message"),
    [
        (
            "syntax",
            r"{ c'4 d'4 = e'4 }",
            LilyPondSyntaxError,
            "syntax.ly:3:11: error: syntax error, unexpected '='",
        ),
        (
            "scheme",
            r"{ \override NoteHead.stencil = #(lambda (g) (car '())) c'1 }",
            SchemeError,
            "In procedure car: Wrong type argument in position 1 (expecting pair): ()",
        ),
        # A name computed at run time: normalize cannot see it, LilyPond reports it.
        (
            "include",
            r'#(ly:parser-include-string "\\include \"no-such-file.ily\"") { c1 }',
            MissingIncludeError,
            "<included string>:1:10: error: cannot find file: `no-such-file.ily'",
        ),
        (
            "crash",
            r"#(kill (getpid) SIGSEGV) { c'1 }",
            LilyPondCrash,
            "LilyPond was killed by SIGSEGV, in each of 3 runs",
        ),
        (
            "headeronly",
            "",
            NoOutputError,
            "LilyPond wrote no PDF or no MIDI (nothing typeset or no music)",
        ),
    ],
)
def test_bad_input_is_classified(make_piece, tmp_path, name, body, error, message):
    root, main = make_piece(name, HEADER + body)
    exactly = f"^{re.escape(message)}$"
    with pytest.raises(error, match=exactly) as info:
        build(root, main, tmp_path / "work")
    assert info.value.message == message
    record = json.loads(
        (tmp_path / f"work/pieces/TestC__Op1__{name}/render/render.json").read_text()
    )
    assert record["status"] == "failed"
    assert record["error"]["error_class"] == error.error_class
    assert record["error"]["message"] == message
    # The failure is cached: a second call raises the same error without rerunning.
    log = tmp_path / f"work/pieces/TestC__Op1__{name}/render/lilypond.log"
    log.write_text("marker", encoding="utf-8")
    with pytest.raises(error, match=exactly):
        build(root, main, tmp_path / "work")
    assert log.read_text(encoding="utf-8") == "marker"


def _counted_run(counter: Path, crash_below: int, signal_name: str) -> str:
    """Scheme that counts LilyPond's runs in ``counter`` and crashes in the first ones."""
    return (
        f'#(let* ((file "{counter}") '
        "(n (if (file-exists? file) (stat:size (stat file)) 0)) "
        '(port (open-file file "a"))) '
        '(display "x" port) (close-port port) '
        f"(if (< n {crash_below}) (kill (getpid) {signal_name})))\n"
    )


def test_a_crash_now_and_then_is_run_again(make_piece, tmp_path):
    """LilyPond crashes on some sources in some runs only: the render stage runs it again."""
    from msmd_builder.stages.render import CRASH_RETRIES

    music = r"\score { \relative c' { c4 d e f | g1 } \layout { } \midi { } }"
    flaky = tmp_path / "flaky-runs"
    root, main = make_piece("flaky", HEADER + _counted_run(flaky, 2, "SIGSEGV") + music)
    result = build(root, main, tmp_path / "work", sandbox="off")
    assert result.status == "ok" and result.crashes == 2 == CRASH_RETRIES
    assert flaky.read_text() == "xxx"  # two crashes, then the run that typeset
    assert result.report_details()["lilypond_crashes_retried"] == 2
    # One that crashes every time fails after as many runs, classified as a crash.
    always = tmp_path / "always-runs"
    root, main = make_piece("crashes", HEADER + _counted_run(always, 99, "SIGFPE") + music)
    with pytest.raises(LilyPondCrash, match="^LilyPond was killed by SIGFPE, in each of 3 runs$"):
        build(root, main, tmp_path / "work", sandbox="off")
    assert always.read_text() == "x" * (1 + CRASH_RETRIES)
    record = tmp_path / "work/pieces/TestC__Op1__crashes/render/render.json"
    assert json.loads(record.read_text())["crashes"] == CRASH_RETRIES


def processes_running(needle: str) -> list[str]:
    """Command lines of this machine's processes that mention ``needle``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in text:
            found.append(text)
    return found


@pytest.mark.parametrize("sandbox", ["on", "off"])
def test_hang_is_killed_at_the_time_limit(make_piece, tmp_path, sandbox):
    root, main = make_piece("hang", HEADER + r"#(let loop () (loop)) { c'1 }")
    with pytest.raises(LilyPondTimeout, match=r"^LilyPond ran past 3 s and was killed$"):
        build(root, main, tmp_path / "work", timeout_sec=3, sandbox=sandbox)
    # Nothing of the run outlives it: LilyPond, the sandbox and its shell are gone.
    assert processes_running(str(tmp_path / "work")) == []


def test_non_utf8_source(make_piece, tmp_path):
    latin1 = (HEADER.replace("Test", "Caf\u00e9") + r"{ c'1 }").encode("latin-1")
    root, main = make_piece("latin", latin1)
    result = build(root, main, tmp_path / "work")  # Windows-1252 is transcoded, with a warning
    assert result.status == "ok"
    normalized = json.loads((tmp_path / "work/pieces/TestC__Op1__latin/normalize.json").read_text())
    assert any("transcoded" in w for w in normalized["warnings"])
    undecodable = HEADER.encode() + b"{ c'1 } % \x81\x8d\x90 \xff\xfe\x00"
    root, main = make_piece("binary", undecodable)
    binary = "ftp/TestC/Op1/binary/binary.ly: binary content (NUL bytes), not a LilyPond source"
    with pytest.raises(SourceEncodingError, match=f"^{re.escape(binary)}$"):
        build(root, main, tmp_path / "work")


def test_failure_leaves_other_outputs_intact(make_piece, tmp_path):
    work = tmp_path / "work"
    root, good = make_piece("good", HEADER + r"{ c'1 }")
    first = build(root, good, work)
    root, bad = make_piece("bad", HEADER + r"{ c'4 = }")
    with pytest.raises(LilyPondSyntaxError, match="bad.ly:3:7: error: syntax error, unexpected"):
        build(root, bad, work)
    assert all((Path(first.render_dir) / n).exists() for n in first.pdf_files + first.midi_files)


def test_recoverable_scheme_error_is_degraded_and_classified(make_piece, tmp_path):
    root, main = make_piece("unbound", HEADER + r"#(this-function-does-not-exist 1) { c'1 }")
    result = build(root, main, tmp_path / "work")
    assert result.status == "degraded"
    assert result.n_errors >= 1
    assert result.error["error_class"] == "scheme"
    assert "Unbound variable" in result.error["message"]


def test_repeat_ties_and_laissez_vibrer_render(make_piece, tmp_path):
    root, main = make_piece(
        "lv",
        HEADER + r"{ c'2~ c'2 | c'2\laissezVibrer r2 | \repeat volta 2 { d'1 } e'1\repeatTie }",
    )
    result = build(root, main, tmp_path / "work")
    assert result.status == "ok"
    heads = read_table(Path(result.render_dir) / "lv.msmd-noteheads.tsv", "noteheads")
    tied = [row["tied"] for row in heads]
    assert tied == ["0", "1", "0", "0", "0"]  # only the second c' continues a tie


def test_pages_are_counted_from_one_whatever_the_printed_page_number(make_piece, tmp_path):
    root, main = make_piece(
        "firstpage", HEADER + r"\paper { first-page-number = 48 } { c'1 \pageBreak d'1 }"
    )
    result = build(root, main, tmp_path / "work")
    heads = read_table(Path(result.render_dir) / "firstpage.msmd-noteheads.tsv", "noteheads")
    assert [row["page"] for row in heads] == ["1", "2"]


def test_music_variables_named_like_lilypond_axes_do_not_break_the_hooks(make_piece, tmp_path):
    # Chopin Op. 10 No. 1 defines a music variable Y; the hooks must use LilyPond's own X/Y.
    root, main = make_piece(
        "axes", HEADER + "X = { c'2 }\nY = { d'2~ }\nRIGHT = { d'2 }\n{ \\X \\Y \\RIGHT }"
    )
    result = build(root, main, tmp_path / "work")
    assert result.status == "ok"
    heads = read_table(Path(result.render_dir) / "axes.msmd-noteheads.tsv", "noteheads")
    assert [row["tied"] for row in heads] == ["0", "0", "1"]
    assert all(row["x0_pt"] != "nan" for row in heads)
