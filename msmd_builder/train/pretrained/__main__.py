"""``python -m msmd_builder.train.pretrained RUN_DIR``: ship a run's model with the package."""

from __future__ import annotations

import sys

from msmd_builder.core.errors import MsmdError
from msmd_builder.train.pretrained import install_pretrained


def main(argv: list[str]) -> int:
    """Install the model of the run folder ``argv[0]``; print where it went."""
    if len(argv) != 1:
        print("usage: python -m msmd_builder.train.pretrained RUN_DIR", file=sys.stderr)
        return 2
    try:
        path = install_pretrained(argv[0])
    except MsmdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = path.stat().st_size / 2**20
    print(f"installed {path} ({size:.1f} MiB) and {path.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
