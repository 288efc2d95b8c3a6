"""A dataset build synthesizes the roles its splits give each piece, also after a piece fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.core.workdir import WorkDir
from msmd_builder.dataset.built import BuiltPiece
from msmd_builder.dataset.reader import open_split
from msmd_builder.stages.perform.plans import choose_recipe, plan_piece
from msmd_builder.stages.perform.soundfonts import load_soundfonts
from msmd_builder.stages.splits.recipes import make_split

pytestmark = pytest.mark.slow

HEADER = """\\version "2.24.0"
\\header {{
  title = "{name}"
  mutopiatitle = "{name}"
  mutopiacomposer = "Test{composer}"
  mutopiainstrument = "Piano"
  license = "Public Domain"
}}
"""
MUSIC = r"""\score {
  \new Staff \relative c'' { \key g \major g4 a b c | d2 %s | g,1 }
  \layout { } \midi { }
}
"""
NAMES = ("alpha", "beta", "gamma", "delta")
BROKEN = "omega"
RECIPE = """name: roles-test
train: {n_performances: 1, tempo_ratios: [2.0]}
valid: {n_performances: 1, tempo_ratios: [2.0]}
test: {tempo_ratios: [2.0]}
"""


def piece_id(name: str) -> str:
    return f"Test{name.capitalize()}__O1__{name}"


def write_corpus(root: Path) -> None:
    notes = ("b", "c", "a", "fis")
    for name, note in [*zip(NAMES, notes, strict=True), (BROKEN, "b")]:
        folder = root / "ftp" / f"Test{name.capitalize()}" / "O1" / name
        folder.mkdir(parents=True)
        body = MUSIC % note
        if name == BROKEN:
            body = '\\include "nowhere.ly"\n' + body
        text = HEADER.format(name=name, composer=name.capitalize()) + body
        (folder / f"{name}.ly").write_text(text, encoding="utf-8")


def test_a_piece_moved_into_another_role_by_a_failure_gets_its_performances(tmp_path):
    ids = [piece_id(name) for name in (*NAMES, BROKEN)]
    # A seed whose split, drawn as if every piece built, tests the broken piece:
    # when it fails, another piece moves into the test part.
    seed = next(s for s in range(500) if make_split(ids, "all", seed=s).parts["test"] == (ids[-1],))
    root, work, out = tmp_path / "corpus", tmp_path / "work", tmp_path / "out"
    write_corpus(root)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    args = ["--splits", "all", "--seed", str(seed), "--performance-recipe", str(recipe)]
    args += ["--synth-interpolation", "linear"]  # opt-in FluidSynth settings are recorded
    result = CliRunner().invoke(
        main,
        ["dataset", str(root), "--work-dir", str(work), "--out", str(out), "--workers", "2", *args],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    summary = report["summary"]
    statuses = {p["piece_id"]: p["status"] for p in report["pieces"]}
    assert statuses[ids[-1]] == "failed" and sum(s != "failed" for s in statuses.values()) == 4
    assert summary["performed_roles"] == "the splits' roles"
    assert summary["pieces_performed_again_for_new_roles"] >= 1

    before = make_split(ids, "all", seed=seed)
    after = make_split(ids[:-1], "all", seed=seed)
    moved = [i for i in after.parts["test"] if i not in before.parts["test"]]
    assert moved  # the draw changed: a piece performed for training is now a test piece
    specs, planned = load_soundfonts(), choose_recipe(recipe_file=recipe)
    manifest = json.loads((out / "all" / "manifest.json").read_text())
    assert manifest["build_info"]["synthesis"]["interpolation"] == "linear"
    with open_split(out / "all") as reader:
        for part, members in after.parts.items():
            assert sorted(reader.piece_ids(part)) == sorted(members)
            for member in members:
                assert len(reader.read_piece(part, member).performances) == 1
    for member in ids[:-1]:
        wanted = {r for r, group in after.parts.items() if member in group}
        wanted |= {r for r, group in before.parts.items() if member in group}
        _, roles = plan_piece(member, soundfonts=specs, seed=seed, recipe=planned)
        expected = {f"{i}.npz" for role in wanted for i in roles[role]}
        piece = BuiltPiece.open(WorkDir(work).piece(member))
        assert set(piece.perform["roles"]) == wanted, member
        # Nothing synthesized for a role no split gave the piece.
        assert {p.name for p in piece.piece_dir.perform.glob("*.npz")} == expected, member
