"""Content hashing and atomic writes: what makes every stage resumable and idempotent.

A stage's cache key is the SHA-256 of a canonical JSON document holding its
inputs' content hashes, its settings and the versions of the tools it runs.
Outputs are written to a temporary name in the destination directory and
renamed into place, so a killed build never leaves a half-written file that a
later run would mistake for a finished one.  :class:`StageCache` is the one
hit-or-miss check every stage uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from msmd_builder.core.errors import FormatError

__all__ = [
    "sha256_file",
    "sha256_bytes",
    "stable_key",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "read_json",
    "StageCache",
    "output_sizes",
    "sized_outputs",
    "save_npz",
    "load_npz",
]

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stable_key(document: Mapping[str, Any]) -> str:
    """Hash a JSON-serialisable mapping independently of key order.

    Parameters
    ----------
    document : Mapping
        Inputs, settings and tool versions of a stage.

    Returns
    -------
    str
        Hex SHA-256 of the canonical JSON encoding (sorted keys, no spaces).
    """
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(canonical.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are ordinary shared files
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], document: Any) -> None:
    """Write ``document`` as indented, key-sorted JSON to ``path`` atomically."""
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`atomic_write_json`."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# --------------------------------------------------------------------------------------
# The one cached-stage helper
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCache:
    """The cache entry of one stage output: a record file keyed by a hash, and its outputs.

    Every stage and every per-piece memo uses this one check: a record is a hit
    when it exists, carries this ``format_name`` and ``format_version``, its
    ``cache_key`` equals :attr:`key` (the hash of the stage's key document:
    inputs' content keys, settings, tool versions) and every output file the
    stage names for it still exists, with the size the record gives it
    (:func:`output_sizes`), so a deleted or truncated output is rebuilt.
    Anything else is a miss and the stage runs again; :meth:`store` writes the
    record atomically, after the outputs.

    The record is a JSON file by default; a stage whose output file carries its
    own key (a performance's ``.npz``) passes a ``reader`` that returns that
    file's scalar fields.

    Attributes
    ----------
    record_path : Path
        The record (``render/render.json``, ``<performance_id>.npz``, ...).
    format_name : str
        ``msmd-builder/<what>``, stored in the record.
    format_version : int
        Layout version of the record, stored in it; bump on layout changes.
    key : str
        Hex SHA-256 of the key document (:func:`stable_key`).
    """

    record_path: Path
    format_name: str
    format_version: int
    key: str

    @classmethod
    def for_document(
        cls,
        record_path: str | os.PathLike[str],
        key_document: Mapping[str, Any],
        *,
        format_name: str,
        format_version: int,
    ) -> StageCache:
        """Return the cache entry whose key hashes ``key_document`` (and the format)."""
        key = stable_key(
            {**key_document, "format_name": format_name, "format_version": format_version}
        )
        return cls(Path(record_path), format_name, format_version, key)

    def lookup(
        self,
        outputs: Callable[[Mapping[str, Any]], Iterable[Any]] | None = None,
        *,
        force: bool = False,
        reader: Callable[[Path], Mapping[str, Any]] | None = None,
    ) -> dict[str, Any] | None:
        """Return the stored record on a hit, None on a miss.

        Parameters
        ----------
        outputs : callable, optional
            Given the stored record, the files the stage wrote: paths, or
            ``(path, size_bytes)`` pairs; a hit needs every one of them to
            exist (with that size).
        force : bool
            Always miss.
        reader : callable, optional
            Reads the record file; default :func:`read_json`.  Unreadable
            records (truncated, wrong type) are misses.
        """
        if force or not self.record_path.is_file():
            return None
        try:
            record = dict((reader or read_json)(self.record_path))
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            return None
        if (
            record.get("format_name") != self.format_name
            or record.get("format_version") != self.format_version
            or record.get("cache_key") != self.key
        ):
            return None
        if outputs is not None and not all(_present(output) for output in outputs(record)):
            return None
        return record

    def stamp(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``record`` with this entry's format name, version and key added."""
        return {
            **record,
            "format_name": self.format_name,
            "format_version": self.format_version,
            "cache_key": self.key,
        }

    def store(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write the stamped record atomically (as JSON) and return it."""
        document = self.stamp(record)
        atomic_write_json(self.record_path, document)
        return document


def output_sizes(folder: Path, names: Iterable[str]) -> dict[str, int]:
    """Return each output's size in bytes, by its name relative to ``folder``.

    A stage stores this mapping in its record; :func:`sized_outputs` turns it
    back into what :meth:`StageCache.lookup` checks.  Sizes are cheap to check
    on every run and catch what a copy or a full disk leaves: a truncated file.
    """
    return {name: (folder / name).stat().st_size for name in names}


def sized_outputs(folder: Path, sizes: Mapping[str, int]) -> list[tuple[Path, int]]:
    """Return ``(path, size_bytes)`` pairs of a record's :func:`output_sizes` mapping."""
    return [(folder / name, int(size)) for name, size in sizes.items()]


def _present(output: Any) -> bool:
    """Return True when an output exists (with its recorded size, for a ``(path, size)``)."""
    if isinstance(output, tuple):
        path, size = Path(output[0]), int(output[1])
        return path.is_file() and path.stat().st_size == size
    return Path(output).is_file()


def save_npz(
    path: str | os.PathLike[str],
    *,
    format_name: str,
    format_version: int,
    compressed: bool = True,
    **arrays: Any,
) -> None:
    """Write arrays to an ``.npz`` file atomically, with ``format_name``/``format_version``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        save = np.savez_compressed if compressed else np.savez
        save(
            handle,
            format_name=np.array(format_name),
            format_version=np.int64(format_version),
            **arrays,
        )


def load_npz(
    path: str | os.PathLike[str], *, format_name: str, format_version: int
) -> dict[str, np.ndarray]:
    """Read an ``.npz`` written by :func:`save_npz`, checking its format.

    Raises
    ------
    FormatError
        If the file is not of that format and version (or unreadable).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"{path} is not a readable .npz file ({exc})") from exc
    found = (str(arrays.get("format_name", "")), int(arrays.get("format_version", -1)))
    if found != (format_name, format_version):
        raise FormatError(
            f"{path} is {found[0] or 'unnamed'} version {found[1]}, "
            f"expected {format_name} version {format_version}"
        )
    return arrays
