"""``python -m msmd_builder.cli``: the ``msmd-build`` command line."""

from msmd_builder.cli import main

main()
