"""``soundfonts check``."""

from __future__ import annotations

import click

from msmd_builder.cli.main import main

__all__ = ["soundfonts", "soundfonts_check"]


@main.group()
def soundfonts() -> None:
    """Soundfonts used for synthesis (listed in soundfonts.txt)."""


@soundfonts.command("check")
@click.option("--no-checksum", is_flag=True, help="Skip the SHA-256 comparison (faster).")
def soundfonts_check(no_checksum: bool) -> None:
    """Verify that every soundfont of soundfonts.txt is installed and unchanged.

    Prints one line per soundfont and, for missing ones, the apt-get command
    that installs them.  Exits with status 1 if any check fails.
    """
    from msmd_builder.stages.perform.soundfonts import (
        check_soundfonts,
        format_check_report,
        load_soundfonts,
    )

    results = check_soundfonts(load_soundfonts(), verify_checksum=not no_checksum)
    click.echo(format_check_report(results))
    if not all(r.ok for r in results):
        raise SystemExit(1)
