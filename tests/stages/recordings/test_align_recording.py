"""Aligning known-truth recordings of example pieces: error bounds, playing orders, refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.core.errors import (
    NotBuiltError,
    RecordingMismatchError,
    SilentRecordingError,
    UnreadableRecordingError,
)
from msmd_builder.core.workdir import PieceDir
from msmd_builder.dataset.built import BuiltPiece
from msmd_builder.stages.perform.npz import load_performance
from msmd_builder.stages.recordings.simulate import Degradation
from msmd_builder.stages.recordings.stage import RecordingSettings, align_recording
from tests.helpers.writes import file_writes
from tests.stages.recordings.conftest import RONDINO, VOLTA, orders_of, record

pytestmark = pytest.mark.slow


def onset_errors(result, truth: np.ndarray) -> np.ndarray:
    events = load_performance(result.path)["events"]
    assert len(events) == len(truth)
    assert np.array_equal(events["event_id"], truth["event_id"])
    return np.abs(events["onset_sec"] - truth["onset_sec"])


def test_clean_humanized_recording_meets_the_error_bounds(recordings_work, tmp_path):
    piece_dir = PieceDir.of(recordings_work, VOLTA)
    orders = orders_of(piece_dir)
    assert orders[0].name == "all repeats"
    path = tmp_path / "volta-clean.wav"
    truth = record(piece_dir, orders[0], path, tempo_ratio=0.9)
    result = align_recording(piece_dir, path, register=False)
    errors = onset_errors(result, truth)
    assert result.summary["playing_order"] == "all repeats"
    assert np.mean(errors <= 0.05) >= 0.95
    assert np.median(errors) <= 0.02
    # The performance file is a performance like a synthesized one, flagged as a recording.
    data = load_performance(result.path)
    assert data["plan"].soundfont == "recording"
    assert 0.8 < data["plan"].tempo_ratio < 1.0  # played at 0.9 of the score's tempo
    assert data["spectrogram"].shape[0] == 92
    assert np.array_equal(data["onset_frame"], np.ceil(data["events"]["onset_sec"] * 20))
    assert data["confidence"].shape == (len(truth),)
    assert json.loads(data["recording_json"])["method"].startswith("synctoolbox MrMsDTW")
    assert result.audio_path.is_file()
    # A second call finds the file up to date.
    again = align_recording(piece_dir, path, register=False)
    assert again.skipped and again.cache_key == result.cache_key


def test_degraded_recording_with_tuning_offset_and_applause(recordings_work, tmp_path):
    piece_dir = PieceDir.of(recordings_work, VOLTA)
    degradation = Degradation(
        tuning_cents=-40.0,
        highpass_hz=120.0,
        peak_hz=2500.0,
        peak_gain_db=5.0,
        shelf_gain_db=-6.0,
        reverb_room=0.7,
        reverb_wet=0.3,
        snr_db=20.0,
        lead_sec=3.0,
        trail_sec=4.0,
        lead_kind="applause",
    )
    path = tmp_path / "volta-degraded.flac"
    truth = record(
        piece_dir,
        orders_of(piece_dir)[0],
        path,
        degradation=degradation,
        tempo_ratio=1.15,
        rate=44100,
        channels=2,
    )
    result = align_recording(piece_dir, path, register=False)
    errors = onset_errors(result, truth)
    assert np.mean(errors <= 0.05) >= 0.90
    assert result.summary["tuning_cents"] == pytest.approx(-40.0, abs=6.0)
    assert result.summary["file"]["sample_rate"] == 44100
    assert result.summary["file"]["channels"] == 2


def test_auto_finds_the_skipped_repeats(recordings_work, tmp_path):
    piece_dir = PieceDir.of(recordings_work, VOLTA)
    orders = orders_of(piece_dir)
    skipped = next(o for o in orders if o.name == "no repeats")
    assert len(skipped.events) < len(orders[0].events)
    path = tmp_path / "volta-no-repeats.ogg"
    truth = record(piece_dir, skipped, path, tempo_ratio=1.1, rate=32000)
    result = align_recording(piece_dir, path, register=False)
    assert result.summary["playing_order"] == "no repeats"
    costs = {o["name"]: o["cost"] for o in result.summary["orders"]}
    assert set(costs) == {o.name for o in orders}
    assert min(costs, key=costs.get) == "no repeats"
    errors = onset_errors(result, truth)
    assert np.mean(errors <= 0.05) >= 0.95
    # --repeats unfolded insists on the build's order, which does not match this take.
    with pytest.raises(RecordingMismatchError, match=r"best playing order \(all repeats\)"):
        align_recording(piece_dir, path, RecordingSettings(repeats="unfolded"), register=False)
    # --repeats folded plays every repeated passage once, as the player did.
    folded = align_recording(piece_dir, path, RecordingSettings(repeats="folded"), register=False)
    assert [o["name"] for o in folded.summary["orders"]] == ["no repeats"]
    # Aligning again (force) rewrites the recording's performance but reuses the
    # cached playing orders and their references: the same orders, files untouched.
    caches = file_writes(piece_dir.recordings)
    assert "orders.npz" in caches and len(caches) == len(orders) + 1
    again = align_recording(piece_dir, path, register=False, force=True)
    assert file_writes(piece_dir.recordings) == caches
    assert again.summary["orders"] == result.summary["orders"]
    assert np.array_equal(
        load_performance(again.path)["events"], load_performance(result.path)["events"]
    )
    # A damaged orders cache is rebuilt, and gives the same orders.
    piece_dir.recording_orders.write_bytes(b"damaged")
    rebuilt = align_recording(piece_dir, path, register=False, force=True)
    assert rebuilt.summary["orders"] == result.summary["orders"]
    assert file_writes(piece_dir.recordings)["orders.npz"] != caches["orders.npz"]


def test_recording_of_another_piece_is_refused(recordings_work, tmp_path):
    rondino = PieceDir.of(recordings_work, RONDINO)
    path = tmp_path / "rondino.wav"
    record(rondino, orders_of(rondino)[0], path)
    with pytest.raises(RecordingMismatchError, match=r"does not match ExampleA__O1__volta-minuet"):
        align_recording(PieceDir.of(recordings_work, VOLTA), path, register=False)
    # ... while it matches its own piece.
    assert align_recording(rondino, path, register=False).summary["cost"] < 0.2


def test_bad_input_is_classified(recordings_work, tmp_path):
    import soundfile

    piece_dir = PieceDir.of(recordings_work, VOLTA)
    silent = tmp_path / "silent.wav"
    soundfile.write(str(silent), np.zeros(5 * 22050, dtype=np.float32), 22050)
    with pytest.raises(SilentRecordingError, match="silent"):
        align_recording(piece_dir, silent, register=False)
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n")
    with pytest.raises(UnreadableRecordingError, match="not an audio file"):
        align_recording(piece_dir, text, register=False)
    with pytest.raises(NotBuiltError, match="ExampleB__O7__chord-prelude is not built"):
        align_recording(PieceDir.of(recordings_work, "ExampleB__O7__chord-prelude"), silent)


def test_listed_recording_is_a_test_performance_of_the_piece(recordings_work, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(recordings_work, work)
    piece_dir = PieceDir.of(work, RONDINO)
    path = tmp_path / "rondino take.flac"
    record(piece_dir, orders_of(piece_dir)[0], path, tempo_ratio=1.05)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["align-recording", RONDINO, str(path), "--work-dir", str(work), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "chosen: all repeats" in result.output
    performance_id = f"{RONDINO}__recording-rondino-take"
    assert sorted(p.name for p in out.iterdir()) == [
        f"{performance_id}.csv",
        f"{performance_id}.json",
        f"{performance_id}.npz",
    ]
    built = BuiltPiece.open(piece_dir)
    test_ids = [e["performance_id"] for e in built.performance_entries("test")]
    assert test_ids[-1] == performance_id
    assert performance_id not in [e["performance_id"] for e in built.performance_entries("train")]
    record_ = built.record("test")
    recording = record_.performances[-1]
    assert recording.is_recording and recording.confidence is not None
    assert not record_.performances[0].is_recording
    # Rendering the piece again keeps the listed recording.
    from msmd_builder.core.cache import read_json
    from msmd_builder.stages.align.stage import AlignResult
    from msmd_builder.stages.perform.stage import PerformSettings
    from msmd_builder.stages.perform.stage import run as perform_stage
    from tests.stages.recordings.conftest import SMALL_RECIPE

    aligned = AlignResult.from_dict(read_json(piece_dir.align_record))
    perform_stage(
        aligned,
        PerformSettings(recipe=SMALL_RECIPE, verify_onsets="none"),
        piece_dir,
        force=True,
    )
    assert BuiltPiece.open(piece_dir).performance_entries("test")[-1]["performance_id"] == (
        performance_id
    )
    assert piece_dir.performance(performance_id).is_file()
    # A refused recording exits with its class.
    silent = tmp_path / "silent.wav"
    import soundfile

    soundfile.write(str(silent), np.zeros(22050 * 2, dtype=np.float32), 22050)
    refused = CliRunner().invoke(
        main, ["align-recording", RONDINO, str(silent), "--work-dir", str(work)]
    )
    assert refused.exit_code == 2
    assert "recording-silent" in refused.output
