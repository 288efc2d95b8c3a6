"""Built example pieces and known-truth recordings of them, shared by the recordings tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.core.cache import read_json
from msmd_builder.core.errors import ToolNotFoundError
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.align.playing_orders import PlayingOrder, orders_of_rendering
from msmd_builder.stages.align.stage import AlignResult
from msmd_builder.stages.perform.fluidsynth import default_soundfont_cache
from msmd_builder.stages.perform.plans import PerformanceRecipe
from msmd_builder.stages.perform.soundfonts import load_soundfonts, locate
from msmd_builder.stages.perform.stage import PerformSettings
from msmd_builder.stages.perform.stage import run as perform_stage
from msmd_builder.stages.recordings.simulate import (
    Degradation,
    humanized_plan,
    known_truth_recording,
)
from msmd_builder.stages.score import ScoreResult
from tests.conftest import EXAMPLES_ROOT

#: Repeats with first and second endings, then a plain repeated section (48 s).
VOLTA = "ExampleA__O1__volta-minuet"
#: No repeats, 19 s.
RONDINO = "ExampleA__O3__ornament-rondino"

#: A performance recipe that renders one performance per role with the training fonts.
SMALL_RECIPE = PerformanceRecipe.from_dict(
    {
        "train": {"n_performances": 1},
        "valid": {"n_performances": 1},
        "test": {"soundfont_role": "train"},
    }
)


@pytest.fixture(scope="session")
def recordings_work(tmp_path_factory) -> Path:
    """A work dir with VOLTA and RONDINO built through the perform stage."""
    try:
        for spec in load_soundfonts():
            locate(spec)
    except ToolNotFoundError as exc:
        pytest.skip(f"cannot synthesize: {exc}")
    work = tmp_path_factory.mktemp("recordings-work")
    runner = CliRunner()
    scan = runner.invoke(main, ["corpus", "scan", str(EXAMPLES_ROOT), "--work-dir", str(work)])
    assert scan.exit_code == 0, scan.output
    render = runner.invoke(
        main,
        ["corpus", "render", "--work-dir", str(work), "--piece", VOLTA, "--piece", RONDINO],
    )
    assert render.exit_code == 0, render.output
    for piece_id in (VOLTA, RONDINO):
        piece_dir = PieceDir.of(work, piece_id)
        aligned = AlignResult.from_dict(read_json(piece_dir.align_record))
        perform_stage(
            aligned, PerformSettings(recipe=SMALL_RECIPE, verify_onsets="none"), piece_dir
        )
    return work


def orders_of(piece_dir: PieceDir) -> list[PlayingOrder]:
    score = ScoreResult.from_dict(read_json(piece_dir.score_record))
    noteheads, _ = score.load()
    return orders_of_rendering(
        noteheads, piece_dir.render, list(score.render.midi_files), rendered=score.render.repeats
    )


def record(
    piece_dir: PieceDir,
    order: PlayingOrder,
    path: Path,
    *,
    degradation: Degradation | None = None,
    tempo_ratio: float = 0.9,
    rate: int = 22050,
    channels: int = 1,
    seed: int = 1,
) -> np.ndarray:
    """Write a humanized, held-out-soundfont recording of ``order``; return its true events."""
    import soundfile
    import soxr

    plan = humanized_plan(piece_dir.piece_id, tempo_ratio=tempo_ratio, seed=seed)
    audio, truth = known_truth_recording(
        order.events,
        plan,
        degradation or Degradation(),
        soundfonts=load_soundfonts(),
        cache=default_soundfont_cache(),
    )
    signal = soxr.resample(audio, 22050, rate) if rate != 22050 else audio
    if channels == 2:
        signal = np.stack([signal, 0.8 * signal], axis=1)
    # In blocks: one long write to Ogg Vorbis overflows libvorbis's stack buffer.
    with soundfile.SoundFile(str(path), "w", rate, channels) as handle:
        for start in range(0, len(signal), 1 << 14):
            handle.write(signal[start : start + (1 << 14)])
    return truth
