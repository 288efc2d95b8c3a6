r"""The include tree of a piece and the header fields it defines.

Includes are followed recursively, as LilyPond does: an include inside a
``\header`` adds its assignments to that header, one elsewhere is read as a
LilyPond file.  A name is resolved against the including file's directory, then
the main file's directory (LilyPond's include path), then LilyPond's own ``ly/``
files (:data:`LILYPOND_SYSTEM_INCLUDES`, not recorded).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from msmd_builder.stages.corpus.lexer import (
    _Assign,
    _Block,
    _HeaderBlock,
    _Include,
    _SourceFile,
    _value_text,
)

__all__ = ["MUTOPIA_KEYS", "LILYPOND_SYSTEM_INCLUDES"]


#: Header keys that make a ``\header`` block a Mutopia header.
MUTOPIA_KEYS: frozenset[str] = frozenset(
    {"mutopiatitle", "mutopiacomposer", "mutopiaopus", "mutopiainstrument", "maintainer"}
)


#: Files of LilyPond's own ``ly/`` directory (any 2.x version) that pieces
#: include by bare name. An include of one of these that is not found beside the
#: piece is resolved by LilyPond itself; it is neither recorded nor a problem.
LILYPOND_SYSTEM_INCLUDES: frozenset[str] = frozenset(
    {
        "arabic.ly",
        "articulate.ly",
        "bagpipe.ly",
        "catalan.ly",
        "deutsch.ly",
        "english.ly",
        "espanol.ly",
        "event-listener.ly",
        "festival.ly",
        "gregorian.ly",
        "gregorian-init.ly",
        "guile-debugger.ly",
        "hel-arabic.ly",
        "italiano.ly",
        "lilypond-book-preamble.ly",
        "makam.ly",
        "nederlands.ly",
        "norsk.ly",
        "paper16.ly",
        "paper20.ly",
        "paper23.ly",
        "paper26.ly",
        "persian.ly",
        "piano-tkit.ly",
        "portugues.ly",
        "predefined-guitar-fretboards.ly",
        "predefined-guitar-ninth-fretboards.ly",
        "predefined-mandolin-fretboards.ly",
        "predefined-ukulele-fretboards.ly",
        "property-init.ly",
        "satb.ly",
        "scheme-sandbox.ly",
        "ssaattbb.ly",
        "suomi.ly",
        "svenska.ly",
        "swing.ly",
        "turkish-makam.ly",
        "vlaams.ly",
    }
)


_MAX_INCLUDE_DEPTH = 32


class _Tree:
    """The files of a Mutopia checkout, with exact and case-insensitive lookup."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.abspath(root)
        self.prefix = self.root.rstrip(os.sep) + os.sep
        self.files: set[str] = set()
        self.lower: dict[str, list[str]] = {}
        self.cache: dict[str, _SourceFile] = {}
        for dirpath, dirnames, filenames in os.walk(os.path.join(self.root, "ftp")):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if not name.startswith("."):
                    full = os.path.join(dirpath, name)
                    self.files.add(full)
                    self.lower.setdefault(full.lower(), []).append(full)

    def rel(self, path: str) -> str:
        """POSIX path relative to the Mutopia root."""
        if path.startswith(self.prefix):
            rel = path[len(self.prefix) :]
        else:
            rel = os.path.relpath(path, self.root)
        return rel.replace(os.sep, "/")

    def source(self, path: str) -> _SourceFile:
        """Return the (cached) source file at an absolute path."""
        found = self.cache.get(path)
        if found is None:
            found = self.cache[path] = _SourceFile(path, self.rel(path))
        return found

    def resolve(self, name: str, including_dir: str, main_dir: str) -> tuple[str | None, str]:
        """Resolve an include name to a path.

        Returns the path (None if not found here) and a status: ``ok``,
        ``case-mismatch``, ``system`` (a LilyPond ``ly/`` file) or ``missing``.
        """
        candidates = [os.path.normpath(os.path.join(including_dir, name))]
        beside_main = os.path.normpath(os.path.join(main_dir, name))
        if beside_main != candidates[0]:
            candidates.append(beside_main)
        for candidate in candidates:
            if candidate in self.files:
                return candidate, "ok"
        for candidate in candidates:
            matches = self.lower.get(candidate.lower())
            if matches:
                return min(matches), "case-mismatch"
        if "/" not in name and name in LILYPOND_SYSTEM_INCLUDES:
            return None, "system"
        return None, "missing"


@dataclass
class _Expansion:
    """What a main file pulls in: includes in order, header blocks, problems."""

    includes: dict[str, _SourceFile]
    blocks: list[_Block]
    problems: list[str]
    variables: dict[str, str]

    @property
    def has_mutopia_header(self) -> bool:
        return any(key in MUTOPIA_KEYS for block in self.blocks for key, _, _ in block.fields)


def _add_problem(problems: list[str], problem: str) -> None:
    if problem not in problems:
        problems.append(problem)


