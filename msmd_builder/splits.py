"""Train/valid/test splits: MSMD's three recipes, leave-one-composer-out, subsets, import.

A split assigns piece ids to parts (``train``, ``valid``, ``test``, and any
further named lists an imported file carries). It is made from the corpus
index and, optionally, a build report; nothing is rendered or re-read from
the Mutopia tree, so splits can be made, changed and imported at any time.

Recipes (Dorfer et al. 2018, Section 2.2 and Table 1):

``all``
    A random mix of all pieces, train/valid/test 360/19/100 of 479.
``bach-only``
    Only J. S. Bach's pieces (composer directory ``BachJS``), 100/23/50 of 173.
``bach-out``
    Every Bach piece is the test part; the other composers' pieces are split
    into train and valid, 281/25 of 306.
``leave-out``
    ``bach-out`` for any composer directory (``leave_out="MozartWA"``).

Assignment is deterministic and independent of input order: each id gets the
rank ``sha256("split", seed, id)``; the first ranks go to test, the next to
valid, the rest to train. A piece's rank does not depend on the other pieces,
so a corpus that gains or loses a few pieces moves only pieces near the part
boundaries. Data-size subsets rank train ids by their own seeded hash and keep
a prefix, so a smaller subset is always contained in a larger one.

Files are YAML in the layout of MSMD's own piece lists (``train:``, ``valid:``,
``test:``, each a list of ids) with an optional ``meta:`` mapping recording how
the split was made; see ``docs/splits.md``.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from msmd_builder.cache import atomic_write_text, sha256_file
from msmd_builder.corpus import PieceEntry
from msmd_builder.errors import ConfigError

__all__ = [
    "PARTS",
    "RECIPES",
    "BACH",
    "TABLE1_FRACTIONS",
    "SUBSET_FRACTIONS",
    "SPLIT_FORMAT_NAME",
    "SPLIT_FORMAT_VERSION",
    "MSMD_TABLE1",
    "TABLE1_STAT_KEYS",
    "NOT_IN_CORPUS",
    "NOT_SELECTED",
    "FAILED",
    "NOT_BUILT",
    "Split",
    "MissingPiece",
    "SplitImport",
    "PartStats",
    "BuildFacts",
    "make_split",
    "subset",
    "subsets",
    "subset_path",
    "make_split_files",
    "write_split",
    "read_split",
    "import_split",
    "build_facts",
    "split_statistics",
    "total_statistics",
    "table1_document",
    "format_table1",
]

PARTS: tuple[str, ...] = ("train", "valid", "test")
"""The standard parts, always present in a :class:`Split` (possibly empty), in this order."""

RECIPES: tuple[str, ...] = ("all", "bach-only", "bach-out", "leave-out")
"""Names accepted by :func:`make_split`."""

BACH = "BachJS"
"""Mutopia's composer directory of J. S. Bach (``bach-only``, ``bach-out``)."""

TABLE1_FRACTIONS: dict[str, tuple[float, float, float]] = {
    "all": (360 / 479, 19 / 479, 100 / 479),
    "bach-only": (100 / 173, 23 / 173, 50 / 173),
    "bach-out": (281 / 479, 25 / 479, 173 / 479),
    "leave-out": (281 / 479, 25 / 479, 173 / 479),
}
"""Default (train, valid, test) fractions per recipe: the piece counts of MSMD's Table 1.

For ``bach-out`` and ``leave-out`` the test part is the left-out composer, so
only the ratio train : valid (281 : 25) is used.
"""

SUBSET_FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75)
"""Train fractions of the data-size subsets written by ``make_split_files(subsets=True)``."""

SPLIT_FORMAT_NAME = "msmd-split"
"""``meta.format_name`` of split files written by :func:`write_split`."""

SPLIT_FORMAT_VERSION = 1
"""``meta.format_version``; bump it when the layout changes."""

NOT_IN_CORPUS = "not in corpus"
"""Missing-piece reason: the id is not in the corpus index."""

NOT_SELECTED = "not selected as keyboard"
"""Missing-piece reason: in the index, but not selected as solo keyboard."""

