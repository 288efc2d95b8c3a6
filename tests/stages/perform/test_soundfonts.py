"""Tests of msmd_builder.stages.perform.soundfonts against the installed soundfonts."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from msmd_builder.core.cache import sha256_file
from msmd_builder.core.errors import ConfigError, ToolNotFoundError
from msmd_builder.core.tables import empty_performed_events
from msmd_builder.stages.perform.soundfonts import (
    SOUNDFONT_PATH_ENV,
    SoundfontSpec,
    check_soundfonts,
    default_soundfonts_file,
    find_soundfont,
    format_check_report,
    load_soundfonts,
    locate,
    parse_soundfonts,
    read_presets,
    soundfont_search_dirs,
    soundfonts_with_role,
)

SPECS = load_soundfonts()


def _path_or_skip(spec: SoundfontSpec) -> Path:
    try:
        return locate(spec)
    except ToolNotFoundError as exc:
        pytest.skip(f"soundfont not installed: {exc}")


# --- the list itself --------------------------------------------------------------


def test_soundfonts_txt_parses_into_msmd_shape():
    assert default_soundfonts_file().name == "soundfonts.txt"
    assert len(SPECS) >= 4
    train = soundfonts_with_role(SPECS, "train")
    test = soundfonts_with_role(SPECS, "test")
    assert len(train) == 3 and len(test) == 1  # MSMD: three for training, one held out
    assert len({s.name for s in SPECS}) == len(SPECS)
    assert len({(s.file_name, s.bank, s.program) for s in SPECS}) == len(SPECS)
    for spec in SPECS:
        assert len(spec.sha256) == 64
        assert "/" not in spec.file_name
        assert SoundfontSpec.from_dict(spec.to_dict()) == spec
    assert find_soundfont(SPECS, test[0].name) == test[0]
    with pytest.raises(ConfigError, match="unknown soundfont 'no-such-soundfont'; known: "):
        find_soundfont(SPECS, "no-such-soundfont")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("only | three | fields", "expected 7 '|'-separated fields, got 3"),
        (
            "Bad_Name | a.sf2 | pkg | " + "0" * 64 + " | 0:0 | train | x",
            r"name 'Bad_Name' must match \[a-z0-9\]\[a-z0-9-\]\*",
        ),
        (
            "ok | dir/a.sf2 | pkg | " + "0" * 64 + " | 0:0 | train | x",
            "file 'dir/a.sf2' must be a bare file name",
        ),
        ("ok | a.sf2 | pkg | 1234 | 0:0 | train | x", "sha256 '1234' is not 64 hex digits"),
        (
            "ok | a.sf2 | pkg | " + "0" * 64 + " | 0-0 | train | x",
            "preset '0-0' must be bank:program, e.g. 0:0",
        ),
        (
            "ok | a.sf2 | pkg | " + "0" * 64 + " | 0:128 | train | x",
            r"preset '0:128' out of range \(bank 0\.\.16383, program 0\.\.127\)",
        ),
        (
            "ok | a.sf2 | pkg | " + "0" * 64 + " | 0:0 | valid | x",
            "role 'valid' must be 'train' or 'test'",
        ),
    ],
)
def test_malformed_lines_are_rejected(line, message):
    with pytest.raises(ConfigError, match=f"^<string>:2: {message}$"):
        parse_soundfonts("# header\n" + line + "\n")


def test_duplicates_are_rejected():
    line = "a | a.sf2 | pkg | " + "0" * 64 + " | 0:0 | train | x"
    with pytest.raises(ConfigError, match="duplicate"):
        parse_soundfonts(line + "\n" + line)
    with pytest.raises(ConfigError, match="twice"):
        parse_soundfonts(line + "\n" + line.replace("a |", "b |", 1))


def test_comments_and_blank_lines_are_skipped():
    text = "# c\n\n  # indented comment\nx | x.sf2 | p | " + "a" * 64 + " | 0:1 | test | P\n"
    (spec,) = parse_soundfonts(text)
    assert (spec.name, spec.bank, spec.program, spec.role) == ("x", 0, 1, "test")


# --- locating ---------------------------------------------------------------------


def test_missing_file_raises_with_apt_hint(tmp_path):
    spec = SPECS[0]
    with pytest.raises(ToolNotFoundError, match=f"soundfont '{spec.name}': .* not found") as info:
        locate(spec, search_dirs=[tmp_path])
    assert f"apt-get install {spec.package}" in str(info.value)
    assert spec.file_name in str(info.value)


def test_env_var_directories_are_searched_first(tmp_path, monkeypatch):
    spec = SPECS[0]
    (tmp_path / spec.file_name).write_bytes(b"not really a soundfont")
    monkeypatch.setenv(SOUNDFONT_PATH_ENV, os.pathsep.join(["/nonexistent-dir", str(tmp_path)]))
    dirs = soundfont_search_dirs()
    assert dirs[:2] == [Path("/nonexistent-dir"), tmp_path]
    assert Path("/usr/share/sounds/sf2") in dirs
    assert locate(spec) == tmp_path / spec.file_name


def test_check_reports_missing_and_bad_files(tmp_path):
    spec = SPECS[0]
    (tmp_path / spec.file_name).write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    missing = SoundfontSpec("ghost", "ghost.sf2", "ghost-pkg", "0" * 64, 0, 0, "train")
    results = check_soundfonts([spec, missing], search_dirs=[tmp_path])
    assert [r.present for r in results] == [True, False]
    assert not results[0].checksum_ok and not results[0].ok
    assert not results[1].ok and "apt-get install ghost-pkg" in results[1].message
    report = format_check_report(results)
    assert "BAD" in report and "MISSING" in report and "0 of 2 soundfonts ok" in report


# --- the installed files ------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_installed_checksum_and_preset_match(spec):
    path = _path_or_skip(spec)
    assert sha256_file(path) == spec.sha256
    presets = read_presets(path)
    info = presets[(spec.bank, spec.program)]
    assert info.name == spec.preset_name
    assert info.sample_names, "preset plays no samples"


def test_check_soundfonts_all_ok():
    for spec in SPECS:
        _path_or_skip(spec)
    results = check_soundfonts(SPECS)
    assert all(r.ok for r in results), format_check_report(results)
    assert f"{len(SPECS)} of {len(SPECS)} soundfonts ok" in format_check_report(results)


def test_presets_play_disjoint_sample_sets():
    samples = {}
    for spec in SPECS:
        path = _path_or_skip(spec)
        samples[spec.name] = set(read_presets(path)[(spec.bank, spec.program)].sample_names)
    for a, b in itertools.combinations(samples, 2):
        # Sample names are per file; within FluidR3_GM they identify the sample.
        assert not samples[a] & samples[b], f"{a} and {b} share samples"


def _phrase() -> np.ndarray:
    notes = [(48, 0.0, 0.8), (64, 0.0, 0.8), (67, 0.4, 1.0), (72, 0.8, 1.4), (84, 1.2, 1.8)]
    ev = empty_performed_events(len(notes))
    for i, (pitch, on, off) in enumerate(notes):
        ev[i]["pitch"], ev[i]["onset_sec"], ev[i]["offset_sec"] = pitch, on, off
        ev[i]["velocity"] = 64
    return ev


def test_each_preset_is_audible_and_distinct():
    from msmd_builder.stages.perform.fluidsynth import (
        default_soundfont_cache,
        fluidsynth_version,
        synthesize,
    )
    from msmd_builder.stages.perform.realize import snap_to_render_grid

    try:
        fluidsynth_version()
    except ToolNotFoundError as exc:
        pytest.skip(f"FluidSynth not available: {exc}")
    events = snap_to_render_grid(_phrase())
    audio = {}
    for spec in SPECS:
        path = _path_or_skip(spec)
        audio[spec.name] = synthesize(
            events,
            soundfont_path=path,
            bank=spec.bank,
            program=spec.program,
            cache=default_soundfont_cache(),
        )
    for name, a in audio.items():
        rms = float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))
        assert rms > 1e-3, f"{name} is (nearly) silent: rms {rms:.2e}"
    for a, b in itertools.combinations(audio, 2):
        x, y = audio[a].astype(np.float64), audio[b].astype(np.float64)
        n = min(x.size, y.size)
        x, y = x[:n], y[:n]
        correlation = float(x @ y / np.sqrt((x @ x) * (y @ y)))
        assert correlation < 0.8, f"{a} and {b} sound alike (correlation {correlation:.2f})"
        # Their long-term spectra differ too (not just a phase or level change).
        sx, sy = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
        spectral = float(sx @ sy / np.sqrt((sx @ sx) * (sy @ sy)))
        assert spectral < 0.95, f"{a} and {b} have alike spectra ({spectral:.3f})"
