r"""Syntax upgrades beyond convert-ly: named rules for old syntax it leaves broken.

convert-ly upgrades a source release by release, each step a named rule.  Some
old Mutopia sources come out of it still rejected by LilyPond 2.25 (or make it
crash).  The rules here finish the job in the same spirit:

* each rule has a name and one documented purpose (``docs/rendering.md``);
* it rewrites **syntax only**, never notes, durations or what is performed:
  the rewritten source means what the old one meant to the LilyPond it was
  written for;
* it applies to every file it matches, never to one piece by name;
* the normalize stage runs them after convert-ly on every copied source and
  records, per rule, the files it rewrote (counted in the build report).

Each rule is tested on a written input in ``tests/lilypond/test_upgrades.py``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SyntaxRule", "RULES", "RULES_DIGEST", "upgrade_source"]


@dataclass(frozen=True)
class SyntaxRule:
    """One named syntax upgrade.

    Attributes
    ----------
    name : str
        Stable name, as recorded in ``normalize.json`` and the report.
    description : str
        What it rewrites and why the result means the same.
    rewrite : callable
        ``text -> (new_text, number_of_rewrites)``.
    """

    name: str
    description: str
    rewrite: Callable[[str], tuple[str, int]]


def _regex_rewrite(
    pattern: str, replacement: str | Callable[[re.Match[str]], str], flags: int = 0
) -> Callable[[str], tuple[str, int]]:
    regex = re.compile(pattern, flags)
    return lambda text: regex.subn(replacement, text)


# --- property operations given where music is expected ---------------------------------

_STRING = r'"(?:[^"\\]|\\.)*"'
_CONTEXT_PREFIX = re.compile(
    r"\\(?:new|context)\s+[A-Za-z]+(?:\s*=\s*(?:" + _STRING + r"|[A-Za-z][\w-]*))?\s*"
    r"(?=\\(?:once\s*\\)?(?:override|set|unset|revert)(?![A-Za-z]))"
)
_OPERATION_HEAD = re.compile(
    r"(?:\\once\s*)?\\(override|set|unset|revert)\s+"
    r"[A-Za-z][\w-]*(?:\s*\.\s*[A-Za-z][\w-]*)*(?:\s*#'[A-Za-z][\w-]*)*"
)
_PLAIN_VALUE = re.compile(r"-?[\w.]+|" + _STRING)


def _datum_end(text: str, pos: int) -> int | None:
    """End of the Scheme datum starting at ``pos`` (atom, string or list); None if unreadable."""
    while pos < len(text) and text[pos] in "'`,@":
        pos += 1
    if pos >= len(text):
        return None
    if text[pos] == '"':
        match = re.compile(_STRING).match(text, pos)
        return match.end() if match else None
    if text[pos] != "(":
        match = re.compile(r"[^\s()\"]+").match(text, pos)
        return match.end() if match else None
    depth = 0
    index = pos
    while index < len(text):
        char = text[index]
        if char == '"':
            match = re.compile(_STRING).match(text, index)
            if not match:
                return None
            index = match.end()
            continue
        if char == ";":  # a Scheme comment runs to the end of the line
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
            continue
        if text.startswith("#\\", index):  # a character literal such as #\( or #\)
            index += 3
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None


def _scheme_end(text: str, start: int) -> int | None:
    """End of the Scheme expression introduced by ``#`` at ``start``; None if unreadable."""
    if text.startswith("##", start):  # ##t, ##f
        return start + 3 if text[start + 2 : start + 3] in ("t", "f") else None
    return _datum_end(text, start + 1)


def _operation_end(text: str, start: int) -> int | None:
    r"""End of the property operation (``\override``, ``\set`` ...) at ``start``; None if unsure."""
    head = _OPERATION_HEAD.match(text, start)
    if head is None:
        return None
    if head.group(1) in ("unset", "revert"):
        return head.end()
    equals = re.compile(r"\s*=\s*").match(text, head.end())
    if equals is None:
        return None
    pos = equals.end()
    if text.startswith("#", pos):
        return _scheme_end(text, pos)
    if re.compile(r"\\markup(?![A-Za-z])").match(text, pos):
        return _markup_end(text, pos + len("\\markup"))
    value = _PLAIN_VALUE.match(text, pos)
    return value.end() if value else None


