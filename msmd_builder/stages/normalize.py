r"""Stage ``normalize``: copy a piece into the work directory and upgrade its syntax.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from msmd_builder.core.cache import StageCache, output_sizes, sha256_file, sized_outputs
from msmd_builder.core.errors import (
    ConfigError,
    ConvertLyError,
    MissingIncludeError,
    SourceEncodingError,
)
from msmd_builder.core.workdir import PieceDir
from msmd_builder.lilypond.tools import convert_ly_executable, lilypond_version, run_tool
from msmd_builder.stages.corpus.index import PieceEntry

__all__ = [
    "RECORD_FORMAT",
    "NormalizeSettings",
    "NormalizedPiece",
    "preflight",
    "run",
    "read_version",
    "decode_source",
    "LILYPOND_SOURCE_SUFFIXES",
]

#: File endings copied along with a piece (LilyPond and Scheme sources only).
LILYPOND_SOURCE_SUFFIXES = (".ly", ".ily", ".lyi", ".scm", ".ily.ly")

_VERSION_RE = re.compile(r"""\\version\s*"([0-9]+(?:\.[0-9]+){1,2})\"""")
_CONVERT_TIMEOUT_SEC = 120.0
STAGE_VERSION = 1
#: ``format_name`` of ``normalize.json``.
RECORD_FORMAT = "msmd-builder/normalize-record"
#: Layout version of ``normalize.json`` (2: with the copied files' ``output_sizes``).
RECORD_VERSION = 2


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
    files : tuple of str
        Every copied file, relative to ``source_dir``.
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
    files: tuple[str, ...]
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
            "files": list(self.files),
            "converted": list(self.converted),
            "from_version": self.from_version,
            "warnings": list(self.warnings),
            "seconds": self.seconds,
            "cache_key": self.cache_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NormalizedPiece:
        """Inverse of :meth:`to_dict` (a stage record's format fields are ignored)."""
        return cls(
            piece_id=data["piece_id"],
            source_dir=data["source_dir"],
            main_file=data["main_file"],
            files=tuple(data["files"]),
            converted=tuple(data["converted"]),
            from_version=data["from_version"],
            warnings=tuple(data["warnings"]),
            seconds=float(data["seconds"]),
            cache_key=data["cache_key"],
        )

    def report_details(self) -> dict[str, Any]:
        """Return what the build report shows of this stage."""
        return {"normalize_warnings": list(self.warnings)}


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


@dataclass(frozen=True)
class NormalizeSettings:
    """Settings of the normalize stage.

    Attributes
    ----------
    mutopia_root : str
        Root of the Mutopia checkout (the folder holding ``ftp/``); the index's
        paths are relative to it.
    legacy_encoding : str or None
        See :func:`decode_source`.
    """

    mutopia_root: str
    legacy_encoding: str | None = "cp1252"


def preflight(settings: NormalizeSettings) -> None:
    """Fail at once, with the fix, if convert-ly or LilyPond is missing or the corpus is absent."""
    convert_ly_executable()
    lilypond_version()
    if not Path(settings.mutopia_root).is_dir():
        raise ConfigError(f"the corpus root {settings.mutopia_root} is not a folder")


def run(
    entry: PieceEntry, settings: NormalizeSettings, piece_dir: PieceDir, *, force: bool = False
) -> NormalizedPiece:
    """Copy one piece into ``<piece_dir>/source`` and run convert-ly.

    Parameters
    ----------
    entry : PieceEntry
        The piece's corpus-index entry (main file and includes).
    settings : NormalizeSettings
        Where the corpus is, how to decode old files.
    piece_dir : PieceDir
        The piece's work folder.
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
    root = Path(settings.mutopia_root)
    main_file = entry.main_file
    if not (root / main_file).is_file():
        raise MissingIncludeError(f"main file {main_file} does not exist under {root}")
    files = _piece_files(root, main_file, entry.includes)
    cache = StageCache.for_document(
        piece_dir.normalize_record,
        {
            "stage": "normalize",
            "stage_version": STAGE_VERSION,
            "files": {name: sha256_file(root / name) for name in files},
            "main_file": main_file,
            "legacy_encoding": settings.legacy_encoding,
            "lilypond": lilypond_version(),
        },
        format_name=RECORD_FORMAT,
        format_version=RECORD_VERSION,
    )
    source_dir = piece_dir.source
    hit = cache.lookup(
        lambda record: sized_outputs(source_dir, record["output_sizes"]), force=force
    )
    if hit is not None:
        return NormalizedPiece.from_dict(hit)

    if source_dir.exists():
        shutil.rmtree(source_dir)
    warnings: list[str] = []
    main_text = ""
    versions: dict[str, str] = {}
    for name in files:
        text, warning = decode_source(
            (root / name).read_bytes(), name=name, legacy_encoding=settings.legacy_encoding
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
        piece_id=entry.piece_id,
        source_dir=str(source_dir.resolve()),
        main_file=main_file,
        files=tuple(files),
        converted=tuple(converted),
        from_version=from_version,
        warnings=tuple(warnings),
        seconds=time.perf_counter() - started,
        cache_key=cache.key,
    )
    cache.store({**result.to_dict(), "output_sizes": output_sizes(source_dir, files)})
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
