"""The hooks and the soundfont list travel with the package, so a non-editable install works."""

from __future__ import annotations

import zipfile

import pytest

from msmd_builder.core.resources import shipped_path
from tests.conftest import REPO_ROOT


def test_shipped_files_are_found_in_the_checkout():
    assert shipped_path("soundfonts.txt") == REPO_ROOT / "soundfonts.txt"
    assert (shipped_path("lilypond_patches") / "msmd.ily").is_file()
    with pytest.raises(ValueError, match="not shipped"):
        shipped_path("README.md")


@pytest.mark.slow
def test_the_wheel_carries_the_hooks_soundfont_list_and_templates(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    hooks = {p.name for p in (REPO_ROOT / "lilypond_patches").glob("*.ily")}
    assert {f"msmd_builder/_shipped/lilypond_patches/{h}" for h in hooks} <= names
    assert "msmd_builder/_shipped/soundfonts.txt" in names
    assert {"msmd_builder/stages/perform/stage.py", "msmd_builder/py.typed"} <= names
    templates = {p.name for p in (REPO_ROOT / "msmd_builder/outputs/templates").glob("*")}
    assert {f"msmd_builder/outputs/templates/{t}" for t in templates} <= names