FAILED = "failed"
"""Missing-piece reason: the build failed (see ``error_class`` and ``message``)."""

NOT_BUILT = "not built"
"""Missing-piece reason: selected (or unknown to the caller) but not among the built pieces."""

_SPLIT_SALT = "msmd-split"
_SUBSET_SALT = "msmd-subset"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Split:
    """A named assignment of piece ids to parts.

    Parts are disjoint. ``train``, ``valid`` and ``test`` always exist (empty
    when a source lacks them) and come first; other parts (such as the
    ``failed``/``problems``/``success`` lists of MSMD's ``all_pieces.yaml``)
    follow in the order given. Ids keep their order within a part: MSMD's
    evaluation samples the ordered test pool, so an imported order matters.
    """

    name: str
    """Split name, e.g. ``all``, ``bach-out``, ``MozartWA-out``, ``all-train25``."""

    parts: Mapping[str, tuple[str, ...]]
    """Part name -> piece ids (a fresh dict; treat it as read-only)."""

    seed: int | None = None
    """Seed the split was drawn with; None for a split read from a list without one."""

    description: Mapping[str, Any] = field(default_factory=dict)
    """How the split was made: ``recipe``, ``leave_out``, ``fractions``, ``source``, ...

    Plain YAML values only (str, int, float, bool, None, lists, mappings).
    """

    _roles: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"split name must be a non-empty string, got {self.name!r}")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ConfigError(f"split seed must be an integer or None, got {self.seed!r}")
        if not isinstance(self.parts, Mapping):
            raise ConfigError(f"split parts must be a mapping, got {type(self.parts).__name__}")
        parts: dict[str, tuple[str, ...]] = {name: () for name in PARTS}
        for name, ids in self.parts.items():
            if not isinstance(name, str) or not name or name == "meta":
                raise ConfigError(f"bad part name {name!r}")
            if isinstance(ids, str) or not isinstance(ids, Iterable):
                raise ConfigError(f"part {name!r} must be a list of piece ids")
            parts[name] = tuple(ids)
        roles: dict[str, str] = {}
        for name, ids in parts.items():
            for piece_id in ids:
                if not isinstance(piece_id, str) or not piece_id:
                    raise ConfigError(f"part {name!r}: bad piece id {piece_id!r}")
                if piece_id in roles:
                    raise ConfigError(
                        f"piece {piece_id!r} is listed twice (in {roles[piece_id]!r} and {name!r})"
                    )
                roles[piece_id] = name
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "description", _plain(self.description, "description"))
        object.__setattr__(self, "_roles", roles)

    def role_of(self, piece_id: str) -> str | None:
        """Return the part that holds ``piece_id``, or None when the split does not list it."""
        return self._roles.get(piece_id)

    def piece_ids(self) -> tuple[str, ...]:
        """Return every listed id, part by part, in part order."""
        return tuple(piece_id for ids in self.parts.values() for piece_id in ids)

    def counts(self) -> dict[str, int]:
        """Return the number of pieces per part."""
        return {name: len(ids) for name, ids in self.parts.items()}

    def to_dict(self) -> dict[str, Any]:
        """Return the YAML document: ``meta`` first, then one id list per part."""
        meta = {
            "format_name": SPLIT_FORMAT_NAME,
            "format_version": SPLIT_FORMAT_VERSION,
            "name": self.name,
            "seed": self.seed,
            "description": dict(self.description),
        }
        return {"meta": meta, **{name: list(ids) for name, ids in self.parts.items()}}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], *, default_name: str = "split") -> Split:
        """Build a split from a YAML document: part lists plus an optional ``meta`` mapping.

        Parameters
        ----------
        document : Mapping
            ``{part: [ids], ..., "meta": {...}}``; a part may be null (empty).
        default_name : str
            Name used when ``meta.name`` is absent (typically the file stem).

        Raises
        ------
        ConfigError
            If the document is not a mapping of id lists, or ``meta`` is malformed.
        """
        if not isinstance(document, Mapping):
            raise ConfigError("a split file must be a mapping of part names to id lists")
        meta = document.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise ConfigError("`meta` must be a mapping")
        format_name = meta.get("format_name", SPLIT_FORMAT_NAME)
        format_version = meta.get("format_version", SPLIT_FORMAT_VERSION)
        if format_name != SPLIT_FORMAT_NAME or format_version != SPLIT_FORMAT_VERSION:
            raise ConfigError(
                f"unsupported split format {format_name!r} v{format_version!r} "
                f"(this version reads {SPLIT_FORMAT_NAME!r} v{SPLIT_FORMAT_VERSION})"
            )
        parts: dict[str, tuple[str, ...]] = {}
        for key, value in document.items():
            if key == "meta":
                continue
            if value is None:
                value = []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"part {key!r} must be a list of piece ids")
            parts[str(key)] = tuple(value)
        if not parts:
            raise ConfigError("a split file needs at least one part (train, valid, test, ...)")
        description = meta.get("description") or {}
        if not isinstance(description, Mapping):
            raise ConfigError("`meta.description` must be a mapping")
        return cls(
            name=str(meta.get("name") or default_name),
            parts=parts,
            seed=meta.get("seed"),
            description=description,
        )


