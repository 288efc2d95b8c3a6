r"""Corpus scan: find the pieces of a Mutopia checkout and write the corpus index.

First stage of the pipeline. :func:`scan_corpus` reads a Mutopia checkout (a
directory that contains ``ftp/``; nothing is written there) and describes every
piece by a :class:`PieceEntry`: id, main file, include files with their
SHA-256, header fields, ``\version``, whether the sources are valid UTF-8 and
whether the piece is solo keyboard (the MSMD selection, extended).
:func:`write_index` stores the entries as ``<work>/index.csv``; later stages
read it back with :func:`read_index` and never re-parse Mutopia paths.

Reading LilyPond
----------------
Files are decoded as UTF-8 (with replacement characters and a problem when
that fails), comments are dropped, and three things are read: ``\version``,
``\include`` and ``\header { }`` blocks. Includes are followed recursively, as
LilyPond does: an include inside a ``\header`` adds its assignments to that
header, one elsewhere is read as a LilyPond file. A name is resolved against
the including file's directory, then the main file's directory (LilyPond's
include path; this is also how ``\include "../x.ly"`` resolves), then
LilyPond's own ``ly/`` files (:data:`LILYPOND_SYSTEM_INCLUDES`, not recorded).
``\include \name`` is resolved through a ``name = "file"`` definition.

Problems
--------
Each entry lists what the scan noticed, as ``<kind>:<detail>`` strings:
``missing-include``, ``case-mismatch`` (the include names a file that exists
only with other letter case; it is followed), ``dynamic-include`` (a Scheme
expression, not resolved), ``include-cycle``, ``encoding`` (a file is not
UTF-8), ``no-version``, ``collection``, ``header-only``, ``header-sidecar``,
``id-collision`` and ``layout``. ``missing-include`` and ``encoding`` are the
``error_class`` strings of :class:`~msmd_builder.errors.MissingIncludeError`
and :class:`~msmd_builder.errors.SourceEncodingError`.

Which files are pieces, the piece id and the keyboard rule are described in
:func:`scan_corpus`, :func:`classify_instrument` and ``docs/corpus.md``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path, PurePosixPath

from msmd_builder.cache import atomic_path
from msmd_builder.errors import ConfigError

__all__ = [
    "PieceEntry",
    "MUTOPIA_KEYS",
    "LILYPOND_SYSTEM_INCLUDES",
    "INDEX_COLUMNS",
    "INDEX_FORMAT_NAME",
    "INDEX_FORMAT_VERSION",
    "scan_corpus",
    "write_index",
    "read_index",
    "select_keyboard",
    "find_piece",
    "summarize",
    "classify_instrument",
    "msmd_instrument_rule",
]

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

INDEX_FORMAT_NAME = "msmd-corpus-index"
"""Name of the index format (documented in ``docs/corpus.md``)."""

INDEX_FORMAT_VERSION = 1
"""Version of the index format; bump it when the columns change."""

_MAX_INCLUDE_DEPTH = 32


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PieceEntry:
    """One piece of the corpus: a main LilyPond file, its includes and its header.

    All paths are POSIX paths relative to the Mutopia root (the directory that
    contains ``ftp/``). Header fields are plain text, ``""`` when absent.
    """

    piece_id: str
    """MSMD id ``<ComposerDir>__<OpusDir>__<main file stem>`` (unique in a scan)."""

    main_file: str
    """Main ``.ly`` file, e.g. ``ftp/BachJS/BWV772/bach-invention-01/bach-invention-01.ly``."""

    composer_dir: str
    """First path component below ``ftp/`` (Mutopia's composer directory)."""

    opus_dir: str
    """Second path component below ``ftp/`` (Mutopia's opus directory)."""

    includes: tuple[str, ...]
    """Files the main file includes, recursively, in order of first inclusion."""

    include_sha256: tuple[str, ...]
    """Hex SHA-256 of each file of :attr:`includes`, in the same order."""

    source_sha256: str
    """Hex SHA-256 over main file and includes; see :func:`scan_corpus`."""

    title: str
    """``title`` header field as LilyPond prints it, else ``mutopiatitle``."""

    composer: str
    """``composer`` header field as LilyPond prints it, else ``mutopiacomposer``."""

    opus: str
    """``opus`` header field as LilyPond prints it, else ``mutopiaopus``."""

    instrument: str
    """``mutopiainstrument`` of the Mutopia header, else ``instrument``."""

    style: str
    """``style`` of the Mutopia header, else ``mutopiastyle``."""

    license: str
    """``license`` header field, else ``copyright``, ``mutopialicense``, ``mutopiacopyright``."""

    lilypond_version: str
    r"""``\version`` string of the main file, else of the first include that has one."""

    encoding_ok: bool
    """True when the main file and every include are valid UTF-8."""

    is_keyboard: bool
    """True for solo keyboard pieces (the MSMD selection, extended; see ``classify_instrument``)."""

    selection_reason: str
    """Why the piece is or is not selected, e.g. ``msmd-rule`` or ``rejected:four-hands``."""

    problems: tuple[str, ...]
    """Problems found while scanning, each ``<kind>:<detail>`` (e.g. ``missing-include:x.ly``)."""


INDEX_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(PieceEntry))
"""Columns of ``index.csv``, in order (the field names of :class:`PieceEntry`)."""

