"""``python -m msmd_builder``: the ``msmd-build`` command line."""

from msmd_builder.cli import main

main()