@dataclass(frozen=True)
class MissingPiece:
    """A piece listed by an imported split that is not among the available pieces."""

    piece_id: str
    part: str
    """The part the source file lists it in."""
    reason: str
    """:data:`NOT_IN_CORPUS`, :data:`NOT_SELECTED`, :data:`FAILED` or :data:`NOT_BUILT`."""
    error_class: str = ""
    """The build failure's class (``PieceError.error_class``) when ``reason`` is ``failed``."""
    message: str = ""
    """The build failure's message when ``reason`` is ``failed``."""

    def describe(self) -> str:
        """Return one readable line, e.g. ``X (test): failed [scheme] unbound variable``."""
        text = f"{self.piece_id} ({self.part}): {self.reason}"
        if self.reason == FAILED:
            text += f" [{self.error_class}]"
            if self.message:
                text += " " + " ".join(self.message.split())
        return text

    def to_dict(self) -> dict[str, str]:
        """Return the record as plain strings (as stored in an imported split's ``meta``)."""
        return {
            "piece_id": self.piece_id,
            "part": self.part,
            "reason": self.reason,
            "error_class": self.error_class,
            "message": self.message,
        }


@dataclass(frozen=True)
class SplitImport:
    """Result of :func:`import_split`: the usable split and what it lost."""

    split: Split
    """The source split restricted to the available pieces (part order and id order kept)."""
    listed: Split
    """The source split as read."""
    missing: tuple[MissingPiece, ...]
    """Every listed piece that is not available, in part order then file order."""

    @property
    def resolved(self) -> int:
        """Number of listed pieces that are available."""
        return len(self.split.piece_ids())

    def reason_counts(self) -> dict[str, int]:
        """Return the number of missing pieces per reason (failures per error class)."""
        counts = Counter(
            f"{m.reason}: {m.error_class}" if m.reason == FAILED else m.reason for m in self.missing
        )
        return dict(sorted(counts.items()))

    def summary(self) -> str:
        """Return a readable multi-line account: totals, per-part counts, each missing piece."""
        listed = self.listed.counts()
        kept = self.split.counts()
        lines = [
            f"{self.listed.name}: {self.resolved} of {len(self.listed.piece_ids())} "
            f"listed pieces available, {len(self.missing)} missing",
            "  " + ", ".join(f"{p} {kept[p]}/{listed[p]}" for p in listed),
        ]
        for reason, count in self.reason_counts().items():
            lines.append(f"  {count:4d}  {reason}")
        lines.extend("  - " + m.describe() for m in self.missing)
        return "\n".join(lines)


