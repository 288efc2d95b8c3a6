"""Which pieces are solo keyboard: MSMD's instrument rule, extended (``docs/corpus.md``)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["msmd_instrument_rule", "classify_instrument"]


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
