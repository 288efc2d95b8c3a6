r"""Stage 2: copy a piece into the work directory and upgrade its syntax.

The Mutopia tree is never touched.  The piece's folder (its LilyPond sources
only) and every include outside it are copied to ``<work>/pieces/<id>/source/``
under their paths relative to the Mutopia root, so relative ``\include``s
resolve exactly as in the original tree.  Each copied file is re-encoded as
UTF-8 and upgraded in place with ``convert-ly``; an include without its own
``\version`` is upgraded from the main file's version.

Nothing else is changed in the music: what current LilyPond needs beyond
convert-ly lives in ``lilypond_patches/`` and is loaded at render time.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from msmd_builder.cache import atomic_write_json, read_json, sha256_file, stable_key
from msmd_builder.errors import ConvertLyError, MissingIncludeError, SourceEncodingError
from msmd_builder.tools import convert_ly_executable, lilypond_version, run_tool

__all__ = [
    "NormalizedPiece",
    "normalize_piece",
    "read_version",
    "decode_source",
    "LILYPOND_SOURCE_SUFFIXES",
]

#: File endings copied along with a piece (LilyPond and Scheme sources only).
LILYPOND_SOURCE_SUFFIXES = (".ly", ".ily", ".lyi", ".scm", ".ily.ly")

_VERSION_RE = re.compile(r"""\\version\s*"([0-9]+(?:\.[0-9]+){1,2})\"""")
_CONVERT_TIMEOUT_SEC = 120.0
_STAGE_VERSION = 1


@dataclass(frozen=True)
class NormalizedPiece:
    r"""A piece's sources as copied and upgraded into the work directory.

    Attributes
    ----------
    piece_id : str
        ``<ComposerDir>__<OpusDir>__<main file stem>``.
    source_dir : str
        Folder holding the copied tree (mirrors the Mutopia root).
    main_file : str
        The main file, relative to ``source_dir`` (posix).
    converted : tuple of str
        Files upgraded by convert-ly, relative to ``source_dir``.
    from_version : str
        The main file's original ``\version`` ("" when it had none).
    warnings : tuple of str
        Non-fatal findings (transcoded files, convert-ly notes).
    seconds : float
        Time spent in this stage.
    cache_key : str
        Hash of the inputs' content, the stage version and the tool version.
    """

    piece_id: str
    source_dir: str
    main_file: str
    converted: tuple[str, ...]
    from_version: str
    warnings: tuple[str, ...] = field(default_factory=tuple)
    seconds: float = 0.0
    cache_key: str = ""

    @property
    def main_path(self) -> Path:
        """Absolute path of the copied main file."""
        return Path(self.source_dir) / self.main_file

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict."""
        return {
            "piece_id": self.piece_id,
            "source_dir": self.source_dir,
            "main_file": self.main_file,
            "converted": list(self.converted),
            "from_version": self.from_version,
            "warnings": list(self.warnings),
            "seconds": self.seconds,
            "cache_key": self.cache_key,
        }

    @classmethod
    def from_dict(cls, data: dict) -> NormalizedPiece:
        """Inverse of :meth:`to_dict`."""
        return cls(
            piece_id=data["piece_id"],
            source_dir=data["source_dir"],
            main_file=data["main_file"],
            converted=tuple(data["converted"]),
            from_version=data["from_version"],
            warnings=tuple(data["warnings"]),
            seconds=float(data["seconds"]),
            cache_key=data["cache_key"],
        )


def read_version(text: str) -> str:
    r"""Return the first ``\version`` string in LilyPond source ``text``, or ``""``."""
    match = _VERSION_RE.search(text)
    return match.group(1) if match else ""


def decode_source(
    data: bytes, *, name: str, legacy_encoding: str | None = "cp1252"
) -> tuple[str, str]:
    """Decode LilyPond source bytes, falling back to a legacy 8-bit encoding.

    Parameters
    ----------
    data : bytes
        File content.
    name : str
        File name, for messages.
    legacy_encoding : str or None
        Encoding tried when the bytes are not UTF-8 (old Mutopia files were
        often Windows-1252).  ``None`` makes non-UTF-8 input an error.

    Returns
    -------
    text : str
        The decoded text (a UTF-8 byte-order mark is dropped).
    warning : str
        Empty, or a note that the file was transcoded.

    Raises
    ------
    SourceEncodingError
        If the bytes contain NUL characters or decode under neither encoding.
    """
    if b"\x00" in data:
        raise SourceEncodingError(f"{name}: binary content (NUL bytes), not a LilyPond source")
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as exc:
        offset = exc.start
        if legacy_encoding is None:
            raise SourceEncodingError(
                f"{name}: not valid UTF-8 (byte 0x{data[offset]:02x} at offset {offset})"
            ) from exc
        try:
            text = data.decode(legacy_encoding)
        except UnicodeDecodeError as exc2:
            raise SourceEncodingError(
                f"{name}: neither UTF-8 nor {legacy_encoding} "
                f"(byte 0x{data[exc2.start]:02x} at offset {exc2.start})"
            ) from exc2
        return text, f"{name}: not UTF-8, transcoded from {legacy_encoding}"


def _piece_files(root: Path, main_file: str, includes: Sequence[str]) -> list[str]:
    """Relative paths to copy: LilyPond sources of the main file's folder, plus includes."""
    main = PurePosixPath(main_file)
    folder = root / main.parent
    names = {main_file}
    for path in folder.iterdir():
        if path.is_file() and path.name.endswith(LILYPOND_SOURCE_SUFFIXES):
            names.add(str(main.parent / path.name))
    for include in includes:
        if not (root / include).is_file():
            raise MissingIncludeError(f"{main_file}: included file {include} does not exist")
        names.add(include)
    return sorted(names)


