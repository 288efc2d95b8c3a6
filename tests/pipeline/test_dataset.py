"""The whole build over examples/: pieces, splits, shards, report; reruns, kills, plan changes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.dataset.reader import open_split
from tests.conftest import EXAMPLES_ROOT
from tests.helpers.writes import file_writes

pytestmark = pytest.mark.slow


def build(work: Path, out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(
        main,
        [
            "dataset",
            str(EXAMPLES_ROOT),
            "--work-dir",
            str(work),
            "--out",
            str(out),
            "--workers",
            "2",
            "--seed",
            "3",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


def piece_checksums(out: Path, split: str) -> dict[str, str]:
    manifest = json.loads((out / split / "manifest.json").read_text())
    sums = {}
    for part in manifest["parts"].values():
        for piece in part["pieces"]:
            sums[piece["piece_id"]] = piece["content_sha256"]
    return sums


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    report = build(root / "work", root / "out")
    return root, report


def test_default_dataset_is_complete(built):
    root, report = built
    summary = report["summary"]
    n = len(report["pieces"])
    assert n == 14  # every example is a solo keyboard piece
    assert summary["status_counts"].get("failed", 0) == 0
    # Examples have no Bach: bach-only and bach-out cannot be drawn, and say so.
    assert set(summary["splits"]) == {"all"}
    assert set(summary["skipped_splits"]) == {"bach-only", "bach-out"}
    counts = summary["splits"]["all"]
    # MSMD's 360 : 19 : 100 shares of 14 pieces, with one validation piece for a small corpus.
    assert (counts["train"], counts["valid"], counts["test"]) == (10, 1, 3)
    # Every piece got every role's performances, and the onset checks pass.
    perf = summary["performance_totals"]
    assert perf["pieces"] == n and perf["performances"] == 8 * n
    assert perf["onset_checks"] == 2 * n and perf["onset_checks_below_98"] == 0
    # Shards hold what the report counts (Table 1 figures).
    with open_split(root / "out" / "all") as reader:
        for part, row in summary["table1"]["all"].items():
            ids = reader.piece_ids(part)
            assert len(ids) == row["pieces"]
            records = [reader.read_piece(part, piece_id) for piece_id in ids]
            assert sum(len(r.noteheads) for r in records) == row["noteheads"]
            assert sum(len(r.performed) for r in records) == row["events"]
            assert (
                sum(int((r.performed["notehead_id"] >= 0).sum()) for r in records)
                == row["aligned_pairs"]
            )
            expected = 7 if part in ("train", "valid") else 1
            assert all(len(r.performances) == expected for r in records)
    md = (root / "out" / "report.md").read_text()
    assert "## Dataset statistics (Table 1)" in md and "## Performances" in md
    train = summary["table1"]["all"]["train"]
    assert f"| all | train | {train['pieces']:,} (360) |" in md


def test_rerun_with_nothing_changed_does_nothing(built):
    root, first = built
    pieces = file_writes(root / "work" / "pieces")
    split = file_writes(root / "out" / "all")
    assert sum(name.endswith(".h5") for name in split) >= 3  # train, valid and test shards
    report = build(root / "work", root / "out")
    assert file_writes(root / "work" / "pieces") == pieces  # no stage of any piece ran
    assert file_writes(root / "out" / "all") == split  # shards and manifest kept
    assert [(p["piece_id"], p["status"]) for p in report["pieces"]] == [
        (p["piece_id"], p["status"]) for p in first["pieces"]
    ]
    for piece in report["pieces"]:
        assert piece["details"]["perform_seconds"] == {}, piece["piece_id"]  # none synthesized


def test_killed_build_resumes_to_identical_shards(built, tmp_path):
    root, _ = built
    work, out = tmp_path / "work", tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "msmd_builder.cli",
        "dataset",
        str(EXAMPLES_ROOT),
        "--work-dir",
        str(work),
        "--out",
        str(out),
        "--workers",
        "2",
        "--seed",
        "3",
    ]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(work.glob("pieces/*/perform/*.npz"))) >= 10:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the build finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "all" / "manifest.json").exists()

    build(work, out)
    assert piece_checksums(out, "all") == piece_checksums(root / "out", "all")


def test_changing_the_plan_reruns_only_performances(built, tmp_path):
    root, _ = built
    work = tmp_path / "work"
    shutil.copytree(root / "work", work)

    def before_perform() -> dict[str, tuple[int, int]]:
        """Every file the stages before perform wrote (sources, render, score, align)."""
        return {
            name: written
            for name, written in file_writes(work / "pieces").items()
            if name.split("/")[1] != "perform"
        }

    before = before_perform()
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: small\ntrain: {n_performances: 2}\nvalid: {n_performances: 2}\n")
    report = build(work, tmp_path / "out", "--performance-recipe", str(recipe))
    assert before_perform() == before
    for piece in report["pieces"]:
        assert len(piece["details"]["performances"]) == 3  # 2 train/valid + 1 test
    with open_split(tmp_path / "out" / "all") as reader:
        record = reader.read_piece("train", reader.piece_ids("train")[0])
        assert len(record.performances) == 2


def test_viewer_and_report_of_the_default_dataset_load_in_chromium(built, tmp_path):
    from tests.helpers.chromium import Chromium, chromium_or_skip

    chromium_or_skip()
    root, report = built
    piece = "ExampleB__O15__da-capo-waltz"
    runner = CliRunner()
    view = runner.invoke(
        main, ["view", piece, "--html", "--work-dir", str(root / "work"), "--out", str(tmp_path)]
    )
    assert view.exit_code == 0, view.output
    page = Path(view.output.strip().splitlines()[-1])
    html_report = runner.invoke(main, ["report", str(root / "out" / "report.json")])
    assert html_report.exit_code == 0, html_report.output
    report_page = Path(html_report.output.strip().splitlines()[-1])
    stats = next(p for p in report["pieces"] if p["piece_id"] == piece)["details"]["alignment"]

    with Chromium(width=1280, height=900) as browser:
        browser.open(page)
        assert (
            browser.evaluate("document.querySelectorAll('rect.nh').length")
            == stats["visible_noteheads"]
        )
        assert browser.evaluate("document.querySelectorAll('#perf option').length") == 8
        assert browser.evaluate("document.getElementById('audio').readyState >= 0")
        viewer_shot = browser.screenshot(tmp_path / "default-viewer.png")
        assert browser.errors == []
    with Chromium(width=1280, height=900) as browser:
        browser.open(report_page)
        images = browser.evaluate(
            "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        )
        assert images and all(images)
        assert "Table 1" in browser.evaluate("document.body.innerText")
        report_shot = browser.screenshot(tmp_path / "default-report.png", full_page=True)
        assert browser.errors == []
    print(f"screenshots: {viewer_shot} {report_shot}")
    assert viewer_shot.stat().st_size > 10_000 and report_shot.stat().st_size > 10_000


def test_train_and_evaluate_commands_on_the_default_dataset(built, tmp_path):
    """``msmd-build train`` reads the shards, writes a run folder, evaluates on the test part."""
    pytest.importorskip("torch")
    root, _ = built
    run = tmp_path / "run"
    common = ["--dataset", str(root / "out"), "--split", "all", "--threads", "1"]
    result = CliRunner().invoke(
        main,
        [
            "train",
            *common,
            "--epoch-pairs",
            "200",
            "--max-epochs",
            "1",
            "--refine-cca",
            "300",
            "--out",
            str(run),
        ],
    )
    assert result.exit_code == 0, result.output
    assert {"best.pt", "refined.pt", "metrics.csv", "learning_curve.png", "evaluation.json"} <= {
        p.name for p in run.iterdir()
    }
    report = json.loads((run / "evaluation.json").read_text())
    manifest = json.loads((root / "out" / "all" / "manifest.json").read_text())
    assert report["test_pieces"] == [p["piece_id"] for p in manifest["parts"]["test"]["pieces"]]
    assert report["retrieval"]["2000"]["random"]["n"] == min(2000, report["test_pairs"])

    again = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(run / "best.pt"),
            *common,
            "--pairs",
            "100",
            "--out",
            str(tmp_path / "ev"),
        ],
    )
    assert again.exit_code == 0, again.output
    assert "| audio-to-sheet |" in (tmp_path / "ev" / "evaluation.md").read_text()

    missing = CliRunner().invoke(main, ["train", "--dataset", str(tmp_path), "--out", str(run)])
    assert missing.exit_code == 2 and "run msmd-build dataset first" in missing.output


def test_cyolo_export_loads_as_cyolo_score_following_does(built, tmp_path):
    """The export read with cyolo's conventions (tests/helpers/cyolo.py) gives our positions."""
    import numpy as np
    import soundfile
    import yaml

    from msmd_builder.dataset.positions import frame_positions
    from msmd_builder.stages.perform.spectrogram import compute_spectrogram
    from tests.helpers.cyolo import FPS, load_piece

    root, _ = built
    out = tmp_path / "cyolo"
    common = ["--dataset", str(root / "out"), "--work-dir", str(root / "work"), "--split", "all"]
    result = CliRunner().invoke(
        main, ["export", "--format", "cyolo", *common, "--out", str(out), "--part", "test"]
    )
    assert result.exit_code == 0, result.output
    names = yaml.safe_load((out / "test.yaml").read_text())["files"]
    with open_split(root / "out" / "all") as reader:
        records = [reader.read_piece("test", p) for p in reader.piece_ids("test")]
    assert names == [p.performance_id for r in records for p in r.performances]
    assert sorted(p.name for p in (out / "test").iterdir()) == sorted(
        f"{n}.{ext}" for n in names for ext in ("npz", "wav")
    )
    for record in records:
        for performance in record.performances:
            piece = load_piece(out / "test", performance.performance_id)
            assert piece.synthesized is True
            height, width = record.pages[0].shape
            assert piece.padded_scores.shape == (len(record.pages), height, height)
            assert piece.pad == (height - width) // 2
            assert len(piece.systems) == len(record.systems)
            assert len(piece.bars) == len(record.measures)
            # The audio is the performance the spectrogram was computed from.
            audio, rate = soundfile.read(
                str(out / "test" / f"{performance.performance_id}.wav"), dtype="float32"
            )
            assert rate == 22050 and audio.size == round(performance.duration_sec * 22050)
            np.testing.assert_array_equal(
                compute_spectrogram(audio, sample_rate=rate), performance.spectrogram
            )
            # Every frame: cyolo's position from the export is our frame-level position
            # under cyolo's frame rule (x moved by the pad).
            frames = np.floor(performance.events["onset_sec"] * FPS).astype(np.int64)
            ours = frame_positions(record, performance, onset_frame=frames, n_frames=piece.n_frames)
            note_y, note_x, system, bar, page = piece.interpolate(np.arange(piece.n_frames))
            np.testing.assert_array_equal(note_y, ours["y_px"])
            np.testing.assert_allclose(note_x, ours["x_px"] + piece.pad, rtol=0, atol=1e-9)
            np.testing.assert_array_equal(system, ours["system"])
            np.testing.assert_array_equal(bar, ours["measure_id"])
            np.testing.assert_array_equal(page, ours["page"])