def _markup_end(text: str, pos: int) -> int | None:
    r"""End of the markup after ``\markup`` at ``pos``: commands, then a braced group or a word."""
    space = re.compile(r"\s*")
    command = re.compile(r"\\[A-Za-z][\w-]*")
    while True:
        pos = space.match(text, pos).end()  # type: ignore[union-attr]
        if text.startswith("{", pos):
            return _brace_end(text, pos)
        if text.startswith('"', pos):
            string = re.compile(_STRING).match(text, pos)
            return string.end() if string else None
        if text.startswith("#", pos):  # a Scheme argument of a command
            end = _scheme_end(text, pos)
            if end is None:
                return None
            pos = end
            continue
        match = command.match(text, pos)
        if match is None:
            word = re.compile(r"[^\s{}\\\"#]+").match(text, pos)
            return word.end() if word else None
        pos = match.end()


def _brace_end(text: str, pos: int) -> int | None:
    """End of the ``{ ... }`` group opening at ``pos`` (strings respected); None if unclosed."""
    depth = 0
    token = re.compile(_STRING + r"|[{}]")
    for match in token.finditer(text, pos):
        if match.group(0) == "{":
            depth += 1
        elif match.group(0) == "}":
            depth -= 1
            if depth == 0:
                return match.end()
    return None


def _brace_context_operations(text: str) -> tuple[str, int]:
    out: list[str] = []
    last = count = 0
    for prefix in _CONTEXT_PREFIX.finditer(text):
        if prefix.start() < last:
            continue
        end = _operation_end(text, prefix.end())
        if end is None:
            continue
        out += [text[last : prefix.end()], "{ ", text[prefix.end() : end], " }"]
        last = end
        count += 1
    out.append(text[last:])
    return "".join(out), count


# --- the removed MarkEvent music type ---------------------------------------------------

_MAKE_MARK = re.compile(r"\(\s*make-music\s+'MarkEvent(?![\w-])")


def _property_pairs(text: str, start: int, stop: int) -> list[tuple[str, str]] | None:
    """Read ``'key value ...`` between ``start`` and ``stop``; None if not all readable."""
    pairs: list[tuple[str, str]] = []
    space = re.compile(r"\s*")
    pos = space.match(text, start).end()  # type: ignore[union-attr]
    while pos < stop:
        key_end = _datum_end(text, pos)
        if key_end is None:
            return None
        value_start = space.match(text, key_end).end()  # type: ignore[union-attr]
        value_end = _datum_end(text, value_start)
        if value_end is None or value_end > stop:
            return None
        pairs.append((text[pos:key_end], text[value_start:value_end]))
        pos = space.match(text, value_end).end()  # type: ignore[union-attr]
    return pairs


def _split_mark_event(text: str) -> tuple[str, int]:
    """Rewrite ``(make-music 'MarkEvent 'label L ...)`` to today's two mark events."""
    out: list[str] = []
    last = count = 0
    for match in _MAKE_MARK.finditer(text):
        if match.start() < last:
            continue
        end = _datum_end(text, match.start())
        if end is None:
            continue
        pairs = _property_pairs(text, match.end(), end - 1)
        if pairs is None:
            continue
        label = next((value for key, value in pairs if key == "'label"), None)
        others = " ".join(f"{key} {value}" for key, value in pairs if key != "'label")
        others = f" {others}" if others else ""
        if label is None:
            replacement = f"(make-music 'RehearsalMarkEvent{others})"
        else:
            replacement = (
                f"(let ((msmd-mark-label {label})) (make-music (if (markup? msmd-mark-label) "
                f"'AdHocMarkEvent 'RehearsalMarkEvent){others} "
                f"(if (markup? msmd-mark-label) 'text 'label) msmd-mark-label))"
            )
        out += [text[last : match.start()], replacement]
        last = end
        count += 1
    out.append(text[last:])
    return "".join(out), count


# --- articulation types given as strings --------------------------------------------------

_ARTICULATION_TYPE = re.compile(r"(\(\s*make-articulation\s+|'articulation-type\s+)(?=[^\s'\"])")
_AS_SYMBOL = "(let ((msmd-type {})) (if (string? msmd-type) (string->symbol msmd-type) msmd-type))"


