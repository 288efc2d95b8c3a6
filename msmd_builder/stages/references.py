r"""The files a piece references, confined to the piece's own folder tree.

A piece is its main file, every file its ``\include``\ s reach (recursively),
the graphics its sources name (``\epsfile #X #10 #"logo.eps"``) and the other
LilyPond sources of the main file's folder.  All of them must lie in the
piece's folder tree, its Mutopia opus folder ``ftp/<Composer>/<Opus>/``
(:func:`piece_tree`): Mutopia pieces share headers and definitions inside the
opus folder (``../common/defs.ily``), never beyond it.  A reference that
resolves outside, by an absolute name, by ``../`` or through a symbolic link,
is an :class:`~msmd_builder.core.errors.UnsafeIncludeError` naming the path,
whether or not such a file exists: the build reads nothing of the machine a
source points at.  LilyPond's own ``ly/`` files (``\include "english.ly"``)
are the one exception; LilyPond finds them itself.

Names are resolved as LilyPond 2.25 does: against the including file's folder
first, then against the main file's folder (its working directory); graphics
against the main file's folder, then the naming file's.  A name that matches an
existing file only up to letter case is resolved to it and copied under the
name the source uses, as LilyPond on the case-insensitive file systems these
sources were written on would read it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from msmd_builder.core.errors import MissingIncludeError, UnsafeIncludeError
from msmd_builder.stages.corpus.includes import LILYPOND_SYSTEM_INCLUDES
from msmd_builder.stages.corpus.lexer import _strip_comments

__all__ = ["ASSET_SUFFIXES", "LILYPOND_SOURCE_SUFFIXES", "PieceFiles", "piece_tree", "piece_files"]

#: File endings copied along with a piece (LilyPond and Scheme sources).
LILYPOND_SOURCE_SUFFIXES = (".ly", ".ily", ".lyi", ".scm", ".ily.ly")
#: Endings of graphics a source may draw (``\epsfile``, ``\image``); copied byte for byte.
ASSET_SUFFIXES = (".eps", ".ps", ".png", ".svg")

_INCLUDE = re.compile(r'\\include(?![A-Za-z])\s*"((?:[^"\\]|\\.)*)"')
_ASSET = re.compile(
    r'"((?:[^"\\\n]|\\.)*\.(?:' + "|".join(s[1:] for s in ASSET_SUFFIXES) + r'))"', re.IGNORECASE
)
_MAX_FILES = 2000


def piece_tree(main_file: str) -> PurePosixPath:
    """Return the folder tree a piece may reference: ``ftp/<Composer>/<Opus>``.

    ``main_file`` is relative to the Mutopia root.  A main file less deep than
    an opus folder is confined to its own folder.
    """
    main = PurePosixPath(main_file)
    parts = main.parent.parts
    return PurePosixPath(*parts[:3]) if len(parts) >= 3 else main.parent


@dataclass
class PieceFiles:
    """What normalize copies for one piece.

    Attributes
    ----------
    sources : dict
        Copy target -> origin, both relative to the Mutopia root: the LilyPond
        sources (decoded and upgraded when copied).  They differ only for a
        name resolved up to letter case.
    assets : dict
        The same for graphics, copied byte for byte.
    notes : list of str
        Findings worth a warning in the record (case-resolved names, files of
        the main folder that are links out of the tree and were left out).
    """

    sources: dict[str, str] = field(default_factory=dict)
    assets: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _Resolver:
    """Resolve names inside one piece's tree, refusing anything that leaves it."""

    def __init__(self, root: Path, main_file: str, lilypond_ly_dir: Path | None) -> None:
        self.root = root
        self.root_real = os.path.realpath(root)
        self.main_file = main_file
        self.main_dir = PurePosixPath(main_file).parent
        self.tree = piece_tree(main_file)
        self.tree_real = os.path.realpath(root / self.tree)
        self.lilypond_ly_dir = lilypond_ly_dir

    def inside(self, relative: str) -> bool:
        """Return whether the root-relative path ``relative`` lies lexically inside the tree."""
        return relative == str(self.tree) or relative.startswith(f"{self.tree}/")

    def check_real(self, relative: str, *, named: str, by: str) -> None:
        """Raise unless the file, its symbolic links followed, lies inside the tree."""
        real = os.path.realpath(self.root / relative)
        if not (real == self.tree_real or real.startswith(self.tree_real + os.sep)):
            shown = (
                os.path.relpath(real, self.root_real) if real.startswith(self.root_real) else real
            )
            raise UnsafeIncludeError(
                f"{by}: {named!r} is a link to {shown}, outside the piece's folder tree "
                f"{self.tree}/"
            )

    def candidates(self, name: str, folders: list[PurePosixPath]) -> list[str]:
        out: list[str] = []
        for folder in folders:
            candidate = os.path.normpath(str(folder / name)).replace(os.sep, "/")
            if candidate not in out:
                out.append(candidate)
        return out

    def resolve(
        self, name: str, folders: list[PurePosixPath], *, by: str
    ) -> tuple[str, str] | None:
        """Return (target, origin) of ``name`` looked up in ``folders``, or None if not found.

        Raises
        ------
        UnsafeIncludeError
            If the name is absolute, or every lookup leaves the tree, or the
            file found is a link out of it.
        """
        if name.startswith(("/", "~")) or re.match(r"[A-Za-z]:[\\/]", name):
            raise UnsafeIncludeError(
                f"{by}: {name!r} is an absolute path, outside the piece's folder tree {self.tree}/"
            )
        candidates = self.candidates(name, folders)
        inside = [c for c in candidates if self.inside(c)]
        if not inside:
            raise UnsafeIncludeError(
                f"{by}: {name!r} resolves to {candidates[0]}, outside the piece's folder tree "
                f"{self.tree}/"
            )
        for candidate in inside:
            if (self.root / candidate).is_file():
                self.check_real(candidate, named=name, by=by)
                return candidate, candidate
        for candidate in inside:
            origin = self._case_insensitive(candidate)
            if origin is not None:
                self.check_real(origin, named=name, by=by)
                return candidate, origin
        return None

    def _case_insensitive(self, relative: str) -> str | None:
        """Return the one file of the same folder whose name matches up to letter case."""
        path = PurePosixPath(relative)
        folder = self.root / path.parent
        if not folder.is_dir():
            return None
        matches = sorted(p.name for p in folder.iterdir() if p.name.lower() == path.name.lower())
        return str(path.parent / matches[0]) if len(matches) == 1 else None

    def is_lilypond_file(self, name: str) -> bool:
        """Return whether ``name`` is one of LilyPond's own ``ly/`` files (it finds them itself)."""
        if "/" in name:
            return False
        if name in LILYPOND_SYSTEM_INCLUDES:
            return True
        return self.lilypond_ly_dir is not None and (self.lilypond_ly_dir / name).is_file()


