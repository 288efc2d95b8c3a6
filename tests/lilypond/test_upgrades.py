r"""Syntax rules beyond convert-ly: each rewrites what it names, and LilyPond then accepts it.

Every rule has a test on a written input: the rewritten text exactly, that
text parsed by real LilyPond (which rejects the input before the rewrite),
and the notes unchanged (the MIDI pitches of both versions where the old one
still renders, else the notes written in the text).
"""

from __future__ import annotations

import re
from pathlib import Path

from msmd_builder.lilypond.tools import lilypond_executable, run_tool
from msmd_builder.lilypond.upgrades import RULES, upgrade_source


def lilypond_errors(tmp_path: Path, text: str) -> list[str]:
    source = tmp_path / "rule.ly"
    source.write_text('\\version "2.24.0"\n' + text, encoding="utf-8")
    run = run_tool(
        [str(lilypond_executable()), "-s", f"--output={tmp_path / 'out'}", str(source)],
        timeout_sec=120,
    )
    return [line for line in run.stderr.splitlines() if "error" in line]


def test_every_rule_is_named_and_described_once():
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", name) for name in names)
    assert all(len(rule.description) > 80 for rule in RULES)


CONTEXT_OLD = r"""music = \relative c'' {
  \new Voice = "rechts"
  \override Fingering.staff-padding = #'()
  a4 b c d
  \context Voice = "x" \set Staff.midiMinimumVolume = #-.5
  \new Voice \once \override Voice.Rest.extra-offset = #'(-1.7 . (-.6)) e1
  \context Voice = links \revert Stem.direction f1
  \new Voice = "u" \set Staff.instrumentName = \markup \column { "The notes" \line { "x" } }
  g1
}
\score { \new Staff \music }
"""


def test_context_property_argument(tmp_path):
    upgraded, counts = upgrade_source(CONTEXT_OLD)
    assert counts == {"context-property-argument": 5}
    assert '\\new Voice = "rechts"\n  { \\override Fingering.staff-padding = #\'() }' in upgraded
    assert '\\context Voice = "x" { \\set Staff.midiMinimumVolume = #-.5 }' in upgraded
    assert "\\new Voice { \\once \\override Voice.Rest.extra-offset = #'(-1.7 . (-.6)) } e1" in (
        upgraded
    )
    assert "\\context Voice = links { \\revert Stem.direction } f1" in upgraded
    assert (
        '\\new Voice = "u" { \\set Staff.instrumentName = '
        '\\markup \\column { "The notes" \\line { "x" } } }\n  g1'
    ) in upgraded
    assert lilypond_errors(tmp_path, CONTEXT_OLD)  # rejected as written
    assert lilypond_errors(tmp_path, upgraded) == []
    # Syntax only: the notes are the same text.
    assert re.findall(r"\b[a-g]\d?\b", upgraded) == re.findall(r"\b[a-g]\d?\b", CONTEXT_OLD)


def test_context_property_argument_leaves_unreadable_values_alone():
    text = '\\new Voice = "a" \\override TextScript.stencil = \\myStencil\n'
    assert upgrade_source(text) == (text, {})


POSTFIX_OLD = r"\relative c' { c4-\deprecatedcresc d e f^\deprecatedendcresc g1_\deprecateddim }"


def test_postfix_text_dynamics(tmp_path):
    upgraded, counts = upgrade_source(POSTFIX_OLD)
    assert counts == {"postfix-text-dynamics": 3}
    assert upgraded == r"\relative c' { c4-\cresc d e f^\endcresc g1_\dim }"
    assert lilypond_errors(tmp_path, POSTFIX_OLD)
    assert lilypond_errors(tmp_path, upgraded) == []


def test_rules_leave_current_syntax_alone():
    current = r"""\new Voice = "a" { \override Stem.direction = #UP c'4\cresc d'\! }
\context Staff = "b" \with { \consists "Span_arpeggio_engraver" } { \deprecatedcresc c'1 }
"""
    assert upgrade_source(current) == (current, {})


MARK_OLD = r"""markDown =
#(define-music-function (text) (markup?)
   (make-music 'MarkEvent
     'direction DOWN
     'label text))
number = #(make-music 'MarkEvent 'label 3)
{ c'1 \markDown \markup { \italic "Fine" } d'1 \number e'1 #(make-music 'MarkEvent) f'1 }
"""


def test_mark_event_type(tmp_path):
    upgraded, counts = upgrade_source(MARK_OLD)
    assert counts == {"mark-event-type": 3}
    assert "'MarkEvent" not in upgraded
    assert (
        "(let ((msmd-mark-label text)) (make-music (if (markup? msmd-mark-label) "
        "'AdHocMarkEvent 'RehearsalMarkEvent) 'direction DOWN "
        "(if (markup? msmd-mark-label) 'text 'label) msmd-mark-label))"
    ) in upgraded
    assert "#(make-music 'RehearsalMarkEvent) f'1" in upgraded
    assert any("MarkEvent" in line for line in lilypond_errors(tmp_path, MARK_OLD))
    assert lilypond_errors(tmp_path, upgraded) == []
    assert upgraded.endswith(
        "{ c'1 \\markDown \\markup { \\italic \"Fine\" } d'1 \\number e'1 "
        "#(make-music 'RehearsalMarkEvent) f'1 }\n"
    )


