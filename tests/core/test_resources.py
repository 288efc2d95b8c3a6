"""The hooks and the soundfont list travel with the package, so a non-editable install works."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from msmd_builder.core.resources import SHIPPED, shipped_path
from tests.conftest import REPO_ROOT


def test_shipped_files_are_found_in_the_checkout():
    assert shipped_path("soundfonts.txt") == REPO_ROOT / "soundfonts.txt"
    assert (shipped_path("lilypond_patches") / "msmd.ily").is_file()
    with pytest.raises(ValueError, match="not shipped"):
        shipped_path("README.md")


@pytest.mark.slow
def test_the_wheel_carries_the_hooks_soundfont_list_and_templates(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", *SHIPPED):
        copy = shutil.copytree if (REPO_ROOT / name).is_dir() else shutil.copy2
        copy(REPO_ROOT / name, source / name)
    shutil.copytree(
        REPO_ROOT / "msmd_builder",
        source / "msmd_builder",
        ignore=shutil.ignore_patterns("__pycache__", "_shipped"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("msmd_builder-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    hooks = {p.name for p in (REPO_ROOT / "lilypond_patches").glob("*.ily")}
    assert {f"msmd_builder/_shipped/lilypond_patches/{h}" for h in hooks} <= names
    assert "msmd_builder/_shipped/soundfonts.txt" in names
    assert {"msmd_builder/stages/perform/stage.py", "msmd_builder/py.typed"} <= names
    templates = {p.name for p in (REPO_ROOT / "msmd_builder/outputs/templates").glob("*")}
    assert {f"msmd_builder/outputs/templates/{t}" for t in templates} <= names
