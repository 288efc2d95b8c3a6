"""The ``msmd-build`` command line: thin click wrappers around library functions."""

from msmd_builder.cli import build, export, outputs, soundfonts, splits, train  # noqa: F401
from msmd_builder.cli.main import main

__all__ = ["main"]