_LIST_COLUMNS = frozenset({"includes", "include_sha256", "problems"})
_BOOL_COLUMNS = frozenset({"encoding_ok", "is_keyboard"})


# --------------------------------------------------------------------------- lexing

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


# --------------------------------------------------------------------------- header values


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


# --------------------------------------------------------------------------- instrument rules

_MSMD_WORDS = frozenset({"piano", "harpsichord", "clavichord"})
_ALIASES: dict[str, str] = {
    "pianoforte": "pianoforte",
    "fortepiano": "pianoforte",
    "clavier": "clavier",
    "klavier": "clavier",
    "clavecin": "harpsichord",
    "cembalo": "harpsichord",
    "keyboard": "keyboard",
    "spinet": "spinet",
    "virginal": "virginal",
    "virginals": "virginal",
}
_PLURAL_WORDS = frozenset({"pianos", "harpsichords", "clavichords", "claviers", "pianofortes"})
_FILLER_WORDS = frozenset({"or", "ou", "oder", "solo", "for"})
_ORGAN_WORDS = frozenset({"organ", "orgue", "orgel", "organo", "harmonium"})
_MULTI_PLAYER_RE = re.compile(
    r"\b(duet|duets|duo|duett|4\s*-?\s*hands?|four\s*-?\s*hands?|6\s*-?\s*hands?|"
    r"six\s*-?\s*hands?|8\s*-?\s*hands?|eight\s*-?\s*hands?|[2-4]\s*mains|"
    r"(?:quatre|six|huit)\s*mains|vierh\w*ndig|primo|secondo|"
    r"pianos|harpsichords|clavichords|claviers|pianofortes)\b"
)


_HANDS_IN_NAME_RE = re.compile(
    r"(?:four|4|six|6|eight|8)\s*hands?|[468]\s*mains|(?:quatre|six|huit)\s*mains|vierh\w*ndig"
)


