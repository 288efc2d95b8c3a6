"""The MIDI-note <-> logged-event matcher on hand-made notes and events, without LilyPond.

The rendered pieces of ``test_align*.py`` check the matcher on what LilyPond
really writes; these check each of its rules on the smallest input that needs
it, in milliseconds, so that a mutation run (``make mutation``) can afford
them.  Ticks are LilyPond's: 384 a quarter note, 1536 a whole note.
"""

from __future__ import annotations

from fractions import Fraction as F

import mido
import numpy as np
import pytest

from msmd_builder.lilypond.logs import LoggedEvent
from msmd_builder.stages.align.midi import (
    GRACE_MIDI_SCALE,
    AlignmentStats,
    MidiNote,
    match_notes,
    midi_tick,
    performed_table,
    read_midi_notes,
)

QUARTER = 384


def note(pitch: int, tick: int, length: int = QUARTER, *, track: int = 1) -> MidiNote:
    """A MIDI note at ``tick``, a quarter note per second."""
    return MidiNote(
        track, pitch, 80, tick, tick + length, tick / QUARTER, (tick + length) / QUARTER
    )


def event(event_id: int, main: F | int, pitch: int, grace: F | int = 0) -> LoggedEvent:
    """A logged quarter-note event at ``main + grace`` whole notes."""
    return LoggedEvent(
        order=event_id,
        score=0,
        event_id=event_id,
        moment_main=F(main),
        moment_grace=F(grace),
        pitch=pitch,
        duration_whole=F(1, 4),
    )


def match(notes, events, continuation_ids=frozenset()):
    return match_notes(notes, events, continuation_ids=set(continuation_ids))


def stats(midi: int, matched: int, sounding: int, events: int, unison: int = 0) -> AlignmentStats:
    return AlignmentStats(
        midi_notes=midi,
        matched_midi_notes=matched,
        sounding_events=sounding,
        matched_events=events,
        unison_events=unison,
    )


# --------------------------------------------------------------------------- midi_tick


@pytest.mark.parametrize(
    ("main", "grace", "ticks_per_whole", "tick"),
    [
        (F(0), F(0), 1536, 0),
        (F(1, 4), F(0), 1536, 384),
        (F(3, 2), F(0), 1536, 2304),
        (F(1, 2), F(0), 960, 480),
        # A sixteenth of grace time sounds 9/40 of a sixteenth (21.6 ticks) early: 362.4.
        (F(1, 4), F(-1, 16), 1536, 362),
        (F(1, 4), F(-1, 8), 1536, 340),  # 384 - 43.2
        # Before the first beat the tick is negative and truncates toward zero.
        (F(0), F(-1, 8), 1536, -43),
        (F(0), F(-1, 16), 1536, -21),
        (F(-1, 8), F(0), 1536, -192),
    ],
)
def test_midi_tick_scales_grace_time_and_truncates_toward_zero(main, grace, ticks_per_whole, tick):
    assert midi_tick(main, grace, ticks_per_whole) == tick
    assert isinstance(midi_tick(main, grace, ticks_per_whole), int)


def test_grace_time_plays_at_nine_fortieths():
    assert GRACE_MIDI_SCALE == F(9, 40)
    assert midi_tick(F(1, 4), F(-1, 16)) == 362  # LilyPond's 1536 ticks a whole note


def test_another_midi_resolution_is_matched_in_its_own_ticks():
    # 960 ticks a whole note: a grace before the first beat, then a drift of 10 ticks.
    events = [event(0, 0, 65, grace=F(-1, 8)), event(1, 0, 60)]
    events += [event(2 + i, F(1 + i, 4), 62 + i) for i in range(4)]
    notes = [note(65, 0), note(60, 27)] + [note(62 + i, 27 + 240 * (1 + i) + 10) for i in range(4)]
    pairs, _, result = match_notes(notes, events, continuation_ids=set(), ticks_per_whole=960)
    assert pairs == {i: i for i in range(6)}
    assert result == stats(6, 6, 6, 6)


# --------------------------------------------------------------------------- pairing