def normalize_piece(
    piece_id: str,
    *,
    mutopia_root: str | Path,
    main_file: str,
    includes: Sequence[str] = (),
    work_dir: str | Path,
    legacy_encoding: str | None = "cp1252",
    force: bool = False,
) -> NormalizedPiece:
    """Copy one piece into ``<work_dir>/pieces/<piece_id>/source`` and run convert-ly.

    Parameters
    ----------
    piece_id : str
        The piece's id (names its work folder).
    mutopia_root : path
        Root of the Mutopia checkout (the folder holding ``ftp/``).
    main_file : str
        Main ``.ly`` file, relative to ``mutopia_root`` (posix).
    includes : sequence of str
        Files the main file includes, relative to ``mutopia_root``.
    work_dir : path
        The build's work directory.
    legacy_encoding : str or None
        See :func:`decode_source`.
    force : bool
        Redo the stage even if a matching result exists.

    Returns
    -------
    NormalizedPiece
        Also written as ``normalize.json`` beside the ``source`` folder.

    Raises
    ------
    MissingIncludeError, SourceEncodingError, ConvertLyError
    """
    started = time.perf_counter()
    root = Path(mutopia_root)
    piece_dir = Path(work_dir) / "pieces" / piece_id
    record_path = piece_dir / "normalize.json"
    if not (root / main_file).is_file():
        raise MissingIncludeError(f"main file {main_file} does not exist under {root}")
    files = _piece_files(root, main_file, includes)
    key = stable_key(
        {
            "stage": "normalize",
            "stage_version": _STAGE_VERSION,
            "files": {name: sha256_file(root / name) for name in files},
            "main_file": main_file,
            "legacy_encoding": legacy_encoding,
            "lilypond": lilypond_version(),
        }
    )
    if not force and record_path.exists():
        previous = NormalizedPiece.from_dict(read_json(record_path))
        if previous.cache_key == key and previous.main_path.exists():
            return previous

    source_dir = piece_dir / "source"
    if source_dir.exists():
        shutil.rmtree(source_dir)
    warnings: list[str] = []
    main_text = ""
    versions: dict[str, str] = {}
    for name in files:
        text, warning = decode_source(
            (root / name).read_bytes(), name=name, legacy_encoding=legacy_encoding
        )
        if warning:
            warnings.append(warning)
        target = source_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        versions[name] = read_version(text)
        if name == main_file:
            main_text = text
    from_version = read_version(main_text)
    to_convert = [name for name in files if name.endswith((".ly", ".ily", ".lyi"))]
    converted = _convert(source_dir, to_convert, versions, from_version, warnings)
    result = NormalizedPiece(
        piece_id=piece_id,
        source_dir=str(source_dir.resolve()),
        main_file=main_file,
        converted=tuple(converted),
        from_version=from_version,
        warnings=tuple(warnings),
        seconds=time.perf_counter() - started,
        cache_key=key,
    )
    atomic_write_json(record_path, result.to_dict())
    return result


def _convert(
    source_dir: Path,
    names: list[str],
    versions: dict[str, str],
    main_version: str,
    warnings: list[str],
) -> list[str]:
    r"""Run convert-ly in place: files with a \version as they are, the rest from the main's."""
    with_version = [n for n in names if versions[n]]
    without_version = [n for n in names if not versions[n]]
    groups: list[tuple[list[str], list[str]]] = [(with_version, [])]
    if without_version and main_version:
        groups.append((without_version, [f"--from={main_version}"]))
    converted: list[str] = []
    for group, extra in groups:
        if not group:
            continue
        command = [str(convert_ly_executable()), "--edit", *extra, *group]
        run = run_tool(command, timeout_sec=_CONVERT_TIMEOUT_SEC, cwd=source_dir)
        log = run.stderr.strip()
        if run.timed_out:
            raise ConvertLyError(f"convert-ly ran past {_CONVERT_TIMEOUT_SEC:.0f} s", detail=log)
        if run.returncode != 0 and "Traceback" in log:
            raise ConvertLyError("convert-ly crashed", detail=log[-4000:])
        for line in log.splitlines():
            lowered = line.lower()
            if "not smart enough" in lowered or "error" in lowered:
                warnings.append(f"convert-ly: {line.strip()}")
        if run.returncode != 0:
            warnings.append(f"convert-ly exited with status {run.returncode}")
        for name in group:
            backup = source_dir / (name + "~")
            if backup.exists():
                backup.unlink()
        converted.extend(group)
    return converted
