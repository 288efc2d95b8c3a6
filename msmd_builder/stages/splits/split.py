"""The :class:`Split` record and its YAML files (MSMD's layout plus a ``meta:`` mapping)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from msmd_builder.core.cache import atomic_write_text
from msmd_builder.core.errors import ConfigError

__all__ = [
    "PARTS",
    "SPLIT_FORMAT_NAME",
    "SPLIT_FORMAT_VERSION",
    "Split",
    "write_split",
    "read_split",
]


PARTS: tuple[str, ...] = ("train", "valid", "test")
"""The standard parts, always present in a :class:`Split` (possibly empty), in this order."""


SPLIT_FORMAT_NAME = "msmd-split"
"""``meta.format_name`` of split files written by :func:`write_split`."""


SPLIT_FORMAT_VERSION = 1
"""``meta.format_version``; bump it when the layout changes."""


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


def _plain(value: Any, where: str) -> Any:
    """Return ``value`` as plain YAML data (tuples become lists), or raise ConfigError."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    raise ConfigError(f"{where}: {type(value).__name__} is not a plain YAML value")


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
