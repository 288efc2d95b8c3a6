"""Tests of msmd_builder.dataset.pairs on a synthetic piece whose geometry is known exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from msmd_builder.core.errors import ConfigError
from msmd_builder.core.records import PerformanceRecord, PieceRecord
from msmd_builder.core.tables import NOTEHEAD_DTYPE, SYSTEM_DTYPE, empty_performed_events
from msmd_builder.dataset.pairs import (
    NO_SHEET_AUGMENTATION,
    SNIPPET_SHAPE,
    STRIP_HEIGHT_PX,
    PairPool,
    PairSettings,
    SheetAugmentation,
    cut_excerpt,
    cut_snippet,
    evenly_spaced,
    evenly_spaced_excerpts,
    evenly_spaced_snippets,
    unroll_systems,
)

PAGE_H, PAGE_W = 600, 835
# (page, x0, y0, x1, y1) of the two systems; centres at y = 150 (page 0) and y = 300 (page 1)
SYSTEMS = [(0, 60, 105, 775, 195), (1, 60, 255, 775, 345)]
SYSTEM_W = 775 - 60
# noteheads: (system, x centre, y centre); the marks are 8 x 6 px black boxes
HEADS = [(0, 300, 150), (0, 70, 150), (1, 500, 300), (1, 500, 300), (1, 760, 320)]


def _piece(n_performances: int = 2, n_frames: int = 200) -> PieceRecord:
    pages = [np.full((PAGE_H, PAGE_W), 255, dtype=np.uint8) for _ in range(2)]
    systems = np.zeros(len(SYSTEMS), dtype=SYSTEM_DTYPE)
    for i, (page, x0, y0, x1, y1) in enumerate(SYSTEMS):
        systems[i] = (i, 0, page, 2, 0, 0, 0, 0, x0, y0, x1, y1)
    heads = np.zeros(len(HEADS), dtype=NOTEHEAD_DTYPE)
    for i, (system, x, y) in enumerate(HEADS):
        page = SYSTEMS[system][0]
        heads[i]["notehead_id"] = i
        heads[i]["system"] = system
        heads[i]["page"] = page
        heads[i]["x0_px"], heads[i]["x1_px"] = x - 4, x + 4
        heads[i]["y0_px"], heads[i]["y1_px"] = y - 3, y + 3
        pages[page][y - 3 : y + 3, x - 4 : x + 4] = 0
    # events in playing order: heads 0..4, one unaligned note, and a chord (heads 2, 3)
    events = empty_performed_events(6)
    events["event_id"] = np.arange(6)
    events["notehead_id"] = [0, 1, 2, 3, -1, 4]
    onsets = np.array([1.0, 2.0, 3.0, 3.0, 4.0, 9.5])
    events["onset_sec"] = onsets
    events["offset_sec"] = onsets + 0.4
    performances = []
    for k in range(n_performances):
        spec = np.tile(np.arange(1, n_frames + 1, dtype=np.float32), (92, 1)) + 1000 * k
        perf_events = events.copy()
        perf_events["onset_sec"] = onsets * (1 + k)  # performance k is k + 1 times slower
        performances.append(
            PerformanceRecord(
                performance_id=f"p__tempo-{1000 // (k + 1)}__sf",
                plan={"tempo_ratio": 1.0 / (k + 1)},
                spectrogram=spec,
                events=perf_events,
                onset_frame=np.ceil(perf_events["onset_sec"] * 20).astype(np.int64),
                duration_sec=n_frames / 20,
            )
        )
    return PieceRecord(
        piece_id="Synthetic__Op1__piece",
        metadata={},
        page_keys=np.array([[0, 0], [0, 1]], dtype=np.int16),
        pages=pages,
        systems=systems,
        noteheads=heads,
        performed=events,
        performances=performances,
    )


def _ink_centre(snippet: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(snippet > 0.5)
    return rows.mean(), cols.mean()


def test_unrolled_strip_places_systems_side_by_side():
    score = unroll_systems(_piece())
    assert score.strip.shape == (STRIP_HEIGHT_PX, 2 * SYSTEM_W + 2 * score.pad_px)
    assert score.width_px == 2 * SYSTEM_W
    assert list(score.system_x0_px) == [0, SYSTEM_W]
    np.testing.assert_allclose(
        score.notehead_x_px, [240, 10, SYSTEM_W + 440, SYSTEM_W + 440, SYSTEM_W + 700]
    )
    # the first mark sits at the system's centre row: strip rows 97..102, ink = 255
    x = score.pad_px + 240
    assert np.all(score.strip[97:103, x - 4 : x + 4] == 255)
    assert score.strip[96, x] == 0 and score.strip[103, x] == 0
    # the last mark is 20 px below the second system's centre
    x = score.pad_px + SYSTEM_W + 700
    assert np.all(score.strip[117:123, x - 4 : x + 4] == 255)
    assert score.strip[:, : score.pad_px].max() == 0  # padding is blank paper


def test_snippet_has_the_notehead_at_its_centre():
    score = unroll_systems(_piece())
    snippet = cut_snippet(score, score.notehead_x_px[0])
    assert snippet.shape == SNIPPET_SHAPE == (80, 100)
    assert snippet.dtype == np.float32
    assert snippet.max() == pytest.approx(1.0) and snippet.min() == 0.0
    row, col = _ink_centre(snippet)
    assert abs(row - 39.5) <= 0.5 and abs(col - 49.5) <= 0.5
    assert np.count_nonzero(snippet) <= 5 * 6  # just the mark (160 x 200 -> 80 x 100)


def test_snippet_near_the_strip_start_is_padded_with_paper():
    score = unroll_systems(_piece())
    snippet = cut_snippet(score, score.notehead_x_px[1])  # 10 px into the strip
    row, col = _ink_centre(snippet)
    assert abs(row - 39.5) <= 0.5 and abs(col - 49.5) <= 0.5
    assert snippet[:, :40].max() == 0.0  # 90 px of padding before the strip, downsized


def test_snippet_of_an_off_centre_mark():
    score = unroll_systems(_piece())
    row, col = _ink_centre(cut_snippet(score, score.notehead_x_px[4]))
    assert abs(row - (39.5 + 10)) <= 0.5 and abs(col - 49.5) <= 0.5


def test_snippet_scaling_and_shifts_move_the_mark():
    score = unroll_systems(_piece())
    x = score.notehead_x_px[4]  # 20 px below centre: scaling moves it
    row0, col0 = _ink_centre(cut_snippet(score, x))
    row, col = _ink_centre(cut_snippet(score, x, dx_px=4, dy_px=-4))
    assert (row - row0, col - col0) == pytest.approx((2.0, -2.0), abs=0.5)
    row, _ = _ink_centre(cut_snippet(score, x, scale=1.05))
    assert row - 40 == pytest.approx((row0 - 40) * 1.05, abs=0.6)
    row, _ = _ink_centre(cut_snippet(score, x, scale=0.95))
    assert row - 40 == pytest.approx((row0 - 40) * 0.95, abs=0.6)


def test_excerpt_is_centred_on_the_onset_and_zero_padded():
    spec = np.tile(np.arange(1, 101, dtype=np.float32), (92, 1))  # frame f holds f + 1
    ex = cut_excerpt(spec, 50, 42)
    assert ex.shape == (92, 42) and ex.dtype == np.float32
    assert ex[0, 21] == 51 and ex[0, 0] == 30 and ex[0, -1] == 71
    start = cut_excerpt(spec, 3, 42)
    assert np.all(start[:, :18] == 0) and start[0, 18] == 1 and start[0, 21] == 4
    end = cut_excerpt(spec, 98, 168)
    assert end[0, 84] == 99 and end[0, 85] == 100 and np.all(end[:, 86:] == 0)
    assert end[0, 0] == 15  # starts at frame 98 - 84
    assert np.all(cut_excerpt(spec, 500, 42) == 0)


def test_pool_indexes_aligned_events_in_order():
    piece = _piece()
    pool = PairPool([piece], PairSettings(context_frames=42))
    # per performance: heads 0, 1, one of the chord (2, 3), 4; the unaligned note is skipped
    assert len(pool) == 8
    assert list(pool.entries["notehead_id"]) == [0, 1, 2, 4, 0, 1, 2, 4]
    assert list(pool.entries["performance"]) == [0] * 4 + [1] * 4
    assert list(pool.entries["onset_frame"][:4]) == [20, 40, 60, 190]
    assert list(pool.entries["onset_frame"][4:]) == [40, 80, 120, 380]
    every = PairPool([piece], PairSettings(context_frames=42, one_per_onset=False))
    assert list(every.entries["notehead_id"][:5]) == [0, 1, 2, 3, 4]
    assert pool.piece_ids == [piece.piece_id]
    only_first = PairPool(
        [piece], keep_performance=lambda p: p.performance_id == piece.performances[0].performance_id
    )
    assert len(only_first) == 4


def test_pool_pairs_match_the_cutting_functions():
    piece = _piece()
    pool = PairPool([piece], PairSettings(context_frames=84))
    score = unroll_systems(piece)
    pairs = list(pool)
    assert len(pairs) == len(pool)
    for i, (snippet, excerpt) in enumerate(pairs):
        e = pool.entries[i]
        perf = piece.performances[e["performance"]]
        x = score.notehead_x_px[e["notehead_id"]]
        np.testing.assert_array_equal(snippet, cut_snippet(score, x))
        np.testing.assert_array_equal(excerpt, cut_excerpt(perf.spectrogram, e["onset_frame"], 84))
        inside = e["onset_frame"] < perf.spectrogram.shape[1]
        expected = e["onset_frame"] + 1 + 1000 * e["performance"] if inside else 0
        assert excerpt[0, 42] == expected
    sheets, audio = pool.batch([3, 0, 5])
    assert sheets.shape == (3, 1, 80, 100) and audio.shape == (3, 1, 92, 84)
    np.testing.assert_array_equal(sheets[1, 0], pairs[0][0])
    np.testing.assert_array_equal(audio[2, 0], pairs[5][1])
    _, crossed = pool.batch([0, 1], audio_indices=[1, 0])
    np.testing.assert_array_equal(crossed[0, 0], pairs[1][1])


def test_augmentation_is_seeded_and_changes_the_pair():
    piece = _piece(n_performances=3)
    pool = PairPool([piece], PairSettings(context_frames=42))
    plain = pool.get(2)
    a = [pool.get(2, augment=True, rng=np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(a[0][0], a[1][0])
    np.testing.assert_array_equal(a[0][1], a[1][1])
    rng = np.random.default_rng(0)
    draws = [pool.get(2, augment=True, rng=rng) for _ in range(30)]
    assert any(not np.array_equal(s, plain[0]) for s, _ in draws)
    # audio augmentation: the same note (head 2) from every performance of the piece
    offsets = {int(ex[0, 21] // 1000) for _, ex in draws}
    assert offsets == {0, 1, 2}
    for _, ex in draws:
        k = int(ex[0, 21] // 1000)
        assert ex[0, 21] - 1000 * k == 60 * (1 + k) + 1
    with pytest.raises(ConfigError, match="augment=True needs an rng"):
        pool.get(0, augment=True)


def test_sheet_only_augmentation_keeps_the_audio():
    pool = PairPool(
        [_piece()],
        PairSettings(sheet_augmentation=SheetAugmentation(), audio_augmentation=False),
    )
    rng = np.random.default_rng(1)
    for _ in range(10):
        np.testing.assert_array_equal(pool.get(1, True, rng)[1], pool.get(1)[1])
    still = PairPool([_piece()], PairSettings(sheet_augmentation=NO_SHEET_AUGMENTATION))
    np.testing.assert_array_equal(still.get(1, True, rng)[0], still.get(1)[0])


def test_performances_listing_notes_differently_still_augment():
    piece = _piece(n_performances=2)
    second = piece.performances[1]
    order = np.array([5, 4, 3, 2, 1, 0])
    shuffled = dataclasses.replace(
        second, events=second.events[order], onset_frame=second.onset_frame[order]
    )
    piece = dataclasses.replace(piece, performances=[piece.performances[0], shuffled])
    pool = PairPool([piece])
    rng = np.random.default_rng(3)
    for _ in range(20):
        _, ex = pool.get(2, augment=True, rng=rng)  # head 2 at frame 60 (or 120 in the second)
        assert ex[0, 21] in (61, 1121)


def test_evenly_spaced():
    assert list(evenly_spaced(10, 4)) == [0, 2, 5, 7]
    assert list(evenly_spaced(3, 10)) == [0, 1, 2]
    assert len(evenly_spaced(0, 5)) == 0
    idx = evenly_spaced(123_457, 2000)
    assert len(np.unique(idx)) == 2000 and idx[0] == 0 and idx[-1] < 123_457


def test_identification_queries_cover_the_whole_piece():
    spec = np.tile(np.arange(1, 301, dtype=np.float32), (92, 1))
    ex = evenly_spaced_excerpts(spec, 5, 42)
    assert ex.shape == (5, 92, 42)
    assert ex[0, 0, 0] == 1 and ex[-1, 0, -1] == 300
    short = evenly_spaced_excerpts(spec[:, :10], 3, 42)
    assert short.shape == (3, 92, 42) and np.all(short[:, :, 10:] == 0)
    score = unroll_systems(_piece())
    snippets = evenly_spaced_snippets(score, 7)
    assert snippets.shape == (7, 80, 100)


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="context_frames must be >= 2, got 1"):
        PairSettings(context_frames=1)
    with pytest.raises(ConfigError, match=r"scale range must lie in \[0.5, 2\], got \(1.1, 0.9\)"):
        SheetAugmentation(scale=(1.1, 0.9))
