"""Files shipped with msmd-builder outside its Python package.

The LilyPond hooks and the soundfont list.

They live at the top of the repository (``lilypond_patches/``, ``soundfonts.txt``),
where people read and edit them.  A wheel carries copies inside the package, in
``msmd_builder/_shipped/`` (``setup.py`` puts them there), so a non-editable
``pip install .`` finds them too; a source checkout or an editable install uses
the top-level originals.
"""

from __future__ import annotations

from pathlib import Path

from msmd_builder.core.errors import ToolNotFoundError

__all__ = ["SHIPPED", "shipped_path"]

#: Names of the shipped files and folders, relative to the repository's top level.
SHIPPED: tuple[str, ...] = ("lilypond_patches", "soundfonts.txt")

_PACKAGE = Path(__file__).resolve().parent.parent


def shipped_path(name: str) -> Path:
    """Return where a shipped file or folder is: inside the installed package, else the checkout.

    Parameters
    ----------
    name : str
        One of :data:`SHIPPED`.

    Raises
    ------
    ToolNotFoundError
        If neither copy exists (a broken installation).
    """
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped with msmd-builder; known: {SHIPPED}")
    for candidate in (_PACKAGE / "_shipped" / name, _PACKAGE.parent / name):
        if candidate.exists():
            return candidate
    raise ToolNotFoundError(
        f"{name} is missing from this msmd-builder installation (looked in "
        f"{_PACKAGE / '_shipped'} and {_PACKAGE.parent}); reinstall it with `pip install .` "
        "from the source checkout"
    )