def test_notes_pair_with_the_events_at_their_ticks():
    notes = [note(60, 0), note(64, 0), note(62, 384), note(60, 768)]
    events = [event(10, 0, 60), event(11, F(1, 4), 62), event(12, 0, 64), event(13, F(1, 2), 60)]
    pairs, unison, result = match(notes, events)
    assert pairs == {0: 0, 1: 2, 2: 1, 3: 3}
    assert unison == []
    assert result == stats(4, 4, 4, 4)


def test_a_note_pairs_within_two_ticks_of_its_event_and_no_further():
    events = [event(0, 0, 60), event(1, F(1, 4), 62), event(2, F(1, 2), 64), event(3, F(3, 4), 65)]
    notes = [note(60, 0), note(62, 384 + 2), note(64, 768 - 2), note(65, 1152 + 3)]
    pairs, _, result = match(notes, events)
    assert pairs == {0: 0, 1: 1, 2: 2}
    assert result == stats(4, 3, 4, 3)


def test_a_note_of_another_pitch_never_pairs():
    pairs, _, result = match([note(60, 0), note(61, 384)], [event(0, 0, 60), event(1, F(1, 4), 62)])
    assert pairs == {0: 0}
    assert result == stats(2, 1, 2, 1)


def test_a_note_without_an_event_of_its_pitch_does_not_stop_the_others():
    events = [event(0, 0, 60), event(1, F(1, 4), 62)]
    pairs, _, result = match([note(60, 0), note(61, 100), note(62, 384)], events)
    assert pairs == {0: 0, 2: 1}
    assert result == stats(3, 2, 2, 2)


# An opening d' at 0 fixes the start offset at 0 for the c' events 2 ticks apart after it.
OPENING = [event(9, 0, 62)]


def test_of_events_in_reach_the_nearest_takes_the_note():
    # c' at ticks 384, 386 and 388; the note at 386 belongs to the middle one.
    events = OPENING + [event(i, F(1, 4) + F(i, 768), 60) for i in range(3)]
    pairs, _, _ = match([note(62, 0), note(60, 386)], events)
    assert pairs == {0: 0, 1: 2}
    pairs, _, _ = match([note(62, 0), note(60, 386)], OPENING + events[:0:-1])
    assert pairs == {0: 0, 1: 2}


def test_at_equal_distance_the_earlier_event_takes_the_note():
    # c' at ticks 384 and 386, the note halfway: the one at 384 wins, even logged second.
    events = OPENING + [event(0, F(1, 4) + F(1, 768), 60), event(1, F(1, 4), 60)]
    pairs, _, _ = match([note(62, 0), note(60, 385)], events)
    assert pairs == {0: 0, 1: 2}


def test_an_event_takes_one_note_and_the_extra_note_stays_unpaired():
    pairs, unison, result = match([note(60, 0), note(60, 0)], [event(0, 0, 60)])
    assert pairs == {0: 0}
    assert unison == []
    assert result == stats(2, 1, 1, 1)


def test_a_note_goes_to_the_next_free_event_in_reach():
    # Two same-pitch events on one tick (two voices) and two MIDI notes: one each.
    pairs, unison, result = match([note(60, 0), note(60, 0)], [event(0, 0, 60), event(1, 0, 60)])
    assert pairs == {0: 0, 1: 1}
    assert unison == []
    assert result == stats(2, 2, 2, 2)


def test_tie_continuations_start_no_note():
    events = [event(0, 0, 60), event(1, F(1, 4), 60), event(2, F(1, 2), 62)]
    # The tied c' at 1/4 sounds on: the note at its tick belongs to nothing.
    pairs, unison, result = match(
        [note(60, 0, 2 * QUARTER), note(62, 768), note(60, 384)], events, continuation_ids={1}
    )
    assert pairs == {0: 0, 1: 2}
    assert unison == []
    assert result == stats(3, 2, 2, 2)


