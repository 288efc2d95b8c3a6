"""Tool and configuration errors stop a build before its first piece, with the fix."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.core.errors import ToolNotFoundError
from msmd_builder.lilypond import tools
from msmd_builder.pipeline.run import process_piece
from msmd_builder.pipeline.settings import build_settings
from msmd_builder.stages import render
from msmd_builder.stages.perform import fluidsynth
from msmd_builder.stages.perform.soundfonts import load_soundfonts
from tests.conftest import EXAMPLES_ROOT
from tests.helpers.build import entry_of

PIECE = "ExampleA__O3__ornament-rondino"


def _dataset(tmp_path, *extra: str):
    return CliRunner().invoke(
        main,
        [
            "dataset",
            str(EXAMPLES_ROOT),
            "--work-dir",
            str(tmp_path / "work"),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "1",
            "--piece",
            PIECE,
            *extra,
        ],
    )


@pytest.fixture
def no_fluidsynth(monkeypatch):
    """The Python binding of FluidSynth cannot be imported, as without libfluidsynth."""
    fluidsynth._fluid.cache_clear()
    monkeypatch.setitem(sys.modules, "fluidsynth", None)
    yield
    fluidsynth._fluid.cache_clear()


def test_missing_fluidsynth_stops_the_dataset_build_at_once(no_fluidsynth, tmp_path):
    result = _dataset(tmp_path)
    assert result.exit_code == 2
    assert "FluidSynth is not available" in result.output
    assert "apt-get install libfluidsynth3" in result.output
    assert not (tmp_path / "work" / "pieces").exists()  # no piece was started
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_changed_soundfont_stops_the_dataset_build_at_once(monkeypatch, tmp_path):
    reference = load_soundfonts()[0]
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / reference.file_name).write_bytes(b"RIFF\x04\x00\x00\x00sfbk")  # not the packaged file
    monkeypatch.setenv("MSMD_SOUNDFONT_PATH", str(fonts))
    result = _dataset(tmp_path)
    assert result.exit_code == 2
    assert f"soundfont {reference.name!r}" in result.output
    assert "but soundfonts.txt expects" in result.output.replace("\n", " ")
    assert f"apt-get install --reinstall {reference.package}" in result.output.replace("\n", " ")
    assert not (tmp_path / "work" / "pieces").exists()


def test_missing_lilypond_stops_the_build_at_once(monkeypatch, tmp_path):
    import lilypond

    tools.lilypond_version.cache_clear()
    monkeypatch.setattr(lilypond, "executable", lambda script: tmp_path / "no" / script)
    try:
        result = _dataset(tmp_path)
    finally:
        tools.lilypond_version.cache_clear()
    assert result.exit_code == 2
    assert "not found at" in result.output
    assert "pip install lilypond==2.25.12" in result.output
    assert not (tmp_path / "work" / "pieces").exists()


def test_a_tool_error_inside_a_piece_is_raised_not_reported(monkeypatch, tmp_path):
    def gone():
        raise ToolNotFoundError("msmd.ily not found in /nowhere")

    monkeypatch.setattr(render, "patches_dir", gone)
    entry = entry_of(EXAMPLES_ROOT, "ftp/ExampleA/O3/ornament-rondino/ornament-rondino.ly")
    with pytest.raises(ToolNotFoundError, match="msmd.ily not found"):
        process_piece(entry, build_settings(tmp_path, EXAMPLES_ROOT, until="render"))