def _ascii_lower(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _msmd_rule_value(main_text: str) -> str | None:
    """Return the instrument words MSMD's rule accepted, or None when it rejects."""
    if "mutopiainstrument" not in main_text:
        return None
    # MSMD read lines with codecs, which splits lines as str.splitlines does
    lines = [
        stripped
        for line in main_text.splitlines()
        if "mutopiainstrument" in line
        and (stripped := line.strip()).startswith("mutopiainstrument")
    ]
    if len(lines) != 1:
        return None
    parts = lines[0].split(None, 2)
    if len(parts) < 3:
        return None
    words = re.sub("[^a-zA-Z]", " ", parts[2][1:-1].strip()).lower().split()
    if all(word in _MSMD_WORDS for word in words):
        return " ".join(words)
    return None


def msmd_instrument_rule(main_text: str) -> bool:
    """Apply MSMD's selection rule to the text of a main file, as the original code did.

    The original toolchain looked for exactly one line starting with
    ``mutopiainstrument``, split it on whitespace into key, ``=`` and value,
    dropped the value's first and last characters (the quotes), replaced every
    non-letter by a space and accepted the piece when every remaining word was
    ``piano``, ``harpsichord`` or ``clavichord`` (case-insensitive). This
    function reproduces that rule with its quirks: ``mutopiainstrument="Piano"``
    (no spaces) and files with two ``mutopiainstrument`` lines are rejected, an
    empty value is accepted.

    Parameters
    ----------
    main_text : str
        Decoded text of the main ``.ly`` file, comments included.

    Returns
    -------
    bool
        True when MSMD's rule selects the piece.
    """
    return _msmd_rule_value(main_text) is not None


def classify_instrument(instrument: str) -> tuple[bool, str]:
    """Decide whether an instrument description names solo keyboard.

    The rule extends MSMD's (every word is piano, harpsichord or clavichord):

    * words are compared case- and accent-insensitively after replacing every
      non-letter by a space;
    * aliases count as keyboard: Pianoforte/Fortepiano, Clavier/Klavier,
      Cembalo/Clavecin, Keyboard, Spinet, Virginal(s) (reason ``alias:<name>``);
    * "or" (ou, oder), "solo" and "for" are ignored (reason ``alternatives``);
    * several players are not solo keyboard: duet, four/six/eight hands,
      plurals ("2 Pianos"), primo/secondo (``rejected:four-hands``);
    * a keyboard word beside another instrument (voice, violin, ...) is
      ``rejected:ensemble``;
    * organ and harmonium are not in MSMD (pedal staves, sustained sound):
      organ without a piano-family word is ``rejected:organ``, but organ named
      as an alternative to piano or harpsichord ("Piano, Orgue", "Harpsichord,
      Organ, Piano": manual-only pieces on two staves) is kept
      (``organ-alternative``).

    Parameters
    ----------
    instrument : str
        The ``mutopiainstrument`` (or ``instrument``) header text.

    Returns
    -------
    is_keyboard : bool
        True for solo keyboard.
    reason : str
        ``msmd-words`` when MSMD's word rule alone holds, else the extensions
        used (``alias:<name>``, ``alternatives``, ``organ-alternative``) joined
        by ``+``; for a rejection ``rejected:<why>``, ``not-keyboard`` or
        ``no-instrument``.
    """
    text = _ascii_lower(instrument).strip()
    words = re.sub("[^a-z]", " ", text).split()
    if not words:
        return False, "no-instrument"
    if not any(w in _MSMD_WORDS or w in _ALIASES or w in _PLURAL_WORDS for w in words):
        return False, "rejected:organ" if any(w in _ORGAN_WORDS for w in words) else "not-keyboard"
    if _MULTI_PLAYER_RE.search(text):
        return False, "rejected:four-hands"
    reasons: list[str] = []
    for word in words:
        if word in _MSMD_WORDS:
            continue
        if word in _ALIASES:
            reason = f"alias:{_ALIASES[word]}"
        elif word in _FILLER_WORDS:
            reason = "alternatives"
        elif word in _ORGAN_WORDS:
            reason = "organ-alternative"
        else:
            return False, "rejected:ensemble"
        if reason not in reasons:
            reasons.append(reason)
    return True, "+".join(reasons) or "msmd-words"


# --------------------------------------------------------------------------- scanning


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


@dataclass
class _Candidate:
    """A main file found to be a piece, before its entry is built."""

    main: _SourceFile
    expansion: _Expansion
    blocks: list[_Block]
    problems: list[str]
    structural: str = ""
    """``collection`` or ``header-only`` when the piece cannot be selected."""
    sidecar: str = ""
    """Header-only file whose header this piece adopted."""


def scan_corpus(mutopia_root: Path, *, progress: bool = False) -> list[PieceEntry]:
    r"""Scan a Mutopia checkout and describe every piece.

    Parameters
    ----------
    mutopia_root : Path
        Directory that contains Mutopia's ``ftp/`` tree.
    progress : bool, optional
        Show a rich progress bar while scanning.

    Returns
    -------
    list of PieceEntry
        One entry per piece, sorted by ``piece_id``.

    Raises
    ------
    ConfigError
        If ``mutopia_root`` has no ``ftp/`` directory.

    Notes
    -----
    Candidates are the ``.ly`` files below ``ftp/`` (``.ily``, ``.lyi`` and other
    suffixes are only ever includes). A candidate has a *Mutopia header* when a
    ``\header`` block read from it or its includes has a key of
    :data:`MUTOPIA_KEYS`. Pieces are:

    * candidates with a Mutopia header that no other candidate includes
      (directly or through other files);
    * included candidates that stand alone: a Mutopia header and their own
      ``\score``/``\book``/``\bookpart``. The movements of a suite that a
      whole-suite file includes are pieces this way, as in MSMD; a piece that
      includes other pieces is kept with the problem ``collection:<n>`` and is
      not selected, so no music is counted twice. Include files without a
      ``\score`` of their own (shared headers, notes) are never pieces;
    * a *header-only* file (a Mutopia ``\header`` and no music, kept for the
      Mutopia web site) is replaced by the main file of its directory: the only
      non-included ``.ly`` file there with music or includes or, among several,
      the one named like the folder (``<piece>-lys/<piece>.ly``). That file
      becomes the piece with the header-only file's header first (problem
      ``header-sidecar:<file>``). Without such a file the header-only file stays
      a piece with the problem ``header-only`` and is not selected.

    The piece id is MSMD's ``<ComposerDir>__<OpusDir>__<main file stem>``,
    ``ComposerDir`` and ``OpusDir`` being the first two path components below
    ``ftp/``. Mains that share an id all get ``id-collision:<other mains>``; a
    selected piece keeps the plain id (MSMD only exported keyboard pieces, so
    its lists mean that one), then the first by path, and the others get
    ``__2``, ``__3``, ... appended, so ids are unique.

    ``source_sha256`` is the SHA-256 of the lines ``"<sha256>  <path>\n"`` (as
    ``sha256sum`` writes them) of the main file and every include, sorted by
    path. Files are only read; non-UTF-8 files are decoded with replacement
    characters and flagged (``encoding_ok=False``, problem ``encoding:<file>``).
    """
    root = Path(mutopia_root)
    if not (root / "ftp").is_dir():
        raise ConfigError(f"not a Mutopia checkout (no ftp/ directory): {root}")
    tree = _Tree(root)
    paths = sorted(p for p in tree.files if p.endswith(".ly"))

    expansions: dict[str, _Expansion] = {}
    iterator: Iterable[str] = paths
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        iterator = bar.track(paths, description="scanning Mutopia")
    try:
        for path in iterator:
            expansions[path] = _expand(tree, tree.source(path))
    finally:
        if bar is not None:
            bar.stop()

    included: set[str] = set()
    for expansion in expansions.values():
        included.update(src.path for src in expansion.includes.values())

    pieces: dict[str, _Candidate] = {}
    for path in paths:
        expansion = expansions[path]
        src = tree.source(path)
        if not expansion.has_mutopia_header:
            continue
        if path in included and not src.has_score:
            continue
        pieces[path] = _Candidate(src, expansion, list(expansion.blocks), list(expansion.problems))

    for cand in pieces.values():
        inner = [inc for inc in cand.expansion.includes.values() if inc.path in pieces]
        if inner:
            cand.structural = "collection"
            _add_problem(cand.problems, f"collection:{len(inner)}")

    _adopt_sidecar_headers(tree, paths, included, expansions, pieces)
    entries = [_make_entry(cand) for cand in pieces.values()]
    return _assign_ids(entries)


def _adopt_sidecar_headers(
    tree: _Tree,
    paths: Sequence[str],
    included: set[str],
    expansions: dict[str, _Expansion],
    pieces: dict[str, _Candidate],
) -> None:
    """Give each header-only file's header to the main file of its directory.

    The main file is the only other non-included ``.ly`` file of the directory
    with music (or includes); if there are several, the one named like the
    piece folder (``<piece>-lys/<piece>.ly``). The header-only file is then no
    longer a piece; without a main file it stays one, marked ``header-only``.
    """
    by_dir: dict[str, list[str]] = {}
    for path in paths:
        by_dir.setdefault(os.path.dirname(path), []).append(path)

    def header_only(path: str) -> bool:
        return not tree.source(path).top().has_music and not expansions[path].includes

    for path in [p for p in pieces if header_only(p)]:
        cand = pieces[path]
        directory = os.path.dirname(path)
        siblings = [
            p
            for p in by_dir[directory]
            if p != path
            and p not in included
            and not header_only(p)
            and (tree.source(p).top().has_music or expansions[p].includes)
        ]
        if len(siblings) > 1:
            folder = os.path.basename(directory).removesuffix("-lys").lower()
            siblings = [p for p in siblings if Path(p).stem.lower() == folder]
        if len(siblings) != 1:
            cand.structural = "header-only"
            _add_problem(cand.problems, "header-only")
            continue
        target = siblings[0]
        expansion = expansions[target]
        del pieces[path]
        pieces[target] = _Candidate(
            main=tree.source(target),
            expansion=expansion,
            blocks=cand.blocks + expansion.blocks,
            problems=[*expansion.problems, f"header-sidecar:{cand.main.rel}"],
            sidecar=cand.main.rel,
        )


def _selection(cand: _Candidate, instrument: str, key: str, origin: str) -> tuple[bool, str]:
    """Combine MSMD's rule on the main file with the extended rule on the header."""
    if cand.structural:
        return False, f"rejected:{cand.structural}"
    msmd_words = _msmd_rule_value(cand.main.raw_text)
    if msmd_words:  # an empty value is an MSMD quirk, not a keyboard instrument
        return True, "msmd-rule"
    ok, reason = classify_instrument(instrument)
    if not ok:
        return False, reason
    stem = re.sub(r"[-_.]", " ", PurePosixPath(cand.main.rel).stem.lower())
    if _HANDS_IN_NAME_RE.search(stem):
        return False, "rejected:four-hands"
    if key == "instrument":
        how = ["instrument-field"]
    elif origin == cand.sidecar:
        how = ["header-sidecar"]
    elif origin != cand.main.rel:
        how = ["header-in-include"]
    else:
        how = ["header-format"]
    if reason != "msmd-words":
        how.append(reason)
    return True, "+".join(how)


def _make_entry(cand: _Candidate) -> PieceEntry:
    main = cand.main
    rel = PurePosixPath(main.rel)
    below_ftp = rel.parts[1:]
    problems = list(cand.problems)
    if len(below_ftp) < 3:
        _add_problem(problems, f"layout:{main.rel}")
    composer_dir = below_ftp[0] if len(below_ftp) > 1 else ""
    opus_dir = below_ftp[1] if len(below_ftp) > 2 else ""
    includes = list(cand.expansion.includes.values())
    blocks = cand.blocks
    variables = cand.expansion.variables

    def field(*keys: str, as_printed: bool = False) -> str:
        return _header_field(blocks, keys, variables, as_printed=as_printed)[0]

    instrument, key, origin = _header_field(blocks, ("mutopiainstrument", "instrument"), variables)
    is_keyboard, reason = _selection(cand, instrument, key, origin)

    version = main.top().version
    for src in includes:
        if version:
            break
        version = src.top().version
    if not version:
        _add_problem(problems, "no-version")
    for src in (main, *includes):
        if not src.encoding_ok:
            _add_problem(problems, f"encoding:{src.rel}")

    return PieceEntry(
        piece_id=f"{composer_dir}__{opus_dir}__{rel.stem}",
        main_file=main.rel,
        composer_dir=composer_dir,
        opus_dir=opus_dir,
        includes=tuple(src.rel for src in includes),
        include_sha256=tuple(src.sha256 for src in includes),
        source_sha256=_source_digest([(src.rel, src.sha256) for src in (main, *includes)]),
        title=field("title", "mutopiatitle", as_printed=True),
        composer=field("composer", "mutopiacomposer", as_printed=True),
        opus=field("opus", "mutopiaopus", as_printed=True),
        instrument=instrument,
        style=field("style", "mutopiastyle"),
        license=field("license", "copyright", "mutopialicense", "mutopiacopyright"),
        lilypond_version=version,
        encoding_ok=all(src.encoding_ok for src in (main, *includes)),
        is_keyboard=is_keyboard,
        selection_reason=reason,
        problems=tuple(problems),
    )


def _assign_ids(entries: list[PieceEntry]) -> list[PieceEntry]:
    """Make ids unique (see :func:`scan_corpus`) and sort the entries by id."""
    by_id: dict[str, list[PieceEntry]] = {}
    for entry in sorted(entries, key=lambda e: (not e.is_keyboard, e.main_file)):
        by_id.setdefault(entry.piece_id, []).append(entry)
    result: list[PieceEntry] = []
    for piece_id, group in by_id.items():
        if len(group) == 1:
            result.append(group[0])
            continue
        mains = [e.main_file for e in group]
        for n, entry in enumerate(group, start=1):
            others = ",".join(m for m in mains if m != entry.main_file)
            result.append(
                replace(
                    entry,
                    piece_id=piece_id if n == 1 else f"{piece_id}__{n}",
                    problems=(*entry.problems, f"id-collision:{others}"),
                )
            )
    result.sort(key=lambda e: e.piece_id)
    return result


# --------------------------------------------------------------------------- index file


def _cell(entry: PieceEntry, column: str) -> str:
    value = getattr(entry, column)
    if column in _LIST_COLUMNS:
        return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))
    if column in _BOOL_COLUMNS:
        return "true" if value else "false"
    return str(value)