def test_a_unison_of_two_voices_played_once_counts_both_events():
    events = [event(0, 0, 60), event(1, 0, 60), event(2, F(1, 4), 64)]
    pairs, unison, result = match([note(60, 0), note(64, 384)], events)
    assert pairs == {0: 0, 1: 2}
    assert unison == [1]
    assert result == stats(2, 2, 3, 3, unison=1)


def test_an_unplayed_event_is_a_unison_only_at_the_same_moment_grace_and_pitch():
    events = [
        event(0, F(1, 4), 60),
        event(1, F(1, 4), 60, grace=F(-1, 16)),  # a grace before it: not the same note
        event(2, F(1, 4), 62),  # another pitch
        event(3, F(1, 2), 60),  # another moment
    ]
    pairs, unison, result = match([note(60, 384)], events)
    assert pairs == {0: 0}
    assert unison == []
    assert result == stats(1, 1, 4, 1)


def test_a_tie_continuation_is_never_a_unison():
    events = [event(0, 0, 60), event(1, 0, 60)]
    pairs, unison, result = match([note(60, 0)], events, continuation_ids={1})
    assert (pairs, unison) == ({0: 0}, [])
    assert result == stats(1, 1, 1, 1)


def test_nothing_to_match():
    assert match([], [event(0, 0, 60)]) == ({}, [], stats(0, 0, 1, 0))
    assert match([note(60, 0)], []) == ({}, [], stats(1, 0, 0, 0))
    assert match([], []) == ({}, [], stats(0, 0, 0, 0))


# --------------------------------------------------------------------------- start offset


def test_a_grace_before_the_first_beat_delays_the_whole_midi():
    # \grace f'8 c'4 d'4: the grace sounds at -43 ticks, so LilyPond starts there.
    events = [event(0, 0, 65, grace=F(-1, 8)), event(1, 0, 60), event(2, F(1, 4), 62)]
    pairs, _, result = match([note(65, 0), note(60, 43), note(62, 427)], events)
    assert pairs == {0: 0, 1: 1, 2: 2}
    assert result == stats(3, 3, 3, 3)


def test_graces_of_the_first_beats_pitch_find_the_delay_that_places_all_of_them():
    # \grace { c'16 c' } c'4 d'4: three c' at -43, -21 and 0 ticks, MIDI at 0, 22 and 43.
    events = [
        event(0, 0, 60, grace=F(-1, 8)),
        event(1, 0, 60, grace=F(-1, 16)),
        event(2, 0, 60),
        event(3, F(1, 4), 62),
    ]
    notes = [note(60, 0), note(60, 22), note(60, 43), note(62, 427)]
    pairs, _, result = match(notes, events)
    assert pairs == {0: 0, 1: 1, 2: 2, 3: 3}
    assert result == stats(4, 4, 4, 4)


def test_of_equally_good_start_offsets_the_smallest_wins():
    # c' twice: a delay of 0 and one of 384 both put a note on the opening c'.
    events = [event(0, 0, 60), event(1, F(1, 4), 60)]
    pairs, _, result = match([note(60, 0), note(60, 384)], events)
    assert pairs == {0: 0, 1: 1}
    assert result == stats(2, 2, 2, 2)


def test_of_equally_good_start_offsets_of_one_size_the_negative_wins():
    # Opening c' at 384 (a quarter rest first), notes 10 ticks before and after it.
    events = [event(0, F(1, 4), 60), event(1, F(1, 2), 62)]
    notes = [note(60, 374), note(60, 394), note(62, 758)]
    pairs, _, result = match(notes, events)
    assert pairs == {0: 0, 2: 1}
    assert result == stats(3, 2, 2, 2)


def test_of_equally_good_start_offsets_the_smaller_wins_whatever_its_sign():
    # Notes 20 ticks before and 10 after the opening c': +10 wins over -20.
    events = [event(0, F(1, 4), 60), event(1, F(1, 2), 62)]
    notes = [note(60, 364), note(60, 394), note(62, 778)]
    pairs, _, _ = match(notes, events)
    assert pairs == {1: 0, 2: 1}