def _symbol_articulation_types(text: str) -> tuple[str, int]:
    """Make a computed articulation type a symbol where it may arrive as a string."""
    out: list[str] = []
    last = count = 0
    for match in _ARTICULATION_TYPE.finditer(text):
        if match.start() < last:
            continue
        end = _datum_end(text, match.end())
        value = text[match.end() : end] if end is not None else ""
        if not value or value.startswith("(let ((msmd-type "):
            continue
        out += [text[last : match.end()], _AS_SYMBOL.format(value)]
        last = end  # type: ignore[assignment]
        count += 1
    out.append(text[last:])
    return "".join(out), count


# --- ly:make-moment with a zero grace part ------------------------------------------------

_INTEGER = r"-?\d+"
_MAKE_MOMENT_ZERO_GRACE = re.compile(
    r"\(ly:make-moment\s+(" + _INTEGER + r")\s+(" + _INTEGER + r")\s+0\s+" + _INTEGER + r"\s*\)"
)


def _moment_without_grace(match: re.Match[str]) -> str:
    numerator, denominator = match.group(1), match.group(2)
    if int(denominator) == 0:
        return match.group(0)
    return f"(ly:make-moment {numerator}/{denominator})"


# --- markup commands used before they are defined ----------------------------------------

_MARKUP_DEFINITION = re.compile(
    r"\(define-markup-command\s+\(([A-Za-z][\w-]*)\s+\S+\s+\S+((?:\s+[^\s()]+)*)\s*\)\s*"
    r"\(([^()]*)\)"
)
_MARKUP_CALL = re.compile(r"\(markup\s+#:([A-Za-z][\w-]*)(?=[\s)])")


def _early_markup_calls(text: str) -> tuple[str, int]:
    """Call markup commands by function where the ``markup`` macro meets them too early."""
    arity: dict[str, tuple[int, int]] = {}  # name -> (arity, position of the definition)
    for definition in _MARKUP_DEFINITION.finditer(text):
        names = definition.group(2).split()
        predicates = definition.group(3).split()
        if len(names) == len(predicates):
            arity.setdefault(definition.group(1), (len(names), definition.start()))
    out: list[str] = []
    last = count = 0
    for call in _MARKUP_CALL.finditer(text):
        name = call.group(1)
        if name not in arity or call.start() > arity[name][1] or call.start() < last:
            continue
        end = _datum_end(text, call.start())
        if end is None:
            continue
        arguments: list[str] = []
        pos = call.end()
        space = re.compile(r"\s*")
        pos = space.match(text, pos).end()  # type: ignore[union-attr]
        while pos < end - 1:
            argument_end = _datum_end(text, pos)
            if argument_end is None or text.startswith("#:", pos):
                break
            arguments.append(text[pos:argument_end])
            pos = space.match(text, argument_end).end()  # type: ignore[union-attr]
        if pos < end - 1 or len(arguments) != arity[name][0]:
            continue
        out += [text[last : call.start()], f"(make-{name}-markup {' '.join(arguments)})"]
        last = end
        count += 1
    out.append(text[last:])
    return "".join(out), count


# --- a Scheme number run into the music that follows -------------------------------------

_NUMBER_RUN_ON = re.compile(_STRING + r"|%\{.*?%\}|%[^\n]*|(#-?\d+(?:\.\d+)?)(?=[<{\\])", re.DOTALL)