def write_index(entries: Iterable[PieceEntry], path: str | os.PathLike[str]) -> None:
    r"""Write entries to a CSV index, atomically.

    Parameters
    ----------
    entries : iterable of PieceEntry
        The entries, written in the given order.
    path : path-like
        Destination, conventionally ``<work>/index.csv``.

    Notes
    -----
    UTF-8, comma-separated, RFC 4180 quoting and ``\r\n`` line ends, one header row
    with :data:`INDEX_COLUMNS`. Booleans are ``true``/``false``; the list
    columns (``includes``, ``include_sha256``, ``problems``) are compact JSON
    arrays of strings (``[]`` when empty).
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)  # RFC 4180: CRLF, so a lone CR in a value is quoted
            writer.writerow(INDEX_COLUMNS)
            for entry in entries:
                writer.writerow([_cell(entry, column) for column in INDEX_COLUMNS])


def read_index(path: str | os.PathLike[str]) -> list[PieceEntry]:
    """Read an index written by :func:`write_index`.

    Parameters
    ----------
    path : path-like
        The CSV file.

    Returns
    -------
    list of PieceEntry
        The entries in file order.

    Raises
    ------
    ConfigError
        If the header row is not :data:`INDEX_COLUMNS` or a cell cannot be read.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header) != INDEX_COLUMNS:
            raise ConfigError(
                f"{path}: not a corpus index (format {INDEX_FORMAT_NAME} "
                f"v{INDEX_FORMAT_VERSION}); header row is {header!r}"
            )
        entries = []
        for line_no, row in enumerate(reader, start=2):
            if len(row) != len(INDEX_COLUMNS):
                raise ConfigError(f"{path}:{line_no}: expected {len(INDEX_COLUMNS)} cells")
            values: dict[str, object] = {}
            for column, cell in zip(INDEX_COLUMNS, row, strict=True):
                if column in _LIST_COLUMNS:
                    try:
                        items = json.loads(cell)
                    except json.JSONDecodeError as exc:
                        raise ConfigError(f"{path}:{line_no}: bad {column} cell") from exc
                    values[column] = tuple(str(x) for x in items)
                elif column in _BOOL_COLUMNS:
                    if cell not in ("true", "false"):
                        raise ConfigError(f"{path}:{line_no}: bad {column} cell {cell!r}")
                    values[column] = cell == "true"
                else:
                    values[column] = cell
            entries.append(PieceEntry(**values))  # type: ignore[arg-type]
    return entries


