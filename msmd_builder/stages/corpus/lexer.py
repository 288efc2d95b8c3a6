r"""Reading LilyPond sources just enough for the scan.

Files are decoded as UTF-8, comments are dropped, and three things are read:
``\version``, ``\include`` and ``\header { }`` blocks (:class:`_SourceFile`).
Header values are turned into plain text by :func:`_markup_text`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = []


_STRING = r'"(?:[^"\\]|\\.)*"'


_COMMENT_RE = re.compile(_STRING + r"|%\{.*?%\}|%[^\n]*", re.S)


_INCLUDE = r'\\include(?![A-Za-z])\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))'


_TOP_RE = re.compile(_STRING + r"|\\header\s*\{|" + _INCLUDE + r'|\\version\s*"([^"]*)"')


_BRACE_RE = re.compile(_STRING + r"|[{}]")


_BODY_RE = re.compile(r"(" + _STRING + r")|" + _INCLUDE + r"|([{}()])|(=)" + r'|([^\s{}()="]+)')


_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")


_UNESCAPE_RE = re.compile(r"\\(.)", re.S)


_SPACE_RE = re.compile(r"\s+")


_SCORE_RE = re.compile(r"\\(?:score|book|bookpart)(?![A-Za-z])")


_MUSIC_RE = re.compile(r"[{}]|<<")


_STRING_VAR_RE = re.compile(
    r'(?m)^[ \t]*([A-Za-z][A-Za-z-]*)[ \t]*=[ \t]*"((?:[^"\\\n]|\\.)*)"[ \t]*$'
)


def _strip_comments(text: str) -> str:
    r"""Replace LilyPond comments (``% ...`` and ``%{ ... %}``) by a space, keeping strings."""

    def repl(match: re.Match[str]) -> str:
        token = match.group(0)
        return token if token[0] == '"' else " "

    if "%" not in text:
        return text
    return _COMMENT_RE.sub(repl, text)


def _unescape(literal: str) -> str:
    """Return the content of a LilyPond/Scheme string literal given with its quotes."""
    inner = literal[1:-1]
    if "\\" not in inner:
        return inner
    return _UNESCAPE_RE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), inner)


def _matching_brace(text: str, start: int) -> int:
    """Return the index of the ``}`` closing the group opened just before ``start``."""
    depth = 1
    for match in _BRACE_RE.finditer(text, start):
        token = match.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0:
                return match.start()
    return len(text)


@dataclass(frozen=True)
class _Include:
    r"""An ``\include``: a literal file name, or (``dynamic``) the token that follows it."""

    name: str
    dynamic: bool
    depth: int = 0
    """Brace depth of the ``\\include`` in its file (0 inside header bodies)."""


@dataclass(frozen=True)
class _Assign:
    """``key = value`` inside a header; ``raw`` is the value's source text."""

    key: str
    raw: str


@dataclass(frozen=True)
class _HeaderBlock:
    r"""A ``\header { }`` block: its assignments and includes, in order."""

    items: tuple[_Include | _Assign, ...]
    depth: int
    r"""Brace depth of the block in its file: 0 at top level, 1 in a ``\score``, ..."""


@dataclass
class _Block:
    """A header block as read for one main file: (key, raw value, origin file) triples."""

    depth: int
    """Brace depth counted from the main file's top level, through includes."""
    fields: list[tuple[str, str, str]]


def _include_item(literal: str | None, other: str | None, depth: int = 0) -> _Include:
    if literal is not None:
        return _Include(_unescape('"' + literal + '"'), False, depth)
    return _Include(other or "", True, depth)


def _parse_body(body: str) -> tuple[_Include | _Assign, ...]:
    r"""Split the inside of a ``\header { }`` into assignments and includes.

    An assignment is ``key =`` at nesting depth 0; its value runs to the next
    assignment or include at depth 0 (so markups and Scheme values of any
    length are kept whole).
    """
    items: list[_Include | _Assign] = []
    tokens = list(_BODY_RE.finditer(body))
    depth = 0
    key: str | None = None
    value_start = 0

    def close(end: int) -> None:
        nonlocal key
        if key is not None:
            items.append(_Assign(key, body[value_start:end].strip()))
            key = None

    for i, match in enumerate(tokens):
        string, inc_literal, inc_other, brace, _equals, word = match.groups()
        if brace is not None:
            depth = depth + 1 if brace in "{(" else max(depth - 1, 0)
            continue
        if depth:
            continue
        if inc_literal is not None or inc_other is not None:
            close(match.start())
            items.append(_include_item(inc_literal, inc_other))
            continue
        candidate = word if word is not None else (_unescape(string) if string else None)
        if (
            candidate is not None
            and i + 1 < len(tokens)
            and tokens[i + 1].group(5) is not None
            and _KEY_RE.match(candidate)
        ):
            close(match.start())
            key = candidate
            value_start = tokens[i + 1].end()
    close(len(body))
    return tuple(items)


