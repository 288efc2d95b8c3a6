"""Drawing splits: MSMD's three recipes, leave-one-composer-out and nested training subsets.

Assignment is deterministic and independent of input order: each id gets the
rank ``sha256("split", seed, id)``; the first ranks go to test, the next to
valid, the rest to train.  Data-size subsets rank train ids by their own seeded
hash and keep a prefix, so a smaller subset is always contained in a larger one.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from msmd_builder.core.errors import ConfigError
from msmd_builder.stages.corpus.index import PieceEntry
from msmd_builder.stages.splits.split import Split, write_split

__all__ = [
    "RECIPES",
    "BACH",
    "TABLE1_FRACTIONS",
    "SUBSET_FRACTIONS",
    "make_split",
    "subset",
    "subsets",
    "subset_path",
    "make_split_files",
]


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


_SPLIT_SALT = "msmd-split"


_SUBSET_SALT = "msmd-subset"


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
