"""Packed pairs and whole-batch cutting equal PairPool's one-pair-at-a-time cuts, to the pixel."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from msmd_builder.core.errors import ConfigError, FormatError  # noqa: E402
from msmd_builder.dataset.packed import PackedPairs, pack_pool  # noqa: E402
from msmd_builder.dataset.pairs import (  # noqa: E402
    PairPool,
    PairSettings,
    SheetAugmentation,
    cut_excerpt,
    cut_snippet,
)
from msmd_builder.train.batches import Augmentation, PairBatcher  # noqa: E402
from tests.dataset.test_pairs import _piece  # noqa: E402


def _unaligned_piece():
    """Three performances; the third lacks the first note, so rows differ from the others."""
    piece = _piece(n_performances=3)
    third = piece.performances[2]
    keep = np.arange(1, len(third.events))
    shorter = dataclasses.replace(
        third, events=third.events[keep], onset_frame=third.onset_frame[keep]
    )
    return dataclasses.replace(piece, performances=[*piece.performances[:2], shorter])


def _f16(array):
    """What the packed pairs hold of a spectrogram: its values rounded to float16."""
    return np.asarray(array).astype(np.float16).astype(np.float32)


def _pieces():
    other = dataclasses.replace(_piece(n_performances=2, n_frames=450), piece_id="Other__Op2__b")
    return [_unaligned_piece(), other]


def test_unaugmented_batches_equal_the_pool():
    pool = PairPool(_pieces(), PairSettings(context_frames=84))
    batcher = PairBatcher(pack_pool(pool))
    idx = np.array([5, 0, len(pool) - 1, 3, 7, 12])
    sheets, audio = batcher.batch(idx)
    expected_sheets, expected_audio = pool.batch(idx)
    assert sheets.shape == (6, 1, 80, 100) and audio.shape == (6, 1, 92, 84)
    assert sheets.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(sheets.numpy(), expected_sheets)
    np.testing.assert_array_equal(audio.numpy(), _f16(expected_audio))
    assert np.abs(audio.numpy() - expected_audio).max() <= 2**-11 * expected_audio.max()
    np.testing.assert_array_equal(batcher.sheets(idx).numpy(), expected_sheets)
    _, crossed = batcher.batch(idx[:2], audio_indices=idx[:2][::-1])
    np.testing.assert_array_equal(crossed.numpy(), _f16(expected_audio[:2][::-1]))
    with pytest.raises(ConfigError, match="audio_indices must have the length"):
        batcher.batch(idx, audio_indices=idx[:2])


def test_augmented_batches_equal_the_cutting_functions():
    pieces = _pieces()
    pool = PairPool(pieces, PairSettings(context_frames=42))
    batcher = PairBatcher(
        pack_pool(pool, alternatives=True),
        sheet_augmentation=SheetAugmentation(),
        audio_augmentation=True,
    )
    idx = np.arange(len(pool))
    aug = batcher.draw(idx, np.random.default_rng(4))
    assert np.all((aug.scale >= 0.95) & (aug.scale <= 1.05))
    assert set(np.unique(aug.dx)) <= set(range(-5, 6)) and len(np.unique(aug.dx)) > 3
    sheets, audio = batcher.batch(idx, aug)
    moved = 0
    for j, i in enumerate(idx):
        e = pool.entries[i]
        score = pool.score(int(e["piece"]))
        expected = cut_snippet(
            score, float(e["x_px"]), scale=aug.scale[j], dx_px=int(aug.dx[j]), dy_px=int(aug.dy[j])
        )
        np.testing.assert_array_equal(sheets[j, 0].numpy(), expected)
        # the same note in the drawn performance, or the pair's own if that one lacks it
        perfs = pool.performances(int(e["piece"]))
        own = perfs[int(e["performance"])]
        event_id = own.events["event_id"][int(e["event"])]
        other = perfs[int(aug.performance[j])]
        rows = np.flatnonzero(other.events["event_id"] == event_id)
        perf, onset = (other, other.onset_frame[rows[0]]) if rows.size else (own, e["onset_frame"])
        moved += perf is not own
        expected = cut_excerpt(perf.spectrogram, onset, 42)
        np.testing.assert_array_equal(audio[j, 0].numpy(), _f16(expected))
    assert moved > len(idx) // 3
    # the first note of the first piece is missing from its third performance: it stays
    entries = pool.entries
    first = np.flatnonzero(
        (entries["piece"] == 0) & (entries["performance"] < 2) & (entries["event"] == 0)
    )
    assert len(first) == 2
    assert np.all(batcher.packed.alternatives[first, 2] == -1)
    assert np.all(batcher.packed.piece_segments[1] == [3, 4, -1])
    with pytest.raises(ConfigError, match="needs pairs packed with alternatives"):
        PairBatcher(pack_pool(pool), audio_augmentation=True)


def test_draws_are_seeded():
    pool = PairPool(_pieces())
    batcher = PairBatcher(
        pack_pool(pool, alternatives=True),
        sheet_augmentation=SheetAugmentation(),
        audio_augmentation=True,
    )
    idx = np.arange(8)
    a, b = (batcher.draw(idx, np.random.default_rng(1)) for _ in range(2))
    for field in ("scale", "dx", "dy", "performance"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    still = Augmentation(np.ones(8), np.zeros(8, np.int64), np.zeros(8, np.int64), None)
    np.testing.assert_array_equal(batcher.batch(idx, still)[0], batcher.batch(idx)[0])


def test_subset_keeps_the_pairs_and_only_their_audio(tmp_path):
    pool = PairPool(_pieces(), PairSettings(context_frames=42))
    packed = pack_pool(pool)
    idx = np.array([9, 2, 4, 7])  # pair 7 has its onset beyond its spectrogram: zeros
    subset = packed.subset(idx)
    assert len(subset) == 4 and subset.spectrogram.shape[0] <= 4 * 42
    assert subset.segment_frames[list(idx).index(7)] == 0
    sheets, audio = PairBatcher(subset).batch(np.arange(4))
    expected_sheets, expected_audio = pool.batch(idx)
    np.testing.assert_array_equal(sheets.numpy(), expected_sheets)
    np.testing.assert_array_equal(audio.numpy(), _f16(expected_audio))
    assert not audio[list(idx).index(7)].any()

    subset.save(tmp_path / "pairs.npz")
    again = PackedPairs.load(tmp_path / "pairs.npz")
    for field in dataclasses.fields(PackedPairs):
        np.testing.assert_array_equal(getattr(again, field.name), getattr(subset, field.name))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not a readable .npz"):
        PackedPairs.load(tmp_path / "bad.npz")