def test_an_opening_note_two_ticks_off_still_counts_for_a_start_offset():
    # c' e' open together; the MIDI has c' at 43 and e' at 45.  A delay of 43 and one of
    # 45 both place both; the smaller wins, and d' 2 ticks early pairs only with it.
    events = [event(0, 0, 60), event(1, 0, 64), event(2, F(1, 4), 62)]
    pairs, _, _ = match([note(60, 43), note(64, 45), note(62, 425)], events)
    assert pairs == {0: 0, 1: 1, 2: 2}


def test_without_an_opening_note_the_start_offset_is_zero():
    # No MIDI note has the opening c's pitch: d' 2 ticks late still pairs, 3 ticks not.
    events = [event(0, 0, 60), event(1, F(1, 4), 62), event(2, F(1, 2), 64)]
    pairs, _, _ = match([note(62, 386), note(64, 771)], events)
    assert pairs == {0: 1}


def test_the_start_offset_counts_every_opening_event_it_places():
    # The opening chord c' e' g': a delay of 43 places all three, a delay of 0 one.
    events = [
        event(0, 0, 60, grace=F(-1, 8)),
        event(1, 0, 64),
        event(2, 0, 67),
        event(3, F(1, 4), 64),
    ]
    notes = [note(60, 0), note(64, 43), note(67, 43), note(64, 427)]
    # A stray e' at 0 makes 0 a candidate too, but it places one opening event, not three.
    pairs, _, result = match([note(64, 0), *notes], events)
    assert pairs == {1: 0, 2: 1, 3: 2, 4: 3}
    assert result == stats(5, 4, 4, 4)


def test_the_start_offset_reaches_a_whole_note_and_no_further():
    events = [event(0, 0, 60), event(1, F(1, 4), 62)]
    pairs, _, _ = match([note(60, 1536), note(62, 1536 + 384)], events)
    assert pairs == {0: 0, 1: 1}
    pairs, _, result = match([note(60, 1537), note(62, 1537 + 384)], events)
    assert pairs == {}
    assert result == stats(2, 0, 2, 0)
    # Measured from the grace's own tick (-43), not from the beat.
    events = [event(0, 0, 65, grace=F(-1, 8)), event(1, 0, 60)]
    pairs, _, _ = match([note(65, 1493), note(60, 1536)], events)
    assert pairs == {0: 0, 1: 1}
    pairs, _, _ = match([note(65, 1494), note(60, 1537)], events)
    assert pairs == {}


def test_only_the_opening_moment_sets_the_start_offset():
    # d' at 1/4 with a note 10 ticks late must not move the opening c' away from 0.
    events = [event(0, 0, 60), event(1, F(1, 4), 62)]
    pairs, _, _ = match([note(60, 0), note(62, 394)], events)
    assert pairs == {0: 0}


# --------------------------------------------------------------------------- drift


def _beats(pitches: list[int]) -> list[LoggedEvent]:
    return [event(i, F(i, 4), pitch) for i, pitch in enumerate(pitches)]


def test_a_drift_of_the_midi_is_followed():
    # Eight c' quarters; from the fifth on the MIDI runs 10 ticks late.
    events = _beats([60] * 8)
    notes = [note(60, i * QUARTER + (10 if i >= 4 else 0)) for i in range(8)]
    pairs, _, result = match(notes, events)
    assert pairs == {i: i for i in range(8)}
    assert result == stats(8, 8, 8, 8)


def test_a_drift_back_and_then_further_is_followed_each_time():
    pitches = [60, 62, 64, 65] * 4
    offsets = [0] * 4 + [-10] * 4 + [20] * 4 + [30] * 4
    notes = [
        note(p, i * QUARTER + d) for i, (p, d) in enumerate(zip(pitches, offsets, strict=True))
    ]
    pairs, _, result = match(notes, _beats(pitches))
    assert pairs == {i: i for i in range(16)}
    assert result == stats(16, 16, 16, 16)