def _separate_scheme_numbers(text: str) -> tuple[str, int]:
    r"""Put a space between ``#1`` and the ``<``, ``{`` or ``\`` it runs into (not in strings)."""
    count = 0

    def separate(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(1) is None:
            return match.group(0)  # a string or a comment: left as it is
        count += 1
        return match.group(1) + " "

    return _NUMBER_RUN_ON.sub(separate, text), count


RULES: tuple[SyntaxRule, ...] = (
    SyntaxRule(
        "crescendo-spanner-text",
        r"``\\set crescendoSpanner = #'dashed-line`` (and ``decrescendoSpanner``): "
        r"LilyPond 2.11.48 renamed the value to ``#'text`` (the dashed line is that "
        r"spanner's own style) and convert-ly rewrites it, but only in files that "
        r"declare an older ``\\version``; sources that declare 2.11.48 or later and "
        r"still use the old value get a hairpin instead of the text (LilyPond: unknown "
        r"crescendo style), which can stretch a measure past the page edge.  convert-ly's "
        r"own rewrite is applied whatever the declared version, with any spacing.",
        _regex_rewrite(r"(crescendoSpanner\s*=\s*#\s*')dashed-line\b", r"\1text"),
    ),
    SyntaxRule(
        "context-property-argument",
        r'``\new Voice = "x" \override ...`` (also ``\set``, ``\revert``, ``\unset`` and '
        r"``\context``): LilyPond up to 2.16 took the one property operation as the "
        r"context's music; 2.18 and later reject it.  The operation is wrapped in braces, "
        r'``\new Voice = "x" { \override ... }``, which is what the old parser built.',
        _brace_context_operations,
    ),
    SyntaxRule(
        "postfix-text-dynamics",
        r"``c4-\deprecatedcresc``: convert-ly (2.13.20) renames ``\cresc``, ``\dim``, "
        r"``\endcresc`` and ``\enddim`` to ``\deprecated...`` music, which cannot follow "
        r"a note with a direction (``-``, ``^``, ``_``).  Written after a direction they "
        r"were post-events; today's post-events ``\cresc``, ``\dim``, ``\endcresc`` and "
        r"``\enddim`` print the same text dynamics.",
        _regex_rewrite(r"([-^_]\s*)\\deprecated(cresc|dim|endcresc|enddim)\b", r"\1\\\2"),
    ),
    SyntaxRule(
        "mark-event-type",
        r"``(make-music 'MarkEvent 'label L ...)``: LilyPond 2.23.6 split the mark event "
        r"into ``RehearsalMarkEvent`` (a numbered mark, ``'label``) and ``AdHocMarkEvent`` "
        r"(a mark with its own text, ``'text``), which is what ``\mark`` builds today.  The "
        r"expression becomes the one ``\mark`` would build from the same label: an "
        r"ad-hoc mark for a markup, a rehearsal mark for a number or no label; the other "
        r"properties are kept.",
        _split_mark_event,
    ),
    SyntaxRule(
        "articulation-type-symbol",
        r"``(make-music 'ArticulationEvent 'articulation-type type)`` and "
        r"``(make-articulation type)`` with a type computed at run time (a function "
        r"argument, a variable): LilyPond up to 2.22 took a string, 2.23.6 and later "
        r"need a symbol and drop the articulation, or crash.  convert-ly "
        r"rewrites literal strings only; here the computed value is converted with "
        r"``string->symbol`` when it is a string, and kept when it is already a symbol.",
        _symbol_articulation_types,
    ),
    SyntaxRule(
        "make-moment-zero-grace",
        r"``(ly:make-moment 56 4 0 0)``: the old four-number form (main numerator and "
        r"denominator, grace numerator and denominator).  With a zero grace numerator "
        r"LilyPond 2.25 divides 0 by the grace denominator and stops with a numerical "
        r"overflow when that is 0.  The moment is written ``(ly:make-moment 56/4)``: the "
        r"same main part and no grace part.",
        _regex_rewrite(_MAKE_MOMENT_ZERO_GRACE.pattern, _moment_without_grace),
    ),
    SyntaxRule(
        "markup-command-before-definition",
        r"``(markup #:chapter-title x)`` in a function written before "
        r"``(define-markup-command (chapter-title layout props title) ...)`` in the same "
        r"file: the Guile 1.8 of old LilyPond expanded the ``markup`` macro when the "
        r"function ran, Guile 2 and later expand it when the function is read, before "
        r"the command exists (LilyPond: Not a markup command).  Such a call with exactly the "
        r"command's arguments becomes what the macro expands it to, "
        r"``(make-chapter-title-markup x)``, found when the function runs.",
        _early_markup_calls,
    ),
    SyntaxRule(
        "scheme-number-delimiter",
        r"``\ottava #1<c e>4``: convert-ly turns ``#(set-octavation 1)<c e>4`` into "
        r"``\ottava #1<c e>4`` without a space, and the Guile of LilyPond 2.25 reads "
        r"``1<c`` as one symbol.  A space after a Scheme number that runs into ``<``, "
        r"``{`` or a backslash command restores the token boundary the source had; "
        r"strings and comments are left alone.",
        _separate_scheme_numbers,
    ),
)

#: Digest of this module (the rules and their code), part of the normalize stage's cache key.
RULES_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def upgrade_source(text: str) -> tuple[str, dict[str, int]]:
    """Apply every rule of :data:`RULES` in order.

    Returns
    -------
    text : str
        The upgraded source.
    counts : dict
        Rule name -> number of rewrites, for the rules that changed something.
    """
    counts: dict[str, int] = {}
    for rule in RULES:
        text, count = rule.rewrite(text)
        if count:
            counts[rule.name] = count
    return text, counts