@dataclass(frozen=True)
class _TopLevel:
    """What a file contributes when read as a LilyPond file (not inside a header)."""

    items: tuple[_Include | _HeaderBlock, ...]
    version: str
    has_music: bool
    r"""Braces or ``<<`` outside ``\header`` blocks."""
    string_vars: dict[str, str]
    """Definitions ``name = "string"`` on a line of their own, outside headers."""


class _SourceFile:
    """A LilyPond source, read once per scan: hash, encoding, comment-free text."""

    __slots__ = ("path", "rel", "sha256", "encoding_ok", "raw_text", "_text", "_top", "_body")

    def __init__(self, path: str, rel: str) -> None:
        self.path = path
        self.rel = rel
        data = Path(path).read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        try:
            text = data.decode("utf-8")
            self.encoding_ok = True
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            self.encoding_ok = False
        self.raw_text = text.removeprefix("\ufeff")
        self._text: str | None = None
        self._top: _TopLevel | None = None
        self._body: tuple[_Include | _Assign, ...] | None = None

    @property
    def text(self) -> str:
        """Source text with comments replaced by spaces."""
        if self._text is None:
            self._text = _strip_comments(self.raw_text)
        return self._text

    @property
    def has_score(self) -> bool:
        r"""Whether the file itself has a ``\score``, ``\book`` or ``\bookpart``."""
        return _SCORE_RE.search(self.text) is not None

    def top(self) -> _TopLevel:
        r"""Read the file at LilyPond's top level: header blocks, includes, ``\version``."""
        if self._top is None:
            text = self.text
            items: list[_Include | _HeaderBlock] = []
            outside: list[str] = []
            version = ""
            pos = 0
            outside_from = 0
            depth = 0  # brace depth outside header blocks
            depth_pos = 0  # where counting resumes

            def depth_at(end: int) -> int:
                nonlocal depth, depth_pos
                for brace in _BRACE_RE.finditer(text, depth_pos, end):
                    token = brace.group(0)
                    if token == "{":
                        depth += 1
                    elif token == "}":
                        depth = max(depth - 1, 0)
                depth_pos = end
                return depth

            while True:
                match = _TOP_RE.search(text, pos)
                if match is None:
                    break
                pos = match.end()
                token = match.group(0)
                if token[0] == '"':
                    continue
                if token.startswith("\\header"):
                    outside.append(text[outside_from : match.start()])
                    close = _matching_brace(text, match.end())
                    body = _parse_body(text[match.end() : close])
                    items.append(_HeaderBlock(body, depth_at(match.start())))
                    pos = outside_from = depth_pos = close + 1
                elif token.startswith("\\include"):
                    depth_here = depth_at(match.start())
                    items.append(_include_item(match.group(1), match.group(2), depth_here))
                elif not version:
                    version = match.group(3).strip()
            outside.append(text[outside_from:])
            rest = "\n".join(outside)
            self._top = _TopLevel(
                items=tuple(items),
                version=version,
                has_music=_MUSIC_RE.search(rest) is not None,
                string_vars={
                    m.group(1): _unescape('"' + m.group(2) + '"')
                    for m in _STRING_VAR_RE.finditer(rest)
                },
            )
        return self._top

    def body(self) -> tuple[_Include | _Assign, ...]:
        r"""Read the whole file as the inside of a ``\header`` block."""
        if self._body is None:
            self._body = _parse_body(self.text)
        return self._body


def _markup_text(raw: str) -> str:
    r"""Best-effort plain text of a markup or Scheme value: its strings and bare words.

    Markup commands (``\bold``), their Scheme arguments (``#'(font-name . "x")``,
    ``#"url"``, ``#1.5``) and braces are dropped; the strings of a Scheme
    expression ``#(...)`` (e.g. ``string-append``) are kept.
    """
    out: list[str] = []
    depth = 0  # inside a Scheme expression
    keep = False  # keep the strings of that expression
    pending = ""  # the "#" or "#'" just seen
    for match in _BODY_RE.finditer(raw):
        string, _lit, _other, brace, _equals, word = match.groups()
        if pending:
            kind, pending = pending, ""
            if brace == "(":
                depth, keep = 1, kind == "#"
                continue
            if string is not None:
                continue
        if depth:
            if brace == "(":
                depth += 1
            elif brace == ")":
                depth -= 1
            elif string is not None and keep:
                out.append(_unescape(string))
            continue
        if string is not None:
            out.append(_unescape(string))
        elif word is not None and not word.startswith("\\"):
            if word.startswith("#"):
                pending = word if word in ("#", "#'", "#`") else ""
                continue
            out.append(word)
    return _SPACE_RE.sub(" ", " ".join(out)).strip()


def _value_text(raw: str) -> str:
    """Plain text of a header value; ``""`` for ``##f`` and empty values."""
    value = raw.strip().rstrip(";").strip()
    if not value or value in ("##f", "#f"):
        return ""
    if value[0] == '"' and re.fullmatch(_STRING, value):
        text = _unescape(value)
    elif value.startswith('#"') and re.fullmatch(_STRING, value[1:]):
        text = _unescape(value[1:])
    elif value.startswith("\\markup") or value.startswith("#"):
        text = _markup_text(value)
    else:
        text = value
    return _SPACE_RE.sub(" ", text).strip()