@dataclass(frozen=True)
class PartStats:
    """Table-1 figures of one split part: pieces, pages, noteheads, events, aligned pairs."""

    pieces: int
    pages: int
    noteheads: int
    events: int
    """Performed note events (MSMD: MIDI note events)."""
    aligned_pairs: int
    """Notehead / note-event pairs (MSMD: "Aln. Pairs")."""
    without_stats: int = 0
    """Pieces of the part with no statistics (not built); counted in ``pieces`` only."""

    def to_dict(self) -> dict[str, int]:
        """Return the figures as a JSON-ready mapping (field name -> count)."""
        return asdict(self)

    def __add__(self, other: PartStats) -> PartStats:
        return PartStats(
            self.pieces + other.pieces,
            self.pages + other.pages,
            self.noteheads + other.noteheads,
            self.events + other.events,
            self.aligned_pairs + other.aligned_pairs,
            self.without_stats + other.without_stats,
        )


@dataclass(frozen=True)
class BuildFacts:
    """What a build report says about each piece, in the form the split functions take."""

    available_ids: frozenset[str]
    """Pieces that went through the build (status other than ``failed``)."""
    failed: dict[str, tuple[str, str]]
    """Failed piece id -> (error class, message)."""
    stats: dict[str, dict[str, int]]
    """Piece id -> alignment statistics (``pages``, ``noteheads``, ``performed_notes``, ...)."""


MSMD_TABLE1: dict[str, dict[str, PartStats]] = {
    "all": {
        "train": PartStats(360, 970, 316_038, 310_377, 308_761),
        "valid": PartStats(19, 28, 6_907, 6_583, 6_660),
        "test": PartStats(100, 131, 29_851, 29_811, 29_321),
    },
    "bach-only": {
        "train": PartStats(100, 251, 77_834, 75_283, 74_769),
        "valid": PartStats(23, 40, 10_805, 10_379, 10_428),
        "test": PartStats(50, 88, 23_733, 23_296, 23_119),
    },
    "bach-out": {
        "train": PartStats(281, 725, 235_590, 233_041, 231_617),
        "valid": PartStats(25, 25, 4_834, 4_772, 4_809),
        "test": PartStats(173, 379, 112_372, 108_958, 108_316),
    },
}
"""MSMD's statistics per split and part, from Table 1 of Dorfer, Hajič, Arzt, Frostel and
Widmer, "Learning Audio–Sheet Music Correspondences for Cross-Modal Retrieval and Piece
Identification", Transactions of the International Society for Music Information Retrieval
1(1), 2018. Totals: 479 pieces / 344,742 aligned pairs (``all``, ``bach-out``), 173 / 108,316
(``bach-only``).
"""

TABLE1_STAT_KEYS: dict[str, str] = {
    "pages": "pages",
    "noteheads": "noteheads",
    "events": "performed_notes",
    "aligned_pairs": "aligned_performed_notes",
}
"""Table-1 column (:class:`PartStats` field) -> key of the per-piece alignment statistics."""


# --------------------------------------------------------------------------- internals


