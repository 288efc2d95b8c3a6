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


def _scheme_end(text: str, start: int) -> int | None:
    """End of the Scheme expression introduced by ``#`` at ``start``; None if unreadable."""
    pos = start + 1
    if text.startswith("#", pos):  # ##t, ##f
        return pos + 2 if text[pos + 1 : pos + 2] in ("t", "f") else None
    while pos < len(text) and text[pos] in "'`,":
        pos += 1
    if pos >= len(text):
        return None
    if text[pos] == '"':
        match = re.compile(_STRING).match(text, pos)
        return match.end() if match else None
    if text[pos] != "(":
        match = re.compile(r"[^\s(){}\"]+").match(text, pos)
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
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None


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
    value = _PLAIN_VALUE.match(text, pos)
    return value.end() if value else None


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


RULES: tuple[SyntaxRule, ...] = (
    SyntaxRule(
        "context-property-argument",
        r"``\new Voice = \"x\" \override ...`` (also ``\set``, ``\revert``, ``\unset`` and "
        r"``\context``): LilyPond up to 2.16 took the one property operation as the "
        r"context's music; 2.18 and later reject it.  The operation is wrapped in braces, "
        r"``\new Voice = \"x\" { \override ... }``, which is what the old parser built.",
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