def test_a_drift_after_a_start_offset_is_followed():
    # A grace delays the MIDI by 43 ticks; from the third beat on it runs 10 later still.
    events = [event(0, 0, 65, grace=F(-1, 8))] + _beats([60, 62, 64, 65, 67])
    offsets = [43, 43, 53, 53, 53]
    notes = [note(65, 0)] + [
        note(p, i * QUARTER + d)
        for i, (p, d) in enumerate(zip([60, 62, 64, 65, 67], offsets, strict=True))
    ]
    pairs, _, result = match(notes, events)
    assert pairs == {i: i for i in range(6)}
    assert result == stats(6, 6, 6, 6)


def test_two_notes_are_not_enough_to_follow_a_drift():
    events = _beats([60, 62, 64, 65])
    notes = [note(60, 0), note(62, 384), note(64, 778), note(65, 1162)]
    pairs, _, result = match(notes, events)
    assert pairs == {0: 0, 1: 1}
    assert result == stats(4, 2, 4, 2)


def test_three_notes_are_enough_to_follow_a_drift():
    events = _beats([60, 62, 64, 65])
    notes = [note(60, 0), note(62, 394), note(64, 778), note(65, 1162)]
    pairs, _, result = match(notes, events)
    assert pairs == {0: 0, 1: 1, 2: 2, 3: 3}
    assert result == stats(4, 4, 4, 4)


def test_a_drift_needs_a_third_of_the_notes_that_voted():
    # After the opening c', three notes agree on +10, nine others scatter (a drift
    # each): 3 votes of 12 voters are fewer than a third.
    pitches = [60, 62, 64, 65] + list(range(70, 79))
    events = _beats(pitches)
    notes = [note(60, 0)] + [note(p, i * QUARTER + 10) for i, p in enumerate(pitches[1:4], 1)]
    notes += [note(p, (4 + i) * QUARTER + 20 + 7 * i) for i, p in enumerate(pitches[4:])]
    pairs, _, result = match(notes, events)
    assert pairs == {0: 0}
    assert result == stats(13, 1, 13, 1)
    # Without the scattered nine the three carry the drift.
    pairs, _, _ = match(notes[:4], events[:4])
    assert pairs == {0: 0, 1: 1, 2: 2, 3: 3}


def test_a_drift_beyond_a_quarter_note_is_not_followed():
    for late, followed in [(384, True), (385, False)]:
        events = _beats([60, 62, 64, 65])
        notes = [note(60, 0)] + [
            note(p, i * QUARTER + late) for i, p in [(1, 62), (2, 64), (3, 65)]
        ]
        pairs, _, _ = match(notes, events)
        assert pairs == ({0: 0, 1: 1, 2: 2, 3: 3} if followed else {0: 0}), late


def test_graces_do_not_vote_for_a_drift():
    # Three late graces (a drift to vote for if they counted) and no late beat.
    events = [event(0, 0, 60)] + [event(1 + i, F(1, 2), 62 + i, grace=F(-1, 8)) for i in range(3)]
    notes = [note(60, 0)] + [note(62 + i, 768 - 43 + 50) for i in range(3)]
    pairs, _, result = match(notes, events)
    assert pairs == {0: 0}
    assert result == stats(4, 1, 4, 1)


def test_a_drift_follows_graces_once_the_beats_agree_on_it():
    # Beats late by 10 carry the drift; the late grace before the last beat follows it.
    events = _beats([60, 62, 64, 65]) + [event(4, F(3, 4), 67, grace=F(-1, 8))]
    notes = [note(60, 0), note(62, 394), note(64, 778), note(65, 1162), note(67, 1152 - 43 + 10)]
    pairs, _, result = match(notes, events)
    assert pairs == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}
    assert result == stats(5, 5, 5, 5)


# --------------------------------------------------------------------------- table


