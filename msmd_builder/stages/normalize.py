r"""Stage ``normalize``: copy a piece into the work directory and upgrade its syntax.

The Mutopia tree is never touched.  What the piece references
(:mod:`msmd_builder.stages.references`: its includes, recursively, the graphics
it draws, the LilyPond sources of its folder), all inside its own folder tree,
is copied to ``<work>/pieces/<id>/source/`` under the paths relative to the
Mutopia root, so relative ``\include``\ s resolve exactly as in the original
tree; a reference out of the tree ends the piece as ``unsafe-include``.  Each
copied source is re-encoded as UTF-8 and upgraded in place with ``convert-ly``
(an include without its own ``\version`` from the main file's version), then
with the named rules of :mod:`msmd_builder.lilypond.upgrades` for what
convert-ly leaves broken.  convert-ly runs confined like LilyPond
(:mod:`msmd_builder.lilypond.sandbox`).

Nothing else is changed in the music: what current LilyPond needs beyond
syntax lives in ``lilypond_patches/`` and is loaded at render time.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msmd_builder.core.cache import StageCache, output_sizes, sha256_file, sized_outputs, stable_key
from msmd_builder.core.errors import (
    ConfigError,
    ConvertLyError,
    MissingIncludeError,
    SourceEncodingError,
)
from msmd_builder.core.workdir import PieceDir
from msmd_builder.lilypond.sandbox import SandboxSettings, SandboxView
from msmd_builder.lilypond.tools import (
    convert_ly_executable,
    lilypond_install_dir,
    lilypond_version,
    run_tool,
)
from msmd_builder.lilypond.upgrades import RULES_DIGEST, upgrade_source
from msmd_builder.stages.corpus.index import PieceEntry
from msmd_builder.stages.references import LILYPOND_SOURCE_SUFFIXES, piece_files

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

_VERSION_RE = re.compile(r"""\\version\s*"([0-9]+(?:\.[0-9]+){1,2})\"""")
_CONVERT_TIMEOUT_SEC = 120.0
STAGE_VERSION = 2
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
        Every copied source file, relative to ``source_dir``.
    converted : tuple of str
        Files upgraded by convert-ly, relative to ``source_dir``.
    from_version : str
        The main file's original ``\version`` ("" when it had none).
    warnings : tuple of str
        Non-fatal findings (transcoded files, convert-ly notes, names resolved
        up to letter case).
    seconds : float
        Time spent in this stage.
    cache_key : str
        Hash of the inputs' content, the stage version and the tool version.
    assets : tuple of str
        Graphics copied byte for byte (``\epsfile``), relative to ``source_dir``.
    rewrites : dict
        Syntax rule name -> the files it rewrote (relative to ``source_dir``).
    content_key : str
        Hash of the normalized files themselves (names and content): what the
        render stage keys on, so a change of the inputs, of convert-ly or of a
        syntax rule re-renders only the pieces whose upgraded sources changed.
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
    assets: tuple[str, ...] = field(default_factory=tuple)
    rewrites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_key: str = ""

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
            "assets": list(self.assets),
            "rewrites": {rule: list(names) for rule, names in self.rewrites.items()},
            "content_key": self.content_key,
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
            assets=tuple(data.get("assets", ())),
            rewrites={rule: tuple(names) for rule, names in data.get("rewrites", {}).items()},
            content_key=data.get("content_key", ""),
        )

    def report_details(self) -> dict[str, Any]:
        """Return what the build report shows of this stage."""
        details: dict[str, Any] = {"normalize_warnings": list(self.warnings)}
        if self.rewrites:
            details["syntax_rules"] = {rule: list(names) for rule, names in self.rewrites.items()}
        return details


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
    sandbox : SandboxSettings
        How convert-ly is confined (the same settings as LilyPond's).
    """

    mutopia_root: str
    legacy_encoding: str | None = "cp1252"
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)


def preflight(settings: NormalizeSettings) -> None:
    """Fail at once, with the fix, if convert-ly or LilyPond is missing or the corpus is absent.

    Also when the sandbox is asked for (``on``) and bubblewrap does not work here.
    """
    convert_ly_executable()
    lilypond_version()
    if not Path(settings.mutopia_root).is_dir():
        raise ConfigError(f"the corpus root {settings.mutopia_root} is not a folder")
    settings.sandbox.active()


def _lilypond_ly_dir() -> Path:
    """LilyPond's own ``ly/`` folder (files a piece may include by bare name)."""
    return lilypond_install_dir() / "share" / "lilypond" / lilypond_version() / "ly"


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
    MissingIncludeError, UnsafeIncludeError, SourceEncodingError, ConvertLyError
    """
    started = time.perf_counter()
    root = Path(settings.mutopia_root)
    main_file = entry.main_file
    if not (root / main_file).is_file():
        raise MissingIncludeError(f"main file {main_file} does not exist under {root}")
    found = piece_files(root, main_file, lilypond_ly_dir=_lilypond_ly_dir())
    files = sorted(found.sources)
    cache = StageCache.for_document(
        piece_dir.normalize_record,
        {
            "stage": "normalize",
            "stage_version": STAGE_VERSION,
            "files": {name: sha256_file(root / origin) for name, origin in found.sources.items()},
            "assets": {name: sha256_file(root / origin) for name, origin in found.assets.items()},
            "main_file": main_file,
            "legacy_encoding": settings.legacy_encoding,
            "lilypond": lilypond_version(),
            "syntax_rules": RULES_DIGEST,
            "cpu_sec": settings.sandbox.cpu_sec,
            "memory_mb": settings.sandbox.memory_mb,
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
    warnings: list[str] = list(found.notes)
    main_text = ""
    versions: dict[str, str] = {}
    for name in files:
        origin = found.sources[name]
        text, warning = decode_source(
            (root / origin).read_bytes(), name=origin, legacy_encoding=settings.legacy_encoding
        )
        if warning:
            warnings.append(warning)
        target = source_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        versions[name] = read_version(text)
        if name == main_file:
            main_text = text
    for name, origin in found.assets.items():
        target = source_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / origin, target)
    from_version = read_version(main_text)
    to_convert = [name for name in files if name.endswith((".ly", ".ily", ".lyi"))]
    converted = _convert(source_dir, to_convert, versions, from_version, warnings, settings.sandbox)
    rewrites = _upgrade(source_dir, to_convert)
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
        assets=tuple(sorted(found.assets)),
        rewrites=rewrites,
        content_key=stable_key(
            {name: sha256_file(source_dir / name) for name in [*files, *found.assets]}
        ),
    )
    cache.store(
        {**result.to_dict(), "output_sizes": output_sizes(source_dir, [*files, *found.assets])}
    )
    return result


def _upgrade(source_dir: Path, names: list[str]) -> dict[str, tuple[str, ...]]:
    """Apply the syntax rules to every source; return rule -> files it rewrote."""
    rewritten: dict[str, list[str]] = {}
    for name in names:
        path = source_dir / name
        text = path.read_text(encoding="utf-8")
        upgraded, counts = upgrade_source(text)
        if counts:
            path.write_text(upgraded, encoding="utf-8")
            for rule in counts:
                rewritten.setdefault(rule, []).append(name)
    return {rule: tuple(files) for rule, files in sorted(rewritten.items())}


def _convert(
    source_dir: Path,
    names: list[str],
    versions: dict[str, str],
    main_version: str,
    warnings: list[str],
    sandbox: SandboxSettings,
) -> list[str]:
    r"""Run convert-ly in place: files with a \version as they are, the rest from the main's.

    convert-ly runs confined: it sees LilyPond's installation read-only and
    may write only the copied sources.
    """
    view = SandboxView(read_only=(str(lilypond_install_dir()),), writable=(str(source_dir),))
    with_version = [n for n in names if versions[n]]
    without_version = [n for n in names if not versions[n]]
    groups: list[tuple[list[str], list[str]]] = [(with_version, [])]
    if without_version and main_version:
        groups.append((without_version, [f"--from={main_version}"]))
    converted: list[str] = []
    for group, extra in groups:
        if not group:
            continue
        command = [str(convert_ly_executable().resolve()), "--edit", *extra, *group]
        run = run_tool(
            command,
            timeout_sec=_CONVERT_TIMEOUT_SEC,
            cwd=source_dir,
            confinement=sandbox,
            view=view,
        )
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
