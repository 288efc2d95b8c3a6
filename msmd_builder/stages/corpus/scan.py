"""The scan: every piece of a Mutopia checkout, its id, header fields and keyboard selection."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from msmd_builder.core.errors import ConfigError
from msmd_builder.core.workdir import WorkDir
from msmd_builder.stages.corpus.includes import (
    _add_problem,
    _expand,
    _Expansion,
    _header_field,
    _source_digest,
    _Tree,
)
from msmd_builder.stages.corpus.index import PieceEntry, corpus_root, index_entries, write_corpus
from msmd_builder.stages.corpus.instrument import (
    _HANDS_IN_NAME_RE,
    _msmd_rule_value,
    classify_instrument,
)
from msmd_builder.stages.corpus.lexer import _Block, _SourceFile

__all__ = ["scan_corpus", "summarize", "scan_into"]


@dataclass
class _Candidate:
    """A main file found to be a piece, before its entry is built."""

    main: _SourceFile
    expansion: _Expansion
    blocks: list[_Block]
    problems: list[str]
    structural: str = ""
    """``collection``, ``header-only`` or ``midi-companion`` when the piece cannot be selected."""
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
      a piece with the problem ``header-only`` and is not selected;
    * a file named like a piece of the same folder with ``-mid`` or ``-midi``
      added (``x-midi.ly`` beside ``x.ly``) that asks for MIDI output only (a
      ``\midi`` block, no ``\layout``) is that piece's MIDI companion, with
      no sheet of its own: problem ``midi-companion:<piece>``, not selected.

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
    _mark_midi_companions(pieces)
    entries = [_make_entry(cand) for cand in pieces.values()]
    return _assign_ids(entries)


_MIDI_COMPANION_RE = re.compile(r"^(?P<stem>.+)[-_](?:mid|midi)$", re.IGNORECASE)
_COMMENT_RE = re.compile(r"%\{.*?%\}|%[^\n]*", re.DOTALL)


def _prints_nothing(text: str) -> bool:
    r"""Tell whether a source asks for MIDI output only: ``\midi`` and no ``\layout``."""
    code = _COMMENT_RE.sub("", text)
    return "\\midi" in code and "\\layout" not in code


def _mark_midi_companions(pieces: dict[str, _Candidate]) -> None:
    r"""Mark ``x-mid.ly`` / ``x-midi.ly`` beside a piece ``x.ly`` that prints nothing.

    Some Mutopia packages ship, beside the piece, a copy of it for MIDI output
    only (spacer rests where the print overlaps notes, repeats written out):
    its scores have a ``\midi`` block and no ``\layout``, so LilyPond prints
    no page of it.  It is the piece's music again with no sheet of its own, not
    a piece: it stays in the index with the problem ``midi-companion:<piece>``
    and is not selected.  A companion that prints (MSMD has one, Schumann
    Op. 124 No. 16) stays a piece.
    """
    for path, cand in pieces.items():
        if cand.structural:
            continue
        posix = PurePosixPath(path)
        match = _MIDI_COMPANION_RE.match(posix.stem)
        if match is None:
            continue
        sibling = str(posix.with_name(match.group("stem") + posix.suffix))
        if sibling in pieces and sibling != path and _prints_nothing(cand.main.raw_text):
            cand.structural = "midi-companion"
            _add_problem(cand.problems, f"midi-companion:{pieces[sibling].main.rel}")


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


def scan_into(
    work: WorkDir,
    mutopia_root: str | os.PathLike[str],
    *,
    if_changed: bool = False,
    progress: bool = False,
) -> list[PieceEntry]:
    """Scan a Mutopia checkout and write the index into a work directory.

    Parameters
    ----------
    work : WorkDir
        Where ``index.csv`` and ``corpus.json`` go.
    mutopia_root : path-like
        The checkout (the folder holding ``ftp/``).
    if_changed : bool
        Keep an existing index made from the same root instead of scanning again.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of PieceEntry
        The index's entries.
    """
    root = Path(mutopia_root).resolve()
    if if_changed and work.index.exists() and work.corpus_record.exists():
        if corpus_root(work) == root:
            return index_entries(work)
    entries = scan_corpus(root, progress=progress)
    write_corpus(work, root, entries)
    return entries