def _plain(value: Any, where: str) -> Any:
    """Return ``value`` as plain YAML data (tuples become lists), or raise ConfigError."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    raise ConfigError(f"{where}: {type(value).__name__} is not a plain YAML value")


def _rank(piece_id: str, seed: int, salt: str) -> bytes:
    """Return the seeded, order-independent sort key of one id."""
    return hashlib.sha256(f"{salt}\0{seed}\0{piece_id}".encode()).digest()


def _shuffled(ids: Iterable[str], seed: int, salt: str) -> list[str]:
    return sorted(ids, key=lambda piece_id: (_rank(piece_id, seed, salt), piece_id))


def _round(x: float) -> int:
    """Round half up (Python's ``round`` rounds half to even)."""
    return math.floor(x + 0.5)


def _at_least_one(n: int, share: float, size: float) -> int:
    """Round a part's size, but give a part with a positive share one piece of 3 or more.

    Small corpora (the bundled examples) would otherwise get an empty
    validation part from MSMD's 4 % share.
    """
    rounded = _round(size)
    return max(rounded, 1) if share > 0 and n >= 3 else rounded


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    return seed


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(not math.isfinite(f) or f < 0 for f in values):
        raise ConfigError(f"fractions must be three non-negative numbers, got {fractions!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(f"fractions (train, valid, test) must sum to 1, got {fractions!r}")
    return values  # type: ignore[return-value]


def _composers(pieces: Iterable[PieceEntry | str]) -> dict[str, str]:
    """Return piece id -> composer directory; for a bare id, its part before ``__``."""
    result: dict[str, str] = {}
    for piece in pieces:
        if isinstance(piece, PieceEntry):
            piece_id, composer = piece.piece_id, piece.composer_dir
        elif isinstance(piece, str) and piece:
            piece_id, composer = piece, piece.split("__", 1)[0]
        else:
            raise ConfigError(f"expected a PieceEntry or a piece id, got {piece!r}")
        if piece_id in result:
            raise ConfigError(f"piece {piece_id!r} is given twice")
        result[piece_id] = composer
    return result


# --------------------------------------------------------------------------- making splits


def make_split(
    pieces: Iterable[PieceEntry | str],
    recipe: str,
    *,
    seed: int,
    fractions: Sequence[float] | None = None,
    leave_out: str | None = None,
    name: str | None = None,
    source: str | None = None,
) -> Split:
    """Draw a split of ``pieces`` by one of MSMD's recipes.

    Parameters
    ----------
    pieces : iterable of PieceEntry or str
        The pieces to split, typically the built (or keyboard-selected) pieces
        of the corpus index. For a bare id the composer is its part before ``__``.
    recipe : {"all", "bach-only", "bach-out", "leave-out"}
        See the module docstring.
    seed : int
        Same pieces and seed give the same split, whatever the input order.
    fractions : sequence of 3 float, optional
        (train, valid, test) shares summing to 1; default :data:`TABLE1_FRACTIONS`
        of the recipe. For ``bach-out``/``leave-out`` the test part is the
        left-out composer and the rest is divided train : valid.
    leave_out : str, optional
        Composer directory (e.g. ``MozartWA``) to hold out; required by
        ``leave-out``, allowed as ``BachJS`` with ``bach-out``.
    name : str, optional
        Split name; default the recipe, or ``<composer>-out`` for ``leave-out``.
    source : str, optional
        Where the pieces came from (e.g. ``index.csv``), recorded in the description.

    Returns
    -------
    Split
        Parts train/valid/test, each sorted by id.

    Raises
    ------
    ConfigError
        For an unknown recipe, a missing or unknown composer, bad fractions or
        seed, a duplicate id, or no pieces to split.
    """
    if recipe not in RECIPES:
        raise ConfigError(f"unknown split recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    seed = _check_seed(seed)
    shares = _check_fractions(TABLE1_FRACTIONS[recipe] if fractions is None else fractions)
    composer_of = _composers(pieces)
    if recipe == "bach-out":
        if leave_out not in (None, BACH):
            raise ConfigError(
                f"recipe bach-out leaves out {BACH}, not {leave_out!r}; use recipe leave-out"
            )
        leave_out = BACH
    elif recipe == "leave-out":
        if not leave_out:
            raise ConfigError("recipe leave-out needs a composer directory (--leave-out)")
    elif leave_out is not None:
        raise ConfigError(f"recipe {recipe} takes no composer to leave out; use recipe leave-out")

    if recipe == "bach-only":
        ids = [p for p, c in composer_of.items() if c == BACH]
        if not ids:
            raise ConfigError(f"recipe bach-only: no pieces with composer directory {BACH}")
    else:
        ids = list(composer_of)
    if not ids:
        raise ConfigError("no pieces to split")

    if leave_out is None:
        order = _shuffled(ids, seed, _SPLIT_SALT)
        n = len(order)
        test_end = _at_least_one(n, shares[2], n * shares[2])
        valid_end = test_end + _at_least_one(n, shares[1], n * (shares[2] + shares[1]) - test_end)
        test, valid, train = order[:test_end], order[test_end:valid_end], order[valid_end:]
    else:
        test = [p for p in ids if composer_of[p] == leave_out]
        if not test:
            counts = Counter(composer_of.values())
            near = sorted(c for c in counts if c.lower() == leave_out.lower())
            top = ", ".join(c for c, _ in counts.most_common(8))
            hint = f"did you mean {near[0]}?" if near else f"most frequent: {top}"
            raise ConfigError(f"no pieces with composer directory {leave_out!r} ({hint})")
        if shares[0] + shares[1] <= 0:
            raise ConfigError("fractions: train + valid must be positive to leave a composer out")
        order = _shuffled((p for p in ids if composer_of[p] != leave_out), seed, _SPLIT_SALT)
        n_valid = _at_least_one(
            len(order), shares[1], len(order) * shares[1] / (shares[0] + shares[1])
        )
        valid, train = order[:n_valid], order[n_valid:]

    if name is None:
        name = f"{leave_out}-out" if recipe == "leave-out" else recipe
    description = {
        "recipe": recipe,
        "leave_out": leave_out,
        "fractions": list(shares),
        "pieces": len(train) + len(valid) + len(test),
        "source": source,
    }
    return Split(
        name=name,
        parts={"train": sorted(train), "valid": sorted(valid), "test": sorted(test)},
        seed=seed,
        description=description,
    )


def subset(split: Split, fraction: float, *, seed: int) -> Split:
    """Keep a share of the train part (MSMD-style data-size experiments).

    Parameters
    ----------
    split : Split
        The full split.
    fraction : float
        Share of train to keep, in (0, 1]; at least one piece is kept when train is not empty.
    seed : int
        Subsets with the same seed are nested: for ``a < b`` the ``a`` subset's
        train part is contained in the ``b`` subset's.

    Returns
    -------
    Split
        Named ``<name>-train<percent>``; train keeps its original order, every
        other part is unchanged.
    """
    seed = _check_seed(seed)
    if isinstance(fraction, bool) or not (0 < float(fraction) <= 1):
        raise ConfigError(f"subset fraction must be in (0, 1], got {fraction!r}")
    train = split.parts["train"]
    n_keep = max(1, _round(len(train) * fraction)) if train else 0
    keep = set(_shuffled(train, seed, _SUBSET_SALT)[:n_keep])
    parts = dict(split.parts)
    parts["train"] = tuple(p for p in train if p in keep)
    description = dict(split.description)
    description.update(
        {"subset_of": split.name, "train_fraction": float(fraction), "subset_seed": seed}
    )
    return Split(
        name=f"{split.name}-train{float(fraction) * 100:g}",
        parts=parts,
        seed=split.seed,
        description=description,
    )


def subsets(
    split: Split, fractions: Sequence[float] = SUBSET_FRACTIONS, *, seed: int
) -> list[Split]:
    """Return :func:`subset` for each fraction (nested, in the given order)."""
    return [subset(split, fraction, seed=seed) for fraction in fractions]


def subset_path(path: str | os.PathLike[str], fraction: float) -> Path:
    """Return the file name of a subset beside its split: ``all.yaml`` -> ``all-train25.yaml``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-train{float(fraction) * 100:g}{path.suffix}")


def make_split_files(
    pieces: Iterable[PieceEntry | str],
    recipe: str,
    *,
    seed: int,
    out: str | os.PathLike[str],
    leave_out: str | None = None,
    fractions: Sequence[float] | None = None,
    with_subsets: bool = False,
    subset_fractions: Sequence[float] = SUBSET_FRACTIONS,
    source: str | None = None,
) -> list[Path]:
    """Make a split and write it, and optionally its data-size subsets, as YAML.

    The body of ``msmd-build splits make``: :func:`make_split`, then
    :func:`write_split` to ``out`` and, with ``with_subsets``, each
    :func:`subset` (same seed) to :func:`subset_path`.

    Returns
    -------
    list of Path
        The files written, the split first.
    """
    split = make_split(
        pieces, recipe, seed=seed, fractions=fractions, leave_out=leave_out, source=source
    )
    write_split(split, out)
    written = [Path(out)]
    if with_subsets:
        for fraction, part in zip(
            subset_fractions, subsets(split, subset_fractions, seed=seed), strict=True
        ):
            path = subset_path(out, fraction)
            write_split(part, path)
            written.append(path)
    return written


# --------------------------------------------------------------------------- files


def write_split(split: Split, path: str | os.PathLike[str]) -> None:
    """Write ``split`` as YAML atomically (``meta``, then one id list per part)."""
    text = yaml.safe_dump(
        split.to_dict(), sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096
    )
    atomic_write_text(path, text)


def read_split(path: str | os.PathLike[str]) -> Split:
    """Read a split file: one written by :func:`write_split`, or one of MSMD's piece lists.

    A file without ``meta`` is named after its stem and gets the description
    ``{"source": <file name>}``.

    Raises
    ------
    ConfigError
        If the file is not YAML or not a mapping of id lists.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not a YAML file ({exc})") from exc
    try:
        split = Split.from_dict(document, default_name=path.stem)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(document.get("meta"), Mapping):
        split = Split(split.name, split.parts, split.seed, {"source": path.name})
    return split


def import_split(
    path: str | os.PathLike[str],
    *,
    available_ids: Iterable[str],
    index: Iterable[PieceEntry] | None = None,
    failed: Mapping[str, tuple[str, str]] | None = None,
) -> SplitImport:
    """Read an existing piece list and restrict it to the pieces that are available.

    Parameters
    ----------
    path : path-like
        A split file (e.g. MSMD's ``tismir2018_all_split.yaml``) in the layout
        :func:`read_split` reads.
    available_ids : iterable of str
        Pieces that can go into the dataset (built ones, or the keyboard
        selection before a build).
    index : iterable of PieceEntry, optional
        The corpus index; lets a missing piece be told apart as
        :data:`NOT_IN_CORPUS` or :data:`NOT_SELECTED`.
    failed : mapping, optional
        Piece id -> (error class, message) of failed builds (see :func:`build_facts`).

    Returns
    -------
    SplitImport
        ``split`` keeps the source's name, seed, part order and id order;
        its description records the source file, its SHA-256 and the
        missing pieces, so a written import documents its own losses.

    Notes
    -----
    The reason of a missing piece is, in this order: :data:`FAILED` when
    ``failed`` lists it, :data:`NOT_IN_CORPUS` when ``index`` lacks it,
    :data:`NOT_SELECTED` when ``index`` has it without ``is_keyboard``,
    otherwise :data:`NOT_BUILT`.
    """
    path = Path(path)
    listed = read_split(path)
    available = set(available_ids)
    failed = dict(failed or {})
    known = None if index is None else {entry.piece_id: entry for entry in index}
    missing: list[MissingPiece] = []
    parts: dict[str, tuple[str, ...]] = {}
    for part, ids in listed.parts.items():
        parts[part] = tuple(p for p in ids if p in available)
        for piece_id in ids:
            if piece_id in available:
                continue
            if piece_id in failed:
                error_class, message = failed[piece_id]
                missing.append(MissingPiece(piece_id, part, FAILED, error_class, message))
            elif known is not None and piece_id not in known:
                missing.append(MissingPiece(piece_id, part, NOT_IN_CORPUS))
            elif known is not None and not known[piece_id].is_keyboard:
                missing.append(MissingPiece(piece_id, part, NOT_SELECTED))
            else:
                missing.append(MissingPiece(piece_id, part, NOT_BUILT))
    description = {
        "recipe": "import",
        "source": path.name,
        "source_sha256": sha256_file(path),
        "source_description": dict(listed.description),
        "listed": len(listed.piece_ids()),
        "missing": [m.to_dict() for m in missing],
    }
    split = Split(listed.name, parts, listed.seed, description)
    return SplitImport(split=split, listed=listed, missing=tuple(missing))


# --------------------------------------------------------------------------- statistics


def build_facts(report: Mapping[str, Any]) -> BuildFacts:
    """Read the per-piece outcomes of a build report (``msmd_builder.pipeline.write_report``).

    Parameters
    ----------
    report : Mapping
        The JSON document: ``{"pieces": [{"piece_id", "status", "error_class",
        "message", "details": {"alignment": {...}}}, ...], ...}``.

    Returns
    -------
    BuildFacts
        Available ids, failures and alignment statistics, for
        :func:`import_split` and :func:`split_statistics`.
    """
    pieces = report.get("pieces")
    if not isinstance(pieces, list):
        raise ConfigError("not a build report: no `pieces` list")
    available: set[str] = set()
    failed: dict[str, tuple[str, str]] = {}
    stats: dict[str, dict[str, int]] = {}
    for outcome in pieces:
        piece_id = outcome["piece_id"]
        if outcome.get("status") == "failed":
            failed[piece_id] = (outcome.get("error_class", ""), outcome.get("message", ""))
            continue
        available.add(piece_id)
        alignment = (outcome.get("details") or {}).get("alignment")
        if isinstance(alignment, Mapping):
            stats[piece_id] = {k: v for k, v in alignment.items() if isinstance(v, int)}
    return BuildFacts(frozenset(available), failed, stats)


def split_statistics(split: Split, stats: Mapping[str, Mapping[str, int]]) -> dict[str, PartStats]:
    """Sum per-piece statistics per part, as in MSMD's Table 1.

    Parameters
    ----------
    split : Split
        The split.
    stats : Mapping
        Piece id -> statistics with at least the keys of :data:`TABLE1_STAT_KEYS`
        (``pages``, ``noteheads``, ``performed_notes``, ``aligned_performed_notes``).
        A piece without an entry counts in ``pieces`` and ``without_stats`` only.

    Returns
    -------
    dict
        Part name -> :class:`PartStats`, in the split's part order.
    """
    result: dict[str, PartStats] = {}
    for part, ids in split.parts.items():
        sums = dict.fromkeys(TABLE1_STAT_KEYS, 0)
        without = 0
        for piece_id in ids:
            piece = stats.get(piece_id)
            if piece is None:
                without += 1
                continue
            for column, key in TABLE1_STAT_KEYS.items():
                if key not in piece:
                    raise ConfigError(f"statistics of {piece_id!r} lack {key!r}")
                sums[column] += int(piece[key])
        result[part] = PartStats(pieces=len(ids), without_stats=without, **sums)
    return result


def total_statistics(parts: Mapping[str, PartStats]) -> PartStats:
    """Return the sum over parts (Table 1's "# Pieces / Aln. Pairs" column)."""
    total = PartStats(0, 0, 0, 0, 0)
    for stats in parts.values():
        total = total + stats
    return total


def table1_document(
    statistics: Mapping[str, Mapping[str, PartStats]],
) -> dict[str, dict[str, dict[str, int]]]:
    """Return split -> part -> figures as plain JSON data.

    The shape of a build report's ``summary["table1"]`` and
    ``summary["msmd_table1"]`` (``table1_document(MSMD_TABLE1)``), which
    :mod:`msmd_builder.report` renders.
    """
    return {
        split: {part: stats.to_dict() for part, stats in parts.items()}
        for split, parts in statistics.items()
    }


def format_table1(
    parts: Mapping[str, PartStats],
    *,
    title: str = "",
    reference: Mapping[str, PartStats] | None = None,
) -> str:
    """Return a Markdown table in the form of MSMD's Table 1.

    Parameters
    ----------
    parts : Mapping
        Part name -> statistics (from :func:`split_statistics`).
    title : str
        Heading line, omitted when empty.
    reference : Mapping, optional
        MSMD's figures for the same split (e.g. ``MSMD_TABLE1["all"]``);
        each cell then reads ``ours (MSMD)``.
    """
    columns = ("pieces", "pages", "noteheads", "events", "aligned_pairs")
    rows = {**parts, "total": total_statistics(parts)}
    ref_rows = None
    if reference is not None:
        ref_rows = {**reference, "total": total_statistics(reference)}
    lines = [f"### {title}", ""] if title else []
    suffix = " (MSMD)" if ref_rows is not None else ""
    lines.append(
        "| part | " + " | ".join(c.replace("_", " ") + suffix for c in columns) + " | no stats |"
    )
    lines.append("| --- |" + " ---: |" * (len(columns) + 1))
    for part, stats in rows.items():
        cells = []
        for column in columns:
            cell = f"{getattr(stats, column):,}"
            if ref_rows is not None:
                ref = ref_rows.get(part)
                cell += f" ({getattr(ref, column):,})" if ref is not None else " (-)"
            cells.append(cell)
        lines.append(f"| {part} | " + " | ".join(cells) + f" | {stats.without_stats} |")
    return "\n".join(lines) + "\n"
