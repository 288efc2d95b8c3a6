"""Build hook: ship the top-level ``lilypond_patches/`` and ``soundfonts.txt`` inside the wheel.

Everything else is declared in ``pyproject.toml``.  The copies land in
``msmd_builder/_shipped/``, where :mod:`msmd_builder.core.resources` looks first.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("lilypond_patches", "soundfonts.txt")


class BuildPyWithShippedFiles(build_py):
    """``build_py`` that also copies the shipped files into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the originals in the checkout
        target = Path(self.build_lib) / "msmd_builder" / "_shipped"
        target.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED:
            source = HERE / name
            if source.is_dir():
                shutil.copytree(
                    source, target / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*~")
                )
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
