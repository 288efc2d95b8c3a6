"""Exact notehead <-> performed-note links on small pieces written for each notation case.

Every test names the written note (its text at the notehead's source location),
where it is printed (staff, system, page) and how it is played (occurrence,
onset in unrolled whole notes), so a link to the wrong notehead, a wrong staff
or a lost note fails, not just a wrong count.
"""

from __future__ import annotations

import re
from fractions import Fraction as F
from pathlib import Path

import numpy as np

from tests.stages.align.test_align import HEADER, align, render

_WRITTEN = re.compile(r"[a-g](?:isis|eses|is|es)?[',]*\d*\.*")
_HEADER_LINES = HEADER.count("\n")


def written(result, heads: np.ndarray, i: int) -> tuple[int, str]:
    """(line within the body, note as written) of notehead ``i``, read from the rendered source."""
    source = Path(result.render_dir).parent / "source"
    text = next(source.rglob("*.ly")).read_text(encoding="utf-8").splitlines()
    line, char = int(heads["source_line"][i]), int(heads["source_char"][i])
    match = _WRITTEN.match(text[line - 1], char)
    return line - _HEADER_LINES, match.group(0) if match else "?"


def links(result, heads: np.ndarray, performed: np.ndarray) -> list[tuple]:
    """Per performed note, in time order (pitch within a moment): written note and placement.

    Each tuple is (body line, written note, staff, system, page, occurrence,
    onset in whole notes); unlinked notes would show as (-1, "?", ...).
    """
    rows = sorted(
        range(len(performed)),
        key=lambda r: (performed["onset_whole"][r], performed["pitch"][r]),
    )
    out = []
    for r in rows:
        head = int(performed["notehead_id"][r])
        assert head >= 0, performed[r]
        assert heads["pitch"][head] == performed["pitch"][r]
        out.append(
            (
                *written(result, heads, head),
                int(heads["staff"][head]),
                int(heads["system"][head]),
                int(heads["page"][head]),
                int(performed["occurrence"][r]),
                F(float(performed["onset_whole"][r])).limit_denominator(1536),
            )
        )
    return out


