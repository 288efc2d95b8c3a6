"""The HTML piece viewer, loaded in a real headless Chromium."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.core.cache import atomic_write_json, read_json
from msmd_builder.core.errors import ConfigError, NotBuiltError, ToolNotFoundError
from msmd_builder.core.workdir import PieceDir
from msmd_builder.outputs.viewer import pitch_name, spectrogram_png, write_piece_html
from msmd_builder.stages.align.stage import AlignResult
from msmd_builder.stages.perform.npz import load_performance
from msmd_builder.stages.perform.plans import PerformanceRecipe
from msmd_builder.stages.perform.soundfonts import load_soundfonts, locate
from msmd_builder.stages.perform.stage import PerformSettings, perform_piece
from msmd_builder.stages.perform.stage import run as perform_stage
from tests.conftest import EXAMPLES_ROOT
from tests.helpers.chromium import Chromium, chromium_or_skip

PIECE = "ExampleA__O3__ornament-rondino"  # one page, 94 noteheads, 19 s: quick to synthesize


@pytest.fixture(scope="module")
def piece_work(tmp_path_factory):
    """A work dir with PIECE built to alignment and two performances (one with kept audio)."""
    work = tmp_path_factory.mktemp("viewer-work")
    runner = CliRunner()
    scan = runner.invoke(main, ["corpus", "scan", str(EXAMPLES_ROOT), "--work-dir", str(work)])
    assert scan.exit_code == 0, scan.output
    render = runner.invoke(
        main, ["corpus", "render", "--work-dir", str(work), "--piece", PIECE, "--workers", "1"]
    )
    assert render.exit_code == 0, render.output

    specs = load_soundfonts()
    try:
        for spec in specs:
            locate(spec)
        from msmd_builder.stages.perform.fluidsynth import fluidsynth_version

        fluidsynth_version()
    except ToolNotFoundError as exc:
        pytest.skip(f"cannot synthesize performances: {exc}")
    # Two train performances (valid plays the same reference), and the test one.
    recipe = PerformanceRecipe.from_dict(
        {"train": {"n_performances": 2}, "valid": {"n_performances": 1}}
    )
    piece_dir = PieceDir.of(work, PIECE)
    aligned = AlignResult.from_dict(read_json(piece_dir.align_record))
    stage = perform_stage(
        aligned,
        PerformSettings(recipe=recipe, keep_audio=True, verify_onsets="none"),
        piece_dir,
    )
    plans = stage.plans
    assert [p.performance_id for p in plans[:2]] == stage.roles["train"]
    # The second performance's audio was not kept: the viewer synthesizes it again.
    piece_dir.performance_audio(plans[1].performance_id).unlink()
    document = read_json(piece_dir.perform_record)
    document["performances"][1]["audio"] = None
    atomic_write_json(piece_dir.perform_record, document)
    return work, plans, specs


def _visible_noteheads(work) -> np.ndarray:
    with np.load(work / "pieces" / PIECE / "score" / "geometry.npz") as data:
        heads = data["noteheads"]
    return heads[heads["visible"] & (heads["page"] >= 0)]


def _sounding(events: np.ndarray, t: float) -> set[int]:
    now = events[(events["onset_sec"] <= t) & (t < events["offset_sec"])]
    return {int(i) for i in now["notehead_id"] if i >= 0}


_METADATA = """new Promise(function (done) {
  const a = document.getElementById("audio");
  if (a.readyState >= 1) { done(a.duration); return; }
  a.addEventListener("loadedmetadata", function () { done(a.duration); });
  a.addEventListener("error", function () { done(-1); });
})"""

_SEEK = """new Promise(function (done) {
  const a = document.getElementById("audio");
  a.addEventListener("seeked", function () { done(window.msmdViewer.lit()); }, { once: true });
  a.currentTime = SEEK_TO;
})"""


def test_pitch_names():
    assert [pitch_name(p) for p in (21, 60, 61, 70, 108)] == ["A0", "C4", "C♯4", "B♭4", "C8"]


def test_spectrogram_png_puts_low_bins_at_the_bottom():
    import io

    from PIL import Image

    values = np.zeros((92, 30), dtype=np.float32)
    values[0, :] = 1.0  # energy in the lowest bin only
    image = np.asarray(Image.open(io.BytesIO(spectrogram_png(values))))
    assert image.shape == (92, 30, 3)
    assert image[-1].mean() > 200 and image[0].mean() < 20
    assert spectrogram_png(values) == spectrogram_png(values.copy())


def test_viewer_page_in_chromium(piece_work, tmp_path):
    chromium_or_skip()
    work, plans, _ = piece_work
    page = write_piece_html(work, PIECE, tmp_path / "view")
    assert page == tmp_path / "view" / f"{PIECE}.html"
    heads = _visible_noteheads(work)
    stats = json.loads((work / "pieces" / PIECE / "align" / "align.json").read_text())["stats"]
    assert heads.size == stats["visible_noteheads"] > 0
    perfs = [
        load_performance(work / "pieces" / PIECE / "perform" / f"{p.performance_id}.npz")
        for p in plans
    ]

    with Chromium(width=1280, height=800) as browser:
        browser.open(page)
        assert browser.evaluate("document.querySelectorAll('rect.nh').length") == heads.size
        assert browser.evaluate("document.querySelectorAll('svg.page').length") == 1
        assert browser.evaluate("document.querySelectorAll('#perf option').length") == len(plans)
        src = browser.evaluate("document.getElementById('audio').getAttribute('src')")
        assert src == f"{PIECE}-audio/{plans[0].performance_id}.flac"
        duration = browser.evaluate(_METADATA, await_promise=True)
        assert duration == pytest.approx(perfs[0]["duration_sec"], abs=0.05)
        spec = browser.evaluate(
            "[document.getElementById('spec-img').naturalWidth, "
            "document.getElementById('spec-img').naturalHeight]"
        )
        assert spec == [perfs[0]["spectrogram"].shape[1], 92]

        # The cursor lights exactly the noteheads sounding at the playing time.
        events = perfs[0]["events"]
        t = float(events["onset_sec"][len(events) // 2]) + 0.01
        lit = set(browser.evaluate(_SEEK.replace("SEEK_TO", repr(t)), await_promise=True))
        assert lit == _sounding(events, t) and lit

        # Another performance: other audio, other times.
        browser.evaluate(
            "const s = document.getElementById('perf'); s.value = '1';"
            "s.dispatchEvent(new Event('change'));"
        )
        assert browser.evaluate(_METADATA, await_promise=True) == pytest.approx(
            perfs[1]["duration_sec"], abs=0.05
        )
        events = perfs[1]["events"]
        t = float(events["onset_sec"][len(events) // 3]) + 0.01
        lit = set(browser.evaluate(_SEEK.replace("SEEK_TO", repr(t)), await_promise=True))
        assert lit == _sounding(events, t) and lit

        # Hovering a notehead tells what it is.
        head = heads[heads["pitch"] == heads["pitch"].max()][0]
        k = int(np.flatnonzero(heads["notehead_id"] == head["notehead_id"])[0])
        box = browser.evaluate(
            "(function () { const el = document.querySelector('rect.nh[data-i=\"K\"]');"
            "el.scrollIntoView({block: 'center'}); const q = el.getBoundingClientRect();"
            "return [q.x + q.width / 2, q.y + q.height / 2]; })()".replace("K", str(k))
        )
        browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=box[0], y=box[1])
        tip = browser.evaluate("document.getElementById('tip').innerText")
        assert pitch_name(int(head["pitch"])) in tip and f"MIDI {int(head['pitch'])}" in tip
        assert f"source line {int(head['source_line'])}" in tip
        first = perfs[1]["events"][perfs[1]["events"]["notehead_id"] == head["notehead_id"]]
        assert f"{first['onset_sec'].min():.2f} s" in tip

        assert browser.errors == []
        shot = browser.screenshot(tmp_path / "viewer.png")
    print(f"viewer screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_audio_is_copied_or_synthesized_exactly(piece_work, tmp_path):
    import soundfile

    work, plans, specs = piece_work
    perform_dir = work / "pieces" / PIECE / "perform"
    out = tmp_path / "view"
    write_piece_html(work, PIECE, out)
    audio_dir = out / f"{PIECE}-audio"
    manifest = json.loads((audio_dir / "audio.json").read_text())
    kept, resynthesized = (audio_dir / f"{p.performance_id}.flac" for p in plans[:2])
    assert manifest[plans[0].performance_id]["source"] == "copied"
    assert manifest[plans[1].performance_id]["source"] == "synthesized"
    assert kept.read_bytes() == (perform_dir / kept.name).read_bytes()
    # What the perform stage would have written with keep_audio, sample for sample.
    with np.load(work / "pieces" / PIECE / "align" / "alignment.npz") as data:
        performed = data["performed"]
    reference = perform_piece(
        plans[1:2],
        performed,
        out_dir=tmp_path / "reference",
        soundfonts=specs,
        keep_audio=True,
        verify=False,
    )[0].audio_path
    ours, _ = soundfile.read(str(resynthesized), dtype="int16")
    theirs, _ = soundfile.read(str(reference), dtype="int16")
    np.testing.assert_array_equal(ours, theirs)

    # A second run reuses the audio; a subset shows only the performances asked for.
    mtimes = [kept.stat().st_mtime_ns, resynthesized.stat().st_mtime_ns]
    page = write_piece_html(work, PIECE, out, performance_ids=[plans[1].performance_id])
    assert [kept.stat().st_mtime_ns, resynthesized.stat().st_mtime_ns] == mtimes
    text = page.read_text(encoding="utf-8")
    assert text.count("<option value=") == 1 and plans[1].performance_id in text
    with pytest.raises(ConfigError, match="no performance"):
        write_piece_html(work, PIECE, out, performance_ids=["nope"])


def test_piece_without_performances(piece_work, tmp_path):
    chromium_or_skip()
    work, _, _ = piece_work
    bare = tmp_path / "work"
    for part in ("score", "align"):
        shutil.copytree(work / "pieces" / PIECE / part, bare / "pieces" / PIECE / part)
    with pytest.raises(NotBuiltError, match=r"pieces/Nobody__X__y/score/score\.json is missing"):
        write_piece_html(bare, "Nobody__X__y", tmp_path / "view")
    page = write_piece_html(bare, PIECE, tmp_path / "view")
    assert not (tmp_path / "view" / f"{PIECE}-audio").exists()
    with Chromium() as browser:
        browser.open(page)
        count = browser.evaluate("document.querySelectorAll('rect.nh').length")
        assert count == _visible_noteheads(work).size
        assert browser.evaluate("document.getElementById('audio') !== null")
        assert "no performance" in browser.evaluate("document.getElementById('note').innerText")
        assert browser.errors == []


_SEEK_MEASURE = """new Promise(function (done) {
  const a = document.getElementById("audio");
  a.addEventListener("seeked", function () {
    done([window.msmdViewer.measure(),
          Array.from(document.querySelectorAll("rect.ms.now")).map(function (el) {
            return Number(el.dataset.m); })]);
  }, { once: true });
  a.currentTime = SEEK_TO;
})"""


def test_viewer_shows_measures_and_highlights_the_one_playing(piece_work, tmp_path):
    chromium_or_skip()
    from msmd_builder.dataset.built import BuiltPiece
    from msmd_builder.stages.perform.measures import performance_measures

    work, plans, _ = piece_work
    page = write_piece_html(work, PIECE, tmp_path / "view")
    built = BuiltPiece.open(PieceDir.of(work, PIECE))
    measures = built.measures()
    perf = load_performance(work / "pieces" / PIECE / "perform" / f"{plans[0].performance_id}.npz")
    played = performance_measures(built.performed_measures(), perf["plan"], built.performed())
    assert len(played) > 8
    with Chromium(width=1280, height=800) as browser:
        browser.open(page)
        assert browser.evaluate("document.querySelectorAll('rect.ms').length") == len(measures)
        numbers = browser.evaluate(
            "Array.from(document.querySelectorAll('text.bn')).map(e => Number(e.textContent))"
        )
        assert numbers == measures["bar_number"][measures["part"] == 0].tolist()
        browser.evaluate(_METADATA, await_promise=True)
        for row in played[[1, len(played) // 2, len(played) - 1]]:
            t = (float(row["start_sec"]) + float(row["end_sec"])) / 2
            seek = _SEEK_MEASURE.replace("SEEK_TO", repr(t))
            now, lit = browser.evaluate(seek, await_promise=True)
            boxes = int((measures["measure"] == row["measure"]).sum())
            assert now == [int(row["measure"]), int(row["occurrence"]), boxes]
            assert lit == [int(row["measure"])] * boxes
        assert browser.errors == []


def test_page_overlays_draw_every_measure_box(piece_work, tmp_path):
    from PIL import Image

    from msmd_builder.dataset.built import BuiltPiece
    from msmd_builder.outputs.overlays import COLOURS, write_piece_overlays

    work, _, _ = piece_work
    piece_dir = PieceDir.of(work, PIECE)
    (path,) = write_piece_overlays(piece_dir, tmp_path)
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    orange = (image == COLOURS["measure"]).all(axis=2)
    measures = BuiltPiece.open(piece_dir, need_performances=False).measures()
    assert len(measures) > 8
    for box in measures:
        # Its outline, drawn one pixel outside it: along its left and its top edge
        # (noteheads drawn later may cover parts of it).
        x0, y0, x1, y1 = (int(box[k]) for k in ("x0_px", "y0_px", "x1_px", "y1_px"))
        assert orange[y0 + 2 : y1 - 2, x0 - 2 : x0 + 1].any(), int(box["measure_id"])
        assert orange[y0 - 2 : y0 + 1, x0 + 2 : x1 - 2].any(), int(box["measure_id"])
    assert not orange[: int(measures["y0_px"].min()) - 14].any()  # nothing orange above them
