"""The whole build over examples/: pieces, splits, shards, report; reruns, kills, plan changes."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.dataset.reader import open_split
from msmd_builder.pipeline.glance import STAMP_FILE
from msmd_builder.stages.splits.split import read_split
from tests.helpers.writes import file_writes
from tests.pipeline.conftest import build, dataset_arguments

pytestmark = pytest.mark.slow


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
    # Every piece got the performances of its role in the split (7 training
    # renderings or 1 held-out one) and no other, and the onset checks pass.
    perf = summary["performance_totals"]
    assert summary["performed_roles"] == "the splits' roles"
    assert summary["pieces_performed_again_for_new_roles"] == 0  # no piece failed
    assert perf["pieces"] == n
    assert perf["performances"] == 7 * (counts["train"] + counts["valid"]) + counts["test"]
    assert perf["onset_checks"] == n and perf["onset_checks_below_98"] == 0
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
    out = file_writes(root / "out")
    assert sum(name.startswith("all/") and name.endswith(".h5") for name in out) >= 3
    assert STAMP_FILE in out  # the complete build was stamped
    # At a glance: nothing the build read or wrote has changed, so nothing runs.
    result = CliRunner().invoke(main, dataset_arguments(root / "work", root / "out"))
    assert result.exit_code == 0, result.output
    assert "nothing changed since the last complete build" in result.output
    assert file_writes(root / "work" / "pieces") == pieces
    assert file_writes(root / "out") == out
    # A file touched (same content, new time) makes the build check every cache:
    # no stage of any piece runs, shards and manifest are kept, the report is new.
    split_file = root / "out" / "splits" / "all.yaml"
    os.utime(split_file, ns=(time.time_ns(), time.time_ns()))
    report = build(root / "work", root / "out")
    assert file_writes(root / "work" / "pieces") == pieces  # no stage of any piece ran
    after = file_writes(root / "out")
    assert {k: v for k, v in after.items() if k.startswith("all/")} == {
        k: v for k, v in out.items() if k.startswith("all/")
    }
    assert after["report.json"] != out["report.json"] and after[STAMP_FILE] != out[STAMP_FILE]
    assert [(p["piece_id"], p["status"]) for p in report["pieces"]] == [
        (p["piece_id"], p["status"]) for p in first["pieces"]
    ]
    for piece in report["pieces"]:
        assert piece["details"]["perform_seconds"] == {}, piece["piece_id"]  # none synthesized
    again = CliRunner().invoke(main, dataset_arguments(root / "work", root / "out"))
    assert "nothing changed" in again.output  # stamped again


def test_changing_the_plan_reruns_only_performances(built, tmp_path):
    root, _ = built
    work = tmp_path / "work"
    shutil.copytree(root / "work", work)

    def before_perform() -> dict[str, tuple[int, int]]:
        """Every file the stages before perform wrote (sources, render, score, align)."""
        return {
            name: written
            for name, written in file_writes(work / "pieces").items()
            if name.split("/")[1] not in ("perform", "packed")
        }

    before = before_perform()
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: small\ntrain: {n_performances: 2}\nvalid: {n_performances: 2}\n")
    report = build(work, tmp_path / "out", "--performance-recipe", str(recipe))
    assert before_perform() == before
    split = read_split(tmp_path / "out" / "splits" / "all.yaml")
    for piece in report["pieces"]:
        tested = piece["piece_id"] in split.parts["test"]
        # 2 train/valid renderings, or 1 held-out one.
        assert len(piece["details"]["performances"]) == (1 if tested else 2)
    with open_split(tmp_path / "out" / "all") as reader:
        record = reader.read_piece("train", reader.piece_ids("train")[0])
        assert len(record.performances) == 2


def test_viewer_and_report_of_the_default_dataset_load_in_chromium(built, tmp_path):
    from tests.helpers.chromium import Chromium, chromium_or_skip

    chromium_or_skip()
    root, report = built
    piece = "ExampleB__O15__da-capo-waltz"
    runner = CliRunner()
    performed = file_writes(root / "work" / "pieces" / piece / "perform")
    view = runner.invoke(
        main, ["view", piece, "--html", "--work-dir", str(root / "work"), "--out", str(tmp_path)]
    )
    assert view.exit_code == 0, view.output
    # The page shows the dataset's performances (seed 3); viewing rebuilt nothing.
    assert file_writes(root / "work" / "pieces" / piece / "perform") == performed
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
        performances = next(p for p in report["pieces"] if p["piece_id"] == piece)["details"][
            "performances"
        ]
        assert browser.evaluate("document.querySelectorAll('#perf option').length") == len(
            performances
        )
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
    """``msmd-build train`` packs the pairs, trains in parts, evaluates on the test part."""
    pytest.importorskip("torch")
    root, _ = built
    run = tmp_path / "run"
    common = ["--dataset", str(root / "out"), "--split", "all", "--threads", "1"]
    prepared = CliRunner().invoke(
        main,
        [
            "train",
            *common,
            "--epoch-pairs",
            "200",
            "--max-epochs",
            "1",
            "--valid-pairs",
            "300",
            "--refine-cca",
            "300",
            "--prepare-only",
            "--out",
            str(run),
        ],
    )
    assert prepared.exit_code == 0, prepared.output
    assert f"start it with msmd-build train --resume {run}" in prepared.output
    assert {p.name for p in run.iterdir()} == {"run.json", "pairs-train.npz", "pairs-valid.npz"}
    info = json.loads((run / "run.json").read_text())
    sizes = info["pair_files_bytes"]
    assert sizes == {name: (run / name).stat().st_size for name in sizes}
    shards = sum(p.stat().st_size for p in (root / "out" / "all").glob("*.h5"))
    assert sum(sizes.values()) < shards / 2  # pages, events and other renderings stay behind
    assert info["train_soundfonts"] == {"fluidr3-yamaha-grand": len(info["train_pieces"])}

    fixed = CliRunner().invoke(main, ["train", "--resume", str(run), "--model", "2019"])
    assert fixed.exit_code == 2 and "drop --model" in fixed.output
    result = CliRunner().invoke(main, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert {"best.pt", "refined.pt", "state.pt", "metrics.csv", "learning_curve.png"} <= {
        p.name for p in run.iterdir()
    }
    report = json.loads((run / "evaluation.json").read_text())  # on the split the run came from
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

    # identify: a test piece's recording, rendered with a soundfont of its own
    from msmd_builder.stages.perform.plans import PerformancePlan
    from msmd_builder.stages.perform.stage import perform_piece

    piece_id = report["test_pieces"][0]
    with np.load(root / "work" / "pieces" / piece_id / "align" / "alignment.npz") as data:
        performed = data["performed"]
    plan = PerformancePlan(
        performance_id="query", piece_id=piece_id, soundfont="timgm6mb-piano-1", tempo_ratio=0.9
    )
    (rendered,) = perform_piece([plan], performed, out_dir=tmp_path / "q", keep_audio=True)
    identify = ["identify", str(rendered.audio_path), *common, "--checkpoint"]
    found = CliRunner().invoke(main, [*identify, str(run / "refined.pt"), "--top", "3", "--json"])
    assert found.exit_code == 0, found.output
    answer = json.loads(found.output)
    n_pieces = sum(len(part["pieces"]) for part in manifest["parts"].values())
    assert answer["index"]["pieces"] == n_pieces and not answer["index"]["cached"]
    assert [row["rank"] for row in answer["ranking"]] == [1, 2, 3]
    assert sum(row["votes"] for row in answer["ranking"]) <= 100 * 25
    assert Path(answer["index"]["path"]).parent == root / "out" / "all" / "identify-index"
    cached = CliRunner().invoke(main, [*identify, str(run / "refined.pt"), "--top", "3", "--json"])
    assert json.loads(cached.output)["index"]["cached"]
    assert json.loads(cached.output)["ranking"] == answer["ranking"]
    silent = tmp_path / "silent.wav"
    import soundfile

    soundfile.write(silent, np.zeros(22050, np.float32), 22050)
    quiet = CliRunner().invoke(
        main, ["identify", str(silent), *common, "--checkpoint", str(run / "refined.pt")]
    )
    assert quiet.exit_code == 2 and "[silent]" in quiet.output

    from msmd_builder.train.pretrained import MODEL_FILE, PRETRAINED_DIR

    shipped = CliRunner().invoke(main, ["evaluate", *common, "--out", str(tmp_path / "ev2")])
    if (PRETRAINED_DIR / MODEL_FILE).is_file():
        assert shipped.exit_code == 0, shipped.output
    else:
        assert shipped.exit_code == 2 and "no pretrained model ships" in shipped.output

    missing = CliRunner().invoke(main, ["train", "--dataset", str(tmp_path), "--out", str(run)])
    assert missing.exit_code == 2 and "run msmd-build dataset first" in missing.output
    no_gpu = CliRunner().invoke(main, ["train", "--resume", str(run), "--device", "cuda"])
    import torch

    if not torch.cuda.is_available():
        assert no_gpu.exit_code == 2 and "CUDA is not available here" in no_gpu.output


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


def test_interrupted_training_resumes_to_the_same_numbers(built, tmp_path):
    """A run stopped mid-epoch, continued, stopped at an epoch's end and continued again
    ends exactly where the same run without stops ends."""
    torch = pytest.importorskip("torch")
    from msmd_builder.train.data import load_split
    from msmd_builder.train.loop import load_run, prepare_run, run_training
    from msmd_builder.train.settings import TrainSettings
    from msmd_builder.train.state import load_state

    root, _ = built
    parts = load_split(root / "out" / "all", ("train", "valid"))
    settings = TrainSettings(
        maps=(4, 8, 8, 8),
        epoch_pairs=300,
        max_epochs=3,
        valid_pairs=200,
        bn_recalibration_pairs=200,
        refine_cca_pairs=300,
        sheet_augmentation=True,
        audio_augmentation=True,
        threads=1,
        seed=5,
    )
    whole_dir = tmp_path / "whole"
    whole = run_training(
        prepare_run(parts["train"], parts["valid"], settings, whole_dir), whole_dir
    )
    parted = tmp_path / "parted"
    tiny_budget = dataclasses.replace(settings, time_budget_s=1e-9)  # stops after one step
    prepare_run(parts["train"], parts["valid"], tiny_budget, parted)
    first = run_training(load_run(parted), parted, resume=True)
    assert [row["pairs_seen"] for row in first.history] == [100]  # the part's partial epoch
    assert load_state(parted / "state.pt").step_in_epoch == 1
    assert json.loads((parted / "metrics.json").read_text())["finished"] is False
    second = run_training(load_run(parted, time_budget_s=None, max_epochs=2), parted, resume=True)
    assert [row["epoch"] for row in second.history] == [1, 2]
    assert load_state(parted / "state.pt").step_in_epoch == 0
    last = run_training(load_run(parted, time_budget_s=None), parted, resume=True)
    assert json.loads((parted / "metrics.json").read_text())["finished"] is True

    timing = {"seconds", "train_pairs_per_s"}
    assert [{k: v for k, v in row.items() if k not in timing} for row in last.history] == [
        {k: v for k, v in row.items() if k not in timing} for row in whole.history
    ]
    assert last.best_valid == whole.best_valid and last.best_epoch == whole.best_epoch
    for name in ("best.pt", "last.pt", "refined.pt"):
        a = torch.load(whole_dir / name, weights_only=True)["state_dict"]
        b = torch.load(parted / name, weights_only=True)["state_dict"]
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
