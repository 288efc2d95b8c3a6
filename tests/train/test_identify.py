"""msmd-build identify's parts: reading audio, the snippet index, the vote, the errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
soundfile = pytest.importorskip("soundfile")

from msmd_builder.core.errors import AudioInputError  # noqa: E402
from msmd_builder.dataset.pairs import evenly_spaced_excerpts  # noqa: E402
from msmd_builder.stages.perform.spectrogram import compute_spectrogram  # noqa: E402
from msmd_builder.train.evaluate import embed_view  # noqa: E402
from msmd_builder.train.identify import (  # noqa: E402
    SnippetIndex,
    build_index,
    format_ranking,
    identify,
    read_recording,
)
from msmd_builder.train.metrics import similarity  # noqa: E402
from msmd_builder.train.models import build_model  # noqa: E402
from tests.dataset.test_pairs import _piece  # noqa: E402


def _tone(seconds: float, rate: int, hz: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_reading_audio_gives_msmds_spectrogram(tmp_path):
    mono = _tone(3.0, 22050)
    soundfile.write(tmp_path / "mono.wav", mono, 22050, subtype="FLOAT")
    soundfile.write(tmp_path / "stereo.flac", np.stack([mono, mono], axis=1), 22050)
    spec, duration = read_recording(tmp_path / "mono.wav")
    assert duration == 3.0
    np.testing.assert_array_equal(spec, compute_spectrogram(mono))
    stereo, _ = read_recording(tmp_path / "stereo.flac")  # 16-bit: equal up to quantization
    assert stereo.shape == spec.shape and np.abs(stereo - spec).max() < 0.01
    soundfile.write(tmp_path / "cd.wav", _tone(3.0, 44100), 44100, subtype="FLOAT")
    resampled, _ = read_recording(tmp_path / "cd.wav")
    assert abs(resampled.shape[1] - spec.shape[1]) <= 1
    middle = slice(10, 50)
    np.testing.assert_array_equal(resampled[:, middle].argmax(0), spec[:, middle].argmax(0))


def test_bad_recordings_are_classified(tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(AudioInputError, match=r"^\[unreadable\] .*notes.wav") as info:
        read_recording(tmp_path / "notes.wav")
    assert info.value.kind == "unreadable"
    with pytest.raises(AudioInputError, match=r"^\[unreadable\]"):
        read_recording(tmp_path / "missing.flac")
    soundfile.write(tmp_path / "silence.wav", np.zeros(3 * 22050, np.float32), 22050)
    with pytest.raises(AudioInputError, match=r"^\[silent\] .*3.0 s without a sample") as info:
        read_recording(tmp_path / "silence.wav")
    assert info.value.kind == "silent"

    model = build_model("2018", 42, maps=(4, 4, 4, 4)).eval()
    index = build_index(model, [_piece()])
    soundfile.write(tmp_path / "short.wav", _tone(1.0, 44100), 44100)
    spec, _ = read_recording(tmp_path / "short.wav")
    assert spec.shape[1] < 42
    with pytest.raises(AudioInputError, match=r"^\[too-short\] .*shorter than one 2.1 s") as info:
        identify(model, spec, index)
    assert info.value.kind == "too-short"
    soundfile.write(tmp_path / "blip.wav", _tone(0.05, 22050), 22050)
    spec, _ = read_recording(tmp_path / "blip.wav")  # shorter than one STFT window
    with pytest.raises(AudioInputError, match=r"^\[too-short\]"):
        identify(model, spec, index)
    with pytest.raises(ValueError, match="kind must be one of"):
        AudioInputError("loud", "x")


def test_index_and_vote(tmp_path):
    torch.manual_seed(0)
    model = build_model("2018", 42, maps=(4, 4, 4, 4)).eval()
    other = dataclasses.replace(_piece(n_frames=300), piece_id="Other__Op2__b")
    pieces = [_piece(), dataclasses.replace(other, metadata={"title": "B"}), _piece()]
    index = build_index(model, pieces)  # the same id twice: indexed once
    # per piece, the reference performance's distinct onsets: noteheads 0, 1, 2 (of the
    # chord 2/3) and 4; 0 and 1 on page 1, 2 and 4 on page 2, each the page's first system
    assert index.piece_ids == ["Synthetic__Op1__piece", "Other__Op2__b"]
    assert index.titles == ["", "B"]
    assert list(index.piece) == [0] * 4 + [1] * 4
    assert list(index.page) == [1, 1, 2, 2] * 2 and list(index.system) == [1] * 8
    assert list(index.book) == [0] * 8
    assert index.embeddings.shape == (8, 32)
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1, rtol=1e-5)

    index.save(tmp_path / "index.npz")
    again = SnippetIndex.load(tmp_path / "index.npz")
    assert again.piece_ids == index.piece_ids
    np.testing.assert_array_equal(again.embeddings, index.embeddings)

    spectrogram = np.random.default_rng(1).random((92, 300), dtype=np.float32)
    ranking = identify(model, spectrogram, index, excerpts=10, neighbours=5)
    # the vote, recomputed: each excerpt's 5 most similar snippets vote for their piece
    queries = embed_view(model, "audio", evenly_spaced_excerpts(spectrogram, 10, 42), False)
    top5 = np.argsort(-similarity(queries, index.embeddings), axis=1, kind="stable")[:, :5]
    votes = np.bincount(index.piece[top5].ravel(), minlength=2)
    assert {r["piece_id"]: r["votes"] for r in ranking} == dict(
        zip(index.piece_ids, votes.tolist(), strict=True)
    )
    assert [r["rank"] for r in ranking] == [1, 2]
    assert ranking[0]["votes"] >= ranking[1]["votes"]
    assert sum(r["votes"] for r in ranking) == 50
    assert sum(r["share"] for r in ranking) == pytest.approx(1.0)
    for row in ranking:
        best = row["best"]
        if row["votes"]:
            assert (best["page"], best["system"]) in {(1, 1), (2, 1)}
            assert 0 < best["votes"] <= row["votes"]
    assert len(identify(model, spectrogram, index, excerpts=10, neighbours=5, top=1)) == 1
    table = format_ranking(
        {
            "audio": "x.wav",
            "duration_s": 15.0,
            "excerpts": 10,
            "neighbours": 5,
            "index": {"snippets": 8, "pieces": 2},
            "ranking": ranking,
        }
    )
    assert f"| 1 | {ranking[0]['piece_id']} |" in table