def _expand(tree: _Tree, main: _SourceFile) -> _Expansion:
    r"""Follow the includes of ``main`` recursively and collect its header blocks.

    Includes inside a ``\header`` block contribute assignments to that block;
    includes elsewhere are read as LilyPond files (their own ``\header`` blocks
    and includes). ``\include \name`` is resolved through simple
    ``name = "file"`` definitions of the files read so far.
    """
    main_dir = os.path.dirname(main.path)
    result = _Expansion(includes={}, blocks=[], problems=[], variables={})
    variables = result.variables

    def resolve(src: _SourceFile, inc: _Include, stack: tuple[str, ...]) -> _SourceFile | None:
        name = inc.name
        if inc.dynamic:
            if name.startswith("\\") and name[1:] in variables:
                name = variables[name[1:]]
            else:
                _add_problem(result.problems, f"dynamic-include:{inc.name}")
                return None
        path, status = tree.resolve(name, os.path.dirname(src.path), main_dir)
        if path is None:
            if status == "missing":
                _add_problem(result.problems, f"missing-include:{name}")
            return None
        if status == "case-mismatch":
            _add_problem(result.problems, f"case-mismatch:{name}->{tree.rel(path)}")
        if path in stack or len(stack) > _MAX_INCLUDE_DEPTH:
            _add_problem(result.problems, f"include-cycle:{tree.rel(path)}")
            return None
        target = tree.source(path)
        result.includes.setdefault(target.rel, target)
        return target

    def visit_body(
        src: _SourceFile,
        items: Sequence[_Include | _Assign],
        block: list[tuple[str, str, str]],
        stack: tuple[str, ...],
    ) -> None:
        for item in items:
            if isinstance(item, _Assign):
                block.append((item.key, item.raw, src.rel))
            else:
                target = resolve(src, item, stack)
                if target is not None:
                    visit_body(target, target.body(), block, (*stack, target.path))

    def visit_top(src: _SourceFile, stack: tuple[str, ...], depth: int) -> None:
        top = src.top()
        variables.update(top.string_vars)
        for item in top.items:
            if isinstance(item, _HeaderBlock):
                block = _Block(depth + item.depth, [])
                visit_body(src, item.items, block.fields, stack)
                result.blocks.append(block)
            else:
                target = resolve(src, item, stack)
                if target is not None:
                    visit_top(target, (*stack, target.path), depth + item.depth)

    visit_top(main, (main.path,), 0)
    result.includes.pop(main.rel, None)
    return result


_REFERENCE_RE = re.compile(r"\\([A-Za-z][A-Za-z-]*)\Z")


def _header_field(
    blocks: Sequence[_Block],
    keys: Sequence[str],
    variables: dict[str, str] | None = None,
    *,
    as_printed: bool = False,
    _depth: int = 0,
) -> tuple[str, str, str]:
    r"""Return (text, key, origin file) of the value of the first of ``keys`` that is set.

    Only usable values count (not empty, not ``##f``). By default the value is
    the first one found in a Mutopia header block (one with a key of
    :data:`MUTOPIA_KEYS`), else in any block: the Mutopia header is the
    metadata record of the file. With ``as_printed`` it is the value LilyPond
    prints: among the outermost blocks that set the key, the last one (a later
    ``\header`` overrides an earlier one; a ``\header`` inside ``\score`` or
    ``\bookpart`` only counts when no outer block sets the key). A reference
    (``title = \mutopiatitle``) is replaced by that header field or, failing
    that, by the top-level string variable of that name.
    """

    def usable(raw: str, wanted: str) -> str:
        text = _value_text(raw)
        reference = _REFERENCE_RE.match(raw.strip().rstrip(";").strip())
        if reference and _depth < 4:
            name = reference.group(1)
            resolved = ""
            if name != wanted:
                resolved = _header_field(
                    blocks, (name,), variables, as_printed=as_printed, _depth=_depth + 1
                )[0]
            if not resolved and variables:
                resolved = variables.get(name, "")
            text = resolved or text
        return text

    if as_printed:
        for wanted in keys:
            best: tuple[int, str, str, str] | None = None
            for block in blocks:
                if best is not None and block.depth > best[0]:
                    continue
                for key, raw, origin in block.fields:
                    if key == wanted and (text := usable(raw, wanted)):
                        best = (block.depth, text, key, origin)
            if best is not None:
                return best[1], best[2], best[3]
        return "", "", ""

    mutopia = [b for b in blocks if any(key in MUTOPIA_KEYS for key, _, _ in b.fields)]
    for group in (mutopia, blocks):
        for wanted in keys:
            for block in group:
                for key, raw, origin in block.fields:
                    if key == wanted and (text := usable(raw, wanted)):
                        return text, key, origin
    return "", "", ""


def _source_digest(files: Iterable[tuple[str, str]]) -> str:
    r"""SHA-256 over ``"<sha256>  <path>\n"`` lines sorted by path (``sha256sum`` style)."""
    digest = hashlib.sha256()
    for rel, sha in sorted(files):
        digest.update(f"{sha}  {rel}\n".encode())
    return digest.hexdigest()
