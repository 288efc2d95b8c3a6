"""Recordings in a dataset build over examples/: aligned, listed, in the shards and the viewer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile

from msmd_builder.core.cache import read_json
from msmd_builder.core.workdir import PieceDir
from msmd_builder.dataset.reader import open_split
from msmd_builder.stages.recordings.simulate import Degradation
from tests.pipeline.conftest import build
from tests.stages.recordings.conftest import orders_of, record

pytestmark = pytest.mark.slow


def test_recordings_join_the_test_part_of_their_pieces(built, tmp_path):
    root, _ = built
    work = tmp_path / "work"
    shutil.copytree(root / "work", work)
    with open_split(root / "out" / "all") as reader:
        test_ids = reader.piece_ids("test")
    assert len(test_ids) >= 2
    first, second = test_ids[:2]
    takes = tmp_path / "takes"
    takes.mkdir()
    piece_dir = PieceDir.of(work, first)
    truth = record(
        piece_dir,
        orders_of(piece_dir)[0],
        takes / f"{first}__live.flac",
        degradation=Degradation(lead_sec=2.0, trail_sec=2.0, lead_kind="noise", snr_db=30.0),
        tempo_ratio=0.95,
    )
    # The second piece gets a recording of the first piece, and a silent file.
    shutil.copyfile(takes / f"{first}__live.flac", takes / f"{second}.flac")
    soundfile.write(str(takes / f"{second}__silence.wav"), np.zeros(44100), 22050)
    soundfile.write(str(takes / "Nobody__X__nothing.wav"), np.zeros(44100), 22050)

    out = tmp_path / "out"
    new_report = build(work, out, "--recordings", str(takes))
    rows = {row["file"]: row for row in new_report["summary"]["recordings"]}
    ok = rows[f"{first}__live.flac"]
    assert ok["status"] == "ok" and ok["playing_order"] == "all repeats"
    assert ok["role"] == "test" and ok["cost"] < 0.2 and 0 <= ok["confidence_median"] <= 1
    assert rows[f"{second}.flac"]["error_class"] == "recording-mismatch"
    assert rows[f"{second}__silence.wav"]["error_class"] == "recording-silent"
    assert rows["Nobody__X__nothing.wav"]["error_class"] == "not-built"
    markdown = (out / "report.md").read_text()
    assert "## Recordings" in markdown and "recording-mismatch" in markdown

    # The shards' test part holds the recording beside the synthesized performance.
    performance_id = f"{first}__recording-{first}__live"
    with open_split(out / "all") as reader:
        piece = reader.read_piece("test", first)
    ids = [p.performance_id for p in piece.performances]
    assert ids[-1] == performance_id and len(ids) == 2
    recording = piece.performances[-1]
    assert recording.is_recording and not piece.performances[0].is_recording
    assert recording.plan["recording"]["playing_order"] == "all repeats"
    assert recording.confidence.shape == (len(recording.events),)
    error = np.abs(recording.events["onset_sec"] - truth["onset_sec"])
    assert np.mean(error <= 0.05) >= 0.9
    assert recording.spectrogram.shape[0] == 92
    # It played the align stage's order: its measures are those of the score, placed by
    # the alignment, in order and within the recording.
    measures = recording.measures
    assert len(measures) == len(piece.performed_measures) > 0
    assert np.all(np.diff(measures["start_sec"]) >= 0) and np.all(
        measures["end_sec"] >= measures["start_sec"]
    )
    assert measures["end_sec"].max() <= recording.duration_sec

    # The viewer plays it like any performance, with its events for the cursor.
    from msmd_builder.outputs.viewer import write_piece_html

    page = write_piece_html(work, first, tmp_path / "view")
    text = page.read_text(encoding="utf-8")
    start = text.index('<script type="application/json" id="data">') + len(
        '<script type="application/json" id="data">'
    )
    document = json.loads(text[start : text.index("</script>", start)])
    shown = {p["id"]: p for p in document["performances"]}
    assert "recording" in shown[performance_id]["label"]
    assert len(shown[performance_id]["events"]) == len(recording.events)
    assert (tmp_path / "view" / f"{first}-audio" / f"{performance_id}.flac").is_file()

    # A build without --recordings lists none again.
    build(work, out)
    assert read_json(PieceDir.of(work, first).perform_record)["recordings"] == []
    with open_split(out / "all") as reader:
        assert len(reader.read_piece("test", first).performances) == 1