ARTICULATION_OLD = r"""withArticulation =
#(define-music-function (type note) (string? ly:music?)
   (ly:music-set-property! note 'articulations
     (list (make-music 'ArticulationEvent 'articulation-type type)))
   note)
marcato = #(make-articulation (string-append "marc" "ato"))
{ \withArticulation "accent" c'4 d'4 \marcato e'2 }
"""


def test_articulation_type_symbol(tmp_path):
    upgraded, counts = upgrade_source(ARTICULATION_OLD)
    assert counts == {"articulation-type-symbol": 2}
    assert (
        "'articulation-type (let ((msmd-type type)) "
        "(if (string? msmd-type) (string->symbol msmd-type) msmd-type))"
    ) in upgraded
    assert upgrade_source(upgraded) == (upgraded, {})  # applied once only
    assert any("must be a symbol" in line for line in lilypond_errors(tmp_path, ARTICULATION_OLD))
    assert lilypond_errors(tmp_path, upgraded) == []
    assert upgraded.endswith("{ \\withArticulation \"accent\" c'4 d'4 \\marcato e'2 }\n")


MOMENT_OLD = r"""{ \set Score.tempoWholesPerMinute = #(ly:make-moment 56 4 0 0) c'1
  \set Score.tempoWholesPerMinute = #(ly:make-moment 108 4 0 1) d'1 }
"""


def test_make_moment_zero_grace(tmp_path):
    upgraded, counts = upgrade_source(MOMENT_OLD)
    assert counts == {"make-moment-zero-grace": 2}
    assert "#(ly:make-moment 56/4) c'1" in upgraded
    assert "#(ly:make-moment 108/4) d'1" in upgraded
    assert any("Guile signaled" in line for line in lilypond_errors(tmp_path, MOMENT_OLD))
    assert lilypond_errors(tmp_path, upgraded) == []


MARKUP_OLD = r"""chapter =
#(define-music-function (title) (string?)
   (make-music 'TextScriptEvent 'text (markup #:chapter-title (string-upcase title))))

#(define-markup-command (chapter-title layout props title) (markup?)
   (interpret-markup layout props (markup #:bold title)))

{ c'1 -\chapter "one" d'1 }
"""


def test_markup_command_before_definition(tmp_path):
    upgraded, counts = upgrade_source(MARKUP_OLD)
    assert counts == {"markup-command-before-definition": 1}
    assert "'text (make-chapter-title-markup (string-upcase title))" in upgraded
    assert "(markup #:bold title)" in upgraded  # defined long before: left as it is
    assert any("Not a markup command" in line for line in lilypond_errors(tmp_path, MARKUP_OLD))
    assert lilypond_errors(tmp_path, upgraded) == []


NUMBER_OLD = r"""\header { copyright = "CPDL #16135</a>" } % see #12<b>
{ c''4 \ottava #1<c'' e''>4 \ottava #1\tuplet 3/2 { c''8 d'' e'' } \ottava #0 c'2 }
"""


def test_scheme_number_delimiter(tmp_path):
    upgraded, counts = upgrade_source(NUMBER_OLD)
    assert counts == {"scheme-number-delimiter": 2}
    assert "\\ottava #1 <c'' e''>4 \\ottava #1 \\tuplet 3/2" in upgraded
    assert upgraded.startswith('\\header { copyright = "CPDL #16135</a>" } % see #12<b>\n')
    assert lilypond_errors(tmp_path, NUMBER_OLD)  # rejected as convert-ly left it
    assert lilypond_errors(tmp_path, upgraded) == []


CRESCENDO_OLD = r"""CRESC = { \set crescendoText = "cresc." \set crescendoSpanner = #'dashed-line }
{ c'4 \CRESC d'\< e' f'\! \set decrescendoSpanner   =   #'dashed-line g'\> a' b' c''\! }
"""


def test_crescendo_spanner_text(tmp_path):
    upgraded, counts = upgrade_source(CRESCENDO_OLD)
    assert counts == {"crescendo-spanner-text": 2}
    assert "\\set crescendoSpanner = #'text }" in upgraded
    assert "\\set decrescendoSpanner   =   #'text g'" in upgraded

    def warnings(text: str) -> list[str]:
        source = tmp_path / "rule.ly"
        source.write_text('\\version "2.24.0"\n' + text, encoding="utf-8")
        run = run_tool(
            [
                str(lilypond_executable()),
                "--loglevel=WARNING",
                f"--output={tmp_path / 'out'}",
                str(source),
            ],
            timeout_sec=120,
        )
        return [line for line in run.stderr.splitlines() if "crescendo style" in line]

    assert len(warnings(CRESCENDO_OLD)) == 2  # a hairpin instead of the text, twice
    assert warnings(upgraded) == []
    assert lilypond_errors(tmp_path, upgraded) == []