# --------------------------------------------------------------------------- queries


def select_keyboard(entries: Iterable[PieceEntry]) -> list[PieceEntry]:
    """Return the entries with ``is_keyboard``, in the given order."""
    return [entry for entry in entries if entry.is_keyboard]


def find_piece(entries: Iterable[PieceEntry], piece_id: str) -> PieceEntry | None:
    """Return the entry with ``piece_id``, or None."""
    for entry in entries:
        if entry.piece_id == piece_id:
            return entry
    return None


def summarize(entries: Sequence[PieceEntry], *, scan_seconds: float | None = None) -> str:
    """Return a readable multi-line summary of a scan.

    Parameters
    ----------
    entries : sequence of PieceEntry
        Scanned (or read) entries.
    scan_seconds : float, optional
        Scan duration to report.

    Returns
    -------
    str
        Totals, keyboard count, and counts by selection reason, instrument,
        composer (top 15), LilyPond version (major.minor) and problem kind,
        for the keyboard selection and for all pieces.
    """
    lines: list[str] = []
    keyboard = [e for e in entries if e.is_keyboard]
    lines.append(f"pieces: {len(entries)}")
    lines.append(f"keyboard selected: {len(keyboard)}")
    lines.append(f"not UTF-8: {sum(not e.encoding_ok for e in entries)}")
    lines.append(f"with problems: {sum(bool(e.problems) for e in entries)}")
    if scan_seconds is not None:
        lines.append(f"scan time: {scan_seconds:.1f} s")

    def table(title: str, counter: Counter[str], limit: int | None = None) -> None:
        lines.append("")
        lines.append(f"{title}:")
        items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = items if limit is None else items[:limit]
        for key, count in shown:
            lines.append(f"  {count:6d}  {key or '(none)'}")
        if limit is not None and len(items) > limit:
            rest = sum(count for _, count in items[limit:])
            lines.append(f"  {rest:6d}  ({len(items) - limit} more)")

    table("selection reason (keyboard)", Counter(e.selection_reason for e in keyboard))
    table(
        "selection reason (not selected)",
        Counter(e.selection_reason for e in entries if not e.is_keyboard),
    )
    table("instrument (keyboard)", Counter(e.instrument for e in keyboard), 20)
    table("instrument (all)", Counter(e.instrument for e in entries), 20)
    table("composer (keyboard), top 15", Counter(e.composer_dir for e in keyboard), 15)
    table("composer (all), top 15", Counter(e.composer_dir for e in entries), 15)
    table("LilyPond version (keyboard)", Counter(_minor(e.lilypond_version) for e in keyboard))
    table("LilyPond version (all)", Counter(_minor(e.lilypond_version) for e in entries))
    table(
        "problems (all pieces, by kind)",
        Counter(p.split(":", 1)[0] for e in entries for p in e.problems),
    )
    table(
        "problems (keyboard, by kind)",
        Counter(p.split(":", 1)[0] for e in keyboard for p in e.problems),
    )
    return "\n".join(lines)


def _minor(version: str) -> str:
    """Return the major.minor part of a version (``2.18.2`` -> ``2.18``)."""
    parts = version.split(".")
    return ".".join(parts[:2]) if version else ""
