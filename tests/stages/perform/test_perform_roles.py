"""The perform stage for some split roles only: what it synthesizes, keeps and reuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msmd_builder.core.errors import NotBuiltError
from msmd_builder.core.workdir import PieceDir
from msmd_builder.dataset.built import BuiltPiece
from msmd_builder.stages.perform.plans import PerformanceRecipe, SplitRecipe, plan_piece
from msmd_builder.stages.perform.soundfonts import load_soundfonts
from msmd_builder.stages.perform.stage import PerformSettings
from msmd_builder.stages.perform.stage import run as perform_stage
from tests.helpers.build import entry_of, run_stages
from tests.helpers.writes import file_writes

pytestmark = pytest.mark.slow

PIECE = r"""\version "2.24.0"
\header { title = "Roles" }
\score {
  \new PianoStaff <<
    \new Staff \relative c'' { c4 d e f | g2 e | c1 }
    \new Staff \relative c { \clef bass c2 g' | c, g' | c,1 }
  >>
  \layout { } \midi { }
}
"""
#: Two training renderings (train and valid share them), one held-out rendering.
RECIPE = PerformanceRecipe(
    name="roles-test",
    train=SplitRecipe(tempo_ratios=(2.0,), n_performances=2),
    valid=SplitRecipe(tempo_ratios=(2.0,), n_performances=2),
    test=SplitRecipe(soundfont_role="test", tempo_ratios=(2.0,), n_performances=1),
)


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    main_file = "ftp/TestR/Op1/roles/roles.ly"
    (root / main_file).parent.mkdir(parents=True)
    (root / main_file).write_text(PIECE, encoding="utf-8")
    work = tmp_path_factory.mktemp("work")
    record = run_stages(root, main_file, work, "align")
    return record, PieceDir.of(work, entry_of(root, main_file).piece_id)


def _settings(roles: tuple[str, ...] | None) -> PerformSettings:
    return PerformSettings(seed=5, recipe=RECIPE, roles=roles)


def test_a_piece_gets_the_performances_of_its_roles_and_keeps_them(aligned):
    record, piece_dir = aligned
    plans, roles = plan_piece(record.piece_id, soundfonts=load_soundfonts(), seed=5, recipe=RECIPE)
    train_ids, test_ids = roles["train"], roles["test"]
    assert len(train_ids) == 2 and len(test_ids) == 1 and roles["valid"] == train_ids

    trained = perform_stage(record, _settings(("train",)), piece_dir)
    assert trained.roles == {"train": train_ids}
    assert [p.performance_id for p in trained.plans] == train_ids
    assert sorted(p.name for p in piece_dir.perform.glob("*.npz")) == sorted(
        f"{i}.npz" for i in train_ids
    )
    built = BuiltPiece.open(piece_dir)
    assert [e["performance_id"] for e in built.performance_entries("train")] == train_ids
    with pytest.raises(NotBuiltError, match="no test performances"):
        built.performance_entries("test")
    # The reference rendering is checked whichever roles are asked for, so its
    # file (and cache key) is the one a build of every role writes.
    assert trained.performances[0].onset_fraction is not None
    assert trained.performances[1].onset_fraction is None

    before = file_writes(piece_dir.perform)
    both = perform_stage(record, _settings(("train", "test")), piece_dir)
    assert both.roles == {"train": train_ids, "test": test_ids}
    after = file_writes(piece_dir.perform)
    # Only the held-out rendering is new; the training renderings were not touched.
    assert {k: v for k, v in after.items() if k in before and k.endswith(".npz")} == {
        k: v for k, v in before.items() if k.endswith(".npz")
    }
    assert sorted(k for k in after if k not in before) == [f"{test_ids[0]}.npz"]
    assert [r.skipped for r in both.performances] == [True, True, False]

    # Fewer roles again: the other role's file stays for a later build, unlisted.
    again = perform_stage(record, _settings(("test",)), piece_dir)
    assert again.roles == {"test": test_ids}
    assert all(r.skipped for r in again.performances)
    assert (piece_dir.perform / f"{train_ids[0]}.npz").exists()
    # Every role (the default outside dataset builds): nothing is synthesized.
    every = perform_stage(record, _settings(None), piece_dir)
    assert every.roles == roles and all(r.skipped for r in every.performances)
    assert [p.performance_id for p in every.plans] == [p.performance_id for p in plans]
    assert {k: v for k, v in file_writes(piece_dir.perform).items() if k.endswith(".npz")} == {
        k: v for k, v in after.items() if k.endswith(".npz")
    }


def test_roles_must_be_split_roles():
    from msmd_builder.core.errors import ConfigError

    with pytest.raises(ConfigError, match="roles must be None or a tuple"):
        PerformSettings(roles=("training",))
    with pytest.raises(ConfigError, match="roles must be None or a tuple"):
        PerformSettings(roles=["train"])  # type: ignore[arg-type]


def test_other_fluidsynth_settings_synthesize_again_and_are_recorded(aligned, tmp_path):
    import shutil

    from msmd_builder.stages.perform.fluidsynth import SynthSettings

    record, piece_dir = aligned
    work = PieceDir.of(tmp_path, piece_dir.piece_id)
    shutil.copytree(piece_dir.root, work.root)
    msmd = perform_stage(record, _settings(("test",)), work)
    linear = perform_stage(
        record,
        PerformSettings(
            seed=5, recipe=RECIPE, roles=("test",), synth=SynthSettings(interpolation="linear")
        ),
        work,
    )
    assert [r.skipped for r in linear.performances] == [False]
    assert linear.performances[0].cache_key != msmd.performances[0].cache_key
    with np.load(linear.performances[0].path) as data:
        assert json.loads(str(data["synth_json"]))["settings"]["interpolation"] == "linear"