def test_performed_table_rows():
    events = [
        event(5, F(1, 2), 64),  # logged first but played second: the second playing of 5
        event(5, 0, 64),
        event(7, F(1, 4), 60, grace=F(-1, 16)),
        event(8, F(1, 4), 60),
    ]
    notes = [note(64, 0), note(60, 362, 22), note(64, 768), note(61, 1000, 96)]
    pairs = {0: 1, 1: 2, 2: 0}
    table = performed_table(
        notes,
        events,
        pairs,
        notehead_of_event={5: 50, 7: 70},
        staff_of_event={5: 1, 8: 0},
    )
    assert table["event_id"].tolist() == [5, 7, 5, -1]
    assert table["notehead_id"].tolist() == [50, 70, 50, -1]
    assert table["occurrence"].tolist() == [0, 0, 1, 0]
    assert table["pitch"].tolist() == [64, 60, 64, 61]
    assert table["velocity"].tolist() == [80, 80, 80, 80]
    # The written moment of a matched note; the MIDI tick of an unmatched one.
    assert table["onset_whole"].tolist() == [0.0, 0.25 - 1 / 16, 0.5, 1000 / 1536]
    assert table["duration_whole"].tolist() == [0.25, 22 / 1536, 0.25, 96 / 1536]
    assert table["onset_sec"].tolist() == [0.0, 362 / 384, 2.0, 1000 / 384]
    assert table["offset_sec"].tolist() == [1.0, 384 / 384, 3.0, 1096 / 384]
    assert table["staff"].tolist() == [1, -1, 1, -1]


def test_performed_table_counts_playings_of_unmatched_notes_too():
    # Event 3 is played three times; the MIDI note of its first playing went unmatched.
    events = [event(3, 0, 60), event(3, F(1, 4), 60), event(3, F(1, 2), 60)]
    notes = [note(60, 384), note(60, 768)]
    table = performed_table(notes, events, {0: 1, 1: 2}, notehead_of_event={}, staff_of_event={})
    assert table["occurrence"].tolist() == [1, 2]
    assert table["notehead_id"].tolist() == [-1, -1]


def test_performed_table_orders_equal_moments_by_log_position():
    # Two playings of event 4 logged at one moment (a percent repeat's shape): log order.
    events = [event(4, 0, 60), event(4, 0, 60)]
    table = performed_table(
        [note(60, 0), note(60, 0)], events, {0: 1, 1: 0}, notehead_of_event={}, staff_of_event={}
    )
    assert table["occurrence"].tolist() == [1, 0]


def test_performed_table_uses_the_given_resolution():
    table = performed_table(
        [note(60, 480, 240)], [], {}, notehead_of_event={}, staff_of_event={}, ticks_per_whole=960
    )
    assert table["onset_whole"].tolist() == [0.5]
    assert table["duration_whole"].tolist() == [0.25]


# --------------------------------------------------------------------------- MIDI files


def _write_midi(path, tracks: list[list[mido.Message | mido.MetaMessage]], ticks_per_beat=384):
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    for messages in tracks:
        track = mido.MidiTrack()
        track.extend(messages)
        midi.tracks.append(track)
    midi.save(path)
    return path


def test_read_midi_notes_follows_the_tempo_map(tmp_path):
    path = _write_midi(
        tmp_path / "tempo.mid",
        [
            [  # conductor: a quarter a second, from tick 384 two, from tick 768 four a second
                mido.MetaMessage("set_tempo", tempo=1_000_000, time=0),
                mido.MetaMessage("set_tempo", tempo=500_000, time=384),
                mido.MetaMessage("set_tempo", tempo=250_000, time=384),
            ],
            [
                mido.Message("note_on", note=60, velocity=90, time=0),
                mido.Message("note_off", note=60, velocity=0, time=384),
                mido.Message("note_on", note=62, velocity=70, time=384),
                mido.Message("note_off", note=62, velocity=0, time=768),
            ],
        ],
    )
    notes = read_midi_notes(path)
    assert notes == [
        MidiNote(1, 60, 90, 0, 384, 0.0, 1.0),
        MidiNote(1, 62, 70, 768, 1536, 1.5, 2.0),
    ]


def test_read_midi_notes_without_tempo_plays_120_quarters_a_minute(tmp_path):
    path = _write_midi(
        tmp_path / "plain.mid",
        [
            [
                mido.Message("note_on", note=60, velocity=90, time=192),
                mido.Message("note_off", note=60, velocity=0, time=192),
            ]
        ],
        ticks_per_beat=96,
    )
    assert read_midi_notes(path) == [MidiNote(0, 60, 90, 192, 384, 1.0, 2.0)]