def test_cross_staff_notes_link_to_the_staff_they_are_printed_on(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "crossstaff",
        "\\score { \\new PianoStaff <<\n"
        "  \\new Staff = \"up\" { c''8 g' \\change Staff = \"down\" e' c' "
        "\\change Staff = \"up\" f'4 a' }\n"
        '  \\new Staff = "down" { \\clef bass c2 g,2 }\n'
        ">> \\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )
    heads, performed, stats = align(result)
    assert links(result, heads, performed) == [
        (3, "c2", 1, 0, 0, 0, F(0)),
        (2, "c''8", 0, 0, 0, 0, F(0)),
        (2, "g'", 0, 0, 0, 0, F(1, 8)),
        (2, "e'", 1, 0, 0, 0, F(1, 4)),  # written in the upper staff's voice, printed below
        (2, "c'", 1, 0, 0, 0, F(3, 8)),
        (3, "g,2", 1, 0, 0, 0, F(1, 2)),
        (2, "f'4", 0, 0, 0, 0, F(1, 2)),
        (2, "a'", 0, 0, 0, 0, F(3, 4)),
    ]
    # The moved heads' boxes really are on the lower staff: below every upper-staff head.
    moved = heads["staff"] == 1
    assert heads["y0_pt"][moved].min() > heads["y1_pt"][~moved].max()
    assert performed["staff"].tolist() == heads["staff"][performed["notehead_id"]].tolist()
    assert stats["matched_midi_notes"] == stats["midi_notes"] == 8


def test_three_staff_systems_number_staves_top_to_bottom(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "threestaff",
        "\\score { <<\n"
        "  \\new Staff { e''2 f'' | \\break g''1 }\n"
        "  \\new Staff { \\clef alto c'1 | d'1 }\n"
        "  \\new Staff { \\clef bass c1 | g,2 a, }\n"
        ">> \\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )
    heads, performed, _ = align(result)
    _, systems = result_geometry(result)
    assert systems["n_staves"].tolist() == [3, 3]
    assert links(result, heads, performed) == [
        (4, "c1", 2, 0, 0, 0, F(0)),
        (3, "c'1", 1, 0, 0, 0, F(0)),
        (2, "e''2", 0, 0, 0, 0, F(0)),
        (2, "f''", 0, 0, 0, 0, F(1, 2)),
        (4, "g,2", 2, 1, 0, 0, F(1)),
        (3, "d'1", 1, 1, 0, 0, F(1)),
        (2, "g''1", 0, 1, 0, 0, F(1)),
        (4, "a,", 2, 1, 0, 0, F(3, 2)),
    ]
    # Staves are numbered top to bottom and each system's staves lie below the previous system.
    for system in (0, 1):
        on = heads[heads["system"] == system]
        centre = (on["y0_pt"] + on["y1_pt"]) / 2
        assert centre[on["staff"] == 0].max() < centre[on["staff"] == 1].min()
        assert centre[on["staff"] == 1].max() < centre[on["staff"] == 2].min()
    assert systems["y1_pt"][0] < systems["y0_pt"][1]


def result_geometry(result):
    from msmd_builder.stages.score import read_geometry

    return read_geometry(result.render_dir, list(result.pdf_files))


def test_triplets_link_at_their_scaled_onsets(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "triplets",
        "\\score { \\new PianoStaff <<\n"
        "  \\new Staff { \\tuplet 3/2 { c''8 d'' e'' } f''4 \\tuplet 3/2 { g''4 a'' b'' } }\n"
        "  \\new Staff { \\clef bass c2 \\tuplet 3/2 { e4 d c } }\n"
        ">> \\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )
    heads, performed, _ = align(result)
    assert links(result, heads, performed) == [
        (3, "c2", 1, 0, 0, 0, F(0)),
        (2, "c''8", 0, 0, 0, 0, F(0)),
        (2, "d''", 0, 0, 0, 0, F(1, 12)),
        (2, "e''", 0, 0, 0, 0, F(1, 6)),
        (2, "f''4", 0, 0, 0, 0, F(1, 4)),
        (3, "e4", 1, 0, 0, 0, F(1, 2)),
        (2, "g''4", 0, 0, 0, 0, F(1, 2)),
        (3, "d", 1, 0, 0, 0, F(2, 3)),
        (2, "a''", 0, 0, 0, 0, F(2, 3)),
        (3, "c", 1, 0, 0, 0, F(5, 6)),
        (2, "b''", 0, 0, 0, 0, F(5, 6)),
    ]
    # A quarter lasts one second: the triplet eighths start every third of a second.
    upper = performed[performed["staff"] == 0]
    np.testing.assert_allclose(upper["onset_sec"][:3], [0, 1 / 3, 2 / 3], atol=1e-3)
    # Written durations have the tuplet's scale applied.
    triplet = heads["duration_whole"][upper["notehead_id"]]
    np.testing.assert_allclose(triplet, [1 / 12] * 3 + [1 / 4] + [1 / 6] * 3)


def test_ties_across_a_barline_and_a_system_break_sound_once(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "ties",
        "\\score { { \\time 2/4\n"
        "  c'4 e'4~ |\n"
        "  e'8 g'8~ g'4~ | \\break\n"
        "  g'4 <c'' e''>4~ |\n"
        "  <c'' e''>2 |\n"
        "} \\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )
    heads, performed, stats = align(result)
    assert links(result, heads, performed) == [
        (2, "c'4", 0, 0, 0, 0, F(0)),
        (2, "e'4", 0, 0, 0, 0, F(1, 4)),
        (3, "g'8", 0, 0, 0, 0, F(5, 8)),
        (4, "c''", 0, 1, 0, 0, F(5, 4)),
        (4, "e''", 0, 1, 0, 0, F(5, 4)),
    ]
    # Each sounding note lasts through all its tied heads, across the bar and the break.
    np.testing.assert_allclose(performed["duration_whole"], [1 / 4, 3 / 8, 5 / 8, 3 / 4, 3 / 4])
    continuations = [
        (written(result, heads, i), int(heads["system"][i])) for i in range(len(heads))
    ]
    continuations = [c for c, tied in zip(continuations, heads["tied"], strict=True) if tied]
    assert continuations == [
        ((3, "e'8"), 0),
        ((3, "g'4"), 0),
        ((4, "g'4"), 1),  # the tie crosses the system break
        ((5, "c''"), 1),
        ((5, "e''"), 1),
    ]
    assert stats["tie_continuations"] == 5
    assert stats["aligned_sounding_visible_noteheads"] == stats["sounding_visible_noteheads"] == 5


def test_multi_page_piece_links_to_both_pages(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "pages",
        "\\score { \\new Staff {\n"
        "  c'1 | d'2 e' | \\pageBreak\n"
        "  f'1 | g'2 a' \\bar \"|.\"\n"
        "} \\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )
    heads, performed, stats = align(result)
    assert links(result, heads, performed) == [
        (2, "c'1", 0, 0, 0, 0, F(0)),
        (2, "d'2", 0, 0, 0, 0, F(1)),
        (2, "e'", 0, 0, 0, 0, F(3, 2)),
        (3, "f'1", 0, 1, 1, 0, F(2)),
        (3, "g'2", 0, 1, 1, 0, F(3)),
        (3, "a'", 0, 1, 1, 0, F(7, 2)),
    ]
    assert stats["pages"] == 2
    np.testing.assert_allclose(performed["onset_sec"], [0, 4, 6, 8, 12, 14])


def test_two_voices_on_one_staff_keep_their_own_heads(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "voices",
        "\\score { \\new Staff <<\n"
        "  \\new Voice { \\voiceOne e''4 d''8 c'' b'2 | g'1 }\n"
        "  \\new Voice { \\voiceTwo c''2 g'4 f' | g'1 }\n"
        ">> \\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )
    heads, performed, stats = align(result)
    played = links(result, heads, performed)
    assert played[:-1] == [
        (3, "c''2", 0, 0, 0, 0, F(0)),
        (2, "e''4", 0, 0, 0, 0, F(0)),
        (2, "d''8", 0, 0, 0, 0, F(1, 4)),
        (2, "c''", 0, 0, 0, 0, F(3, 8)),  # same pitch as the lower voice's c''2, own head
        (3, "g'4", 0, 0, 0, 0, F(1, 2)),
        (2, "b'2", 0, 0, 0, 0, F(1, 2)),
        (3, "f'", 0, 0, 0, 0, F(3, 4)),
    ]
    # Both voices end on g'1: the MIDI has one note for the two heads; one head
    # takes it, the other is counted as a unison (aligned, no note of its own).
    assert played[-1] in [(2, "g'1", 0, 0, 0, 0, F(1)), (3, "g'1", 0, 0, 0, 0, F(1))]
    assert stats["unison_events"] == 1
    assert stats["aligned_sounding_visible_noteheads"] == stats["sounding_visible_noteheads"] == 9
    # The lower voice's c''2 is cut where the upper voice strikes the same key again.
    lower_c = (performed["pitch"] == 72) & (performed["onset_whole"] == 0)
    assert performed["duration_whole"][lower_c].tolist() == [3 / 8]


def test_chord_heads_each_link_to_their_own_note(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "chords",
        "\\score { {\n"
        "  <c' e' g'>2~ <c' e' a'>2 |\n"
        "  <d' f'>4 <e' g' b'>2. |\n"
        "} \\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )
    heads, performed, stats = align(result)
    assert links(result, heads, performed) == [
        (2, "c'", 0, 0, 0, 0, F(0)),
        (2, "e'", 0, 0, 0, 0, F(0)),
        (2, "g'", 0, 0, 0, 0, F(0)),
        (2, "a'", 0, 0, 0, 0, F(1, 2)),  # only the new note of the half-tied chord sounds
        (3, "d'", 0, 0, 0, 0, F(1)),
        (3, "f'", 0, 0, 0, 0, F(1)),
        (3, "e'", 0, 0, 0, 0, F(5, 4)),
        (3, "g'", 0, 0, 0, 0, F(5, 4)),
        (3, "b'", 0, 0, 0, 0, F(5, 4)),
    ]
    tied = [written(result, heads, i) for i in np.flatnonzero(heads["tied"])]
    assert tied == [(2, "c'"), (2, "e'")]
    assert sorted(performed["duration_whole"][:3].tolist()) == [0.5, 1.0, 1.0]
    assert stats["matched_midi_notes"] == stats["midi_notes"] == 9


def test_grace_notes_link_before_their_beat(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "graces",
        "\\score { {\n"
        "  c'4 \\grace d'8 e'4 \\acciaccatura f'16 g'4 \\appoggiatura a'8 b'4 |\n"
        "  \\grace { c''16 d'' } e''1 |\n"
        "} \\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )
    heads, performed, _ = align(result)
    assert links(result, heads, performed) == [
        (2, "c'4", 0, 0, 0, 0, F(0)),
        (2, "d'8", 0, 0, 0, 0, F(1, 8)),  # written at 1/4, an eighth of grace time before
        (2, "e'4", 0, 0, 0, 0, F(1, 4)),
        (2, "f'16", 0, 0, 0, 0, F(7, 16)),
        (2, "g'4", 0, 0, 0, 0, F(1, 2)),
        (2, "a'8", 0, 0, 0, 0, F(5, 8)),
        (2, "b'4", 0, 0, 0, 0, F(3, 4)),
        (3, "c''16", 0, 0, 0, 0, F(7, 8)),
        (3, "d''", 0, 0, 0, 0, F(15, 16)),
        (3, "e''1", 0, 0, 0, 0, F(1)),
    ]
    grace = heads["grace"][performed["notehead_id"]]
    assert grace.tolist() == [False, True, False, True, False, True, False, True, True, False]
    # Main notes sound on their beats; each grace note in the beat before its main note.
    onsets = performed["onset_sec"]
    np.testing.assert_allclose(onsets[~grace], [0, 1, 2, 3, 4], atol=1e-6)
    for i in np.flatnonzero(grace):
        assert onsets[i - 1] < onsets[i] < onsets[i + 1]


def test_notes_after_a_long_grace_cadenza_link_despite_the_midi_running_late(make_piece, tmp_path):
    result = render(
        make_piece,
        tmp_path,
        "cadenza",
        "\\score { \\new PianoStaff <<\n"
        "  \\new Staff { c''4 \\grace { d''8 e'' f'' g'' a'' b'' c''' d''' e''' } f''4 g''2 |"
        " a''1 | b''4 c''' d''' e''' }\n"
        "  \\new Staff { \\clef bass c2 d2 | e1 | f4 g a b }\n"
        ">> \\layout { } \\midi { \\tempo 4 = 60 } }\n",
    )
    heads, performed, stats = align(result)
    # Nine eighths of grace time cannot be taken from the quarter before them:
    # LilyPond's MIDI plays the cadenza over that c'' and leaves the c'' out,
    # and the upper staff runs a few ticks late from there on.
    assert stats["midi_notes"] == stats["matched_midi_notes"] == 23
    unaligned = sorted(set(range(len(heads))) - set(performed["notehead_id"].tolist()))
    assert [written(result, heads, i) for i in unaligned] == [(2, "c''4")]
    upper = performed[(performed["staff"] == 0) & ~heads["grace"][performed["notehead_id"]]]
    late = upper["onset_sec"] - 4 * upper["onset_whole"]
    assert ((late > 0.005) & (late < 0.05)).all()
    assert [(line, note) for line, note, *_ in links(result, heads, upper)] == [
        (2, "f''4"),
        (2, "g''2"),
        (2, "a''1"),
        (2, "b''4"),
        (2, "c'''"),
        (2, "d'''"),
        (2, "e'''"),
    ]