def piece_files(root: Path, main_file: str, *, lilypond_ly_dir: Path | None = None) -> PieceFiles:
    r"""Find every file a piece references and check that each lies inside its tree.

    Parameters
    ----------
    root : Path
        The Mutopia root (the folder holding ``ftp/``).
    main_file : str
        The piece's main file, relative to ``root``.
    lilypond_ly_dir : Path, optional
        LilyPond's own ``ly/`` folder: bare names found there are LilyPond's files.

    Returns
    -------
    PieceFiles

    Raises
    ------
    UnsafeIncludeError
        If the main file or any reference leaves the piece's folder tree.
    MissingIncludeError
        If an ``\include`` names a file that exists nowhere (nor in LilyPond's ``ly/``).
    """
    resolver = _Resolver(root, main_file, lilypond_ly_dir)
    if not resolver.inside(os.path.normpath(main_file)):
        raise UnsafeIncludeError(f"main file {main_file} is outside its folder tree")
    resolver.check_real(main_file, named=main_file, by="main file")
    found = PieceFiles()
    found.sources[main_file] = main_file
    queue = [main_file]
    main_dir = resolver.main_dir
    while queue:
        current = queue.pop(0)
        text = _strip_comments(
            (root / found.sources[current]).read_bytes().decode("utf-8", errors="replace")
        )
        here = PurePosixPath(current).parent
        for match in _INCLUDE.finditer(text):
            name = match.group(1).replace('\\"', '"')
            resolved = resolver.resolve(name, [here, main_dir], by=f"{current}: \\include")
            if resolved is None:
                if resolver.is_lilypond_file(name):
                    continue
                raise MissingIncludeError(f"{current}: included file {name} does not exist")
            target, origin = resolved
            if target != origin:
                found.notes.append(
                    f"{current}: include {name} resolved up to letter case: {origin}"
                )
            if target not in found.sources:
                found.sources[target] = origin
                queue.append(target)
                if len(found.sources) > _MAX_FILES:
                    raise UnsafeIncludeError(f"{main_file}: more than {_MAX_FILES} included files")
        for match in _ASSET.finditer(text):
            name = match.group(1)
            resolved = resolver.resolve(name, [main_dir, here], by=f"{current}: graphic")
            if resolved is not None:
                found.assets.setdefault(*resolved)
    # The other sources of the main file's folder (companion files, dynamic includes).
    for path in sorted((root / main_dir).iterdir()):
        relative = str(main_dir / path.name)
        if not path.name.endswith(LILYPOND_SOURCE_SUFFIXES) or relative in found.sources:
            continue
        if not path.is_file():
            continue
        try:
            resolver.check_real(relative, named=path.name, by="folder")
        except UnsafeIncludeError as exc:
            found.notes.append(f"not copied: {exc.message}")
            continue
        found.sources[relative] = relative
    return found