def test_read_midi_notes_tempo_change_after_tick_zero_keeps_the_default_before_it(tmp_path):
    path = _write_midi(
        tmp_path / "late.mid",
        [
            [
                mido.MetaMessage("set_tempo", tempo=250_000, time=384),
                mido.Message("note_on", note=60, velocity=90, time=0),
                mido.Message("note_off", note=60, velocity=0, time=384),
            ]
        ],
    )
    # 384 ticks at 0.5 s a quarter, then 384 ticks at 0.25 s.
    assert read_midi_notes(path) == [MidiNote(0, 60, 90, 384, 768, 0.5, 0.75)]


def test_read_midi_notes_pairs_overlaps_first_in_first_out(tmp_path):
    path = _write_midi(
        tmp_path / "overlap.mid",
        [
            [
                mido.MetaMessage("set_tempo", tempo=1_000_000, time=0),
                mido.Message("note_on", note=60, velocity=90, time=0),
                mido.Message("note_on", note=60, velocity=50, time=192),  # the same key again
                mido.Message("note_on", note=60, velocity=0, time=192),  # note_on 0: a note-off
                mido.Message("note_off", note=60, velocity=0, time=384),
                mido.Message("note_off", note=61, velocity=0, time=0),  # never started: ignored
                mido.Message("note_on", note=60, velocity=40, channel=1, time=0),
                mido.Message("note_off", note=60, velocity=0, channel=1, time=96),
            ]
        ],
    )
    assert read_midi_notes(path) == [
        MidiNote(0, 60, 90, 0, 384, 0.0, 1.0),
        MidiNote(0, 60, 50, 192, 768, 0.5, 2.0),
        MidiNote(0, 60, 40, 768, 864, 2.0, 2.25),
    ]


def test_read_midi_notes_sorts_by_onset_then_track_then_pitch(tmp_path):
    path = _write_midi(
        tmp_path / "order.mid",
        [
            [
                mido.Message("note_on", note=67, velocity=1, time=0),
                mido.Message("note_on", note=64, velocity=2, time=0),
                mido.Message("note_off", note=67, velocity=0, time=384),
                mido.Message("note_off", note=64, velocity=0, time=0),
            ],
            [
                mido.Message("note_on", note=48, velocity=3, time=0),
                mido.Message("note_off", note=48, velocity=0, time=96),
                mido.Message("note_on", note=50, velocity=4, time=0),
                mido.Message("note_off", note=50, velocity=0, time=96),
            ],
        ],
    )
    notes = read_midi_notes(path)
    assert [(n.onset_tick, n.track, n.pitch, n.velocity) for n in notes] == [
        (0, 0, 64, 2),
        (0, 0, 67, 1),
        (0, 1, 48, 3),
        (96, 1, 50, 4),
    ]


def test_performed_table_of_a_read_midi_file_round_trips_seconds(tmp_path):
    """read_midi_notes -> match_notes -> performed_table on one small file, exact values."""
    path = _write_midi(
        tmp_path / "piece.mid",
        [
            [mido.MetaMessage("set_tempo", tempo=1_000_000, time=0)],
            [
                mido.Message("note_on", note=65, velocity=90, time=0),
                mido.Message("note_off", note=65, velocity=0, time=43),
                mido.Message("note_on", note=60, velocity=90, time=0),
                mido.Message("note_off", note=60, velocity=0, time=384),
            ],
        ],
    )
    notes = read_midi_notes(path)
    events = [event(0, 0, 65, grace=F(-1, 8)), event(1, 0, 60)]
    pairs, _, _ = match_notes(notes, events, continuation_ids=set())
    table = performed_table(
        notes, events, pairs, notehead_of_event={0: 0, 1: 1}, staff_of_event={0: 0, 1: 0}
    )
    assert table["notehead_id"].tolist() == [0, 1]
    assert table["onset_whole"].tolist() == [-0.125, 0.0]
    np.testing.assert_array_equal(table["onset_sec"], [0.0, 43 / 384])