def test_passages_export_reads_as_passage_retrieval_code_reads_it(built, tmp_path):
    """``unrolled_score``, ``o2sc`` as luisfvc/lcasr slices them, ``o2c`` as in asr's pools."""
    import numpy as np
    import yaml

    from msmd_builder.dataset.passages import PassagePool

    root, _ = built
    out = tmp_path / "passages"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--format",
            "passages",
            "--dataset",
            str(root / "out"),
            "--work-dir",
            str(root / "work"),
            "--split",
            "all",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    split = yaml.safe_load((out / "split.yaml").read_text())
    with open_split(root / "out" / "all") as reader:
        assert split == {part: list(reader.piece_ids(part)) for part in reader.parts}
        record = reader.read_piece("test", split["test"][0])
    data = np.load(out / f"{record.piece_id}.npz", allow_pickle=True)
    score = data["unrolled_score"]
    assert score.dtype == np.uint8 and score.shape[0] == 200 and score.max() == 255
    (performance,) = data["performances"]
    tempo, synth = performance["perf"].split("tempo-")[1].split("_", 1)
    assert (float(tempo) / 1000, synth) == (1.0, record.performances[0].plan["soundfont"])
    spec = performance["spec"]
    np.testing.assert_array_equal(spec, record.performances[0].spectrogram)
    edges = np.concatenate([performance["o2sc"], [[score.shape[1], spec.shape[1]]]])
    assert (np.diff(edges, axis=0) > 0).all()  # every passage has columns and frames
    pool = PassagePool([record])
    assert len(pool) == len(performance["o2sc"])
    for k, (start, stop) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        sheet, excerpt = pool.get(k)
        np.testing.assert_array_equal(255 - score[:, start[0] : stop[0]], sheet * 255)
        assert pool.entries[k][2].start_frame == start[1]
        if k + 1 < len(performance["o2sc"]):
            np.testing.assert_array_equal(spec[:, start[1] : stop[1]], excerpt)
    o2c = performance["o2c"]
    assert len(np.unique(o2c[:, 0])) == len(o2c) and (o2c[:, 1] < score.shape[1]).all()
