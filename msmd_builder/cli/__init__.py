"""The ``msmd-build`` command line: thin click wrappers around library functions."""

from msmd_builder.cli import (  # noqa: F401 (commands)
    build,
    export,
    outputs,
    recordings,
    soundfonts,
    splits,
    train,
)
from msmd_builder.cli.main import main

__all__ = ["main"]
