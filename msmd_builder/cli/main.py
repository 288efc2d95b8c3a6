"""The ``msmd-build`` group: one clear line and exit code 2 for every msmd-builder error."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape

from msmd_builder import __version__
from msmd_builder.core.errors import MsmdError

__all__ = ["console", "main"]


console = Console(stderr=True)


class _Group(click.Group):
    """Click group that turns msmd-builder errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MsmdError as exc:
            # Escaped: messages hold square brackets ("[silent]") that rich takes for markup.
            message = escape(str(exc))
            console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
            raise SystemExit(2) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="msmd-build")
def main() -> None:
    """Build the MSMD audio–sheet-music dataset from LilyPond sources.

    \b
    Typical use:
      msmd-build corpus scan ../mutopia      find the solo keyboard pieces
      msmd-build corpus render --workers 2   render them all (PDF + unfolded MIDI)
      msmd-build piece BachJS__BWV846__wtk1-prelude1   one piece, all stages
    """
