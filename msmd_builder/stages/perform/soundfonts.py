"""The soundfont list: which piano presets performances are synthesized with.

``soundfonts.txt`` at the top of the repository is a small, version-controlled
index in the spirit of mirdata's: one piano preset per line with the file name,
the Debian package that installs it, the SHA-256 of the file as installed, the
preset's bank and program, and its role (``train`` soundfonts render train and
validation pieces, the ``test`` soundfont is held out for test pieces, as in
MSMD).  This module reads that list, finds the files on disk and checks them::

    specs = load_soundfonts()                 # the repository's soundfonts.txt
    path = locate(specs[0])                   # Path, or ToolNotFoundError with the apt-get hint
    print(format_check_report(check_soundfonts(specs)))

File format (``|``-separated, ``#`` comments)::

    name | file | package | sha256 | bank:program | role | preset name

Files are looked up by name, first in the directories of the environment
variable ``MSMD_SOUNDFONT_PATH`` (``os.pathsep``-separated), then in
``/usr/share/sounds/sf2``, ``/usr/share/sounds/sf3`` and ``/usr/share/soundfonts``.

:func:`read_presets` reads a SoundFont's preset, instrument and sample headers
(the ``pdta`` chunk, without loading any sample data), which lets the check
confirm that a preset exists under the expected name and lets tests confirm that
the chosen presets play disjoint sample sets.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from msmd_builder.core.cache import sha256_file
from msmd_builder.core.errors import ConfigError, ToolNotFoundError
from msmd_builder.core.resources import shipped_path

__all__ = [
    "SOUNDFONT_PATH_ENV",
    "STANDARD_SOUNDFONT_DIRS",
    "SoundfontRole",
    "SoundfontSpec",
    "PresetInfo",
    "CheckResult",
    "default_soundfonts_file",
    "parse_soundfonts",
    "load_soundfonts",
    "soundfonts_with_role",
    "find_soundfont",
    "soundfont_search_dirs",
    "locate",
    "read_presets",
    "check_soundfonts",
    "format_check_report",
]

#: Environment variable with extra soundfont directories, searched first.
SOUNDFONT_PATH_ENV = "MSMD_SOUNDFONT_PATH"

#: Where Debian and most Linux distributions install soundfonts.
STANDARD_SOUNDFONT_DIRS: tuple[str, ...] = (
    "/usr/share/sounds/sf2",
    "/usr/share/sounds/sf3",
    "/usr/share/soundfonts",
)

SoundfontRole = Literal["train", "test"]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_N_FIELDS = 7


@dataclass(frozen=True)
class SoundfontSpec:
    """One line of ``soundfonts.txt``: a piano preset in a soundfont file.

    Attributes
    ----------
    name : str
        Unique id (``[a-z0-9-]``), used in performance ids and plans.
    file_name : str
        File name of the soundfont (no directory), e.g. ``FluidR3_GM.sf2``.
    package : str
        Debian package that installs the file.
    sha256 : str
        Expected hex SHA-256 of the file.
    bank : int
        MIDI bank of the preset (0..16383).
    program : int
        MIDI program of the preset (0..127).
    role : {'train', 'test'}
        ``train``: renders train and validation pieces; ``test``: held out.
    preset_name : str
        The preset's name as stored in the file (checked by :func:`check_soundfonts`).
    """

    name: str
    file_name: str
    package: str
    sha256: str
    bank: int
    program: int
    role: SoundfontRole
    preset_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a JSON-serialisable dict."""
        return {
            "name": self.name,
            "file_name": self.file_name,
            "package": self.package,
            "sha256": self.sha256,
            "bank": self.bank,
            "program": self.program,
            "role": self.role,
            "preset_name": self.preset_name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SoundfontSpec:
        """Build a spec from :meth:`to_dict` output."""
        return cls(
            name=str(data["name"]),
            file_name=str(data["file_name"]),
            package=str(data["package"]),
            sha256=str(data["sha256"]),
            bank=int(data["bank"]),
            program=int(data["program"]),
            role=data["role"],
            preset_name=str(data.get("preset_name", "")),
        )


@dataclass(frozen=True)
class PresetInfo:
    """A preset of a SoundFont file, read from its headers.

    Attributes
    ----------
    bank, program : int
        MIDI bank and program number.
    name : str
        Preset name stored in the file.
    instrument_names : tuple of str
        Instruments the preset's zones refer to.
    sample_names : tuple of str
        Sorted names of all samples those instruments play.
    """

    bank: int
    program: int
    name: str
    instrument_names: tuple[str, ...]
    sample_names: tuple[str, ...]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of checking one soundfont spec against the files on disk.

    Attributes
    ----------
    spec : SoundfontSpec
        The spec checked.
    path : Path or None
        Where the file was found; None if missing.
    present : bool
        The file exists.
    sha256 : str or None
        Actual SHA-256 (None if missing or not computed).
    checksum_ok : bool
        The actual SHA-256 equals the spec's.
    preset_found : bool
        The file has a preset at the spec's bank and program.
    preset_name : str or None
        Name of that preset in the file.
    message : str
        Human-readable summary (the install hint when missing).
    """

    spec: SoundfontSpec
    path: Path | None
    present: bool
    sha256: str | None
    checksum_ok: bool
    preset_found: bool
    preset_name: str | None
    message: str

    @property
    def ok(self) -> bool:
        """True when the file is present, its checksum matches and the preset exists."""
        return self.present and self.checksum_ok and self.preset_found


def default_soundfonts_file() -> Path:
    """Return the ``soundfonts.txt`` shipped with msmd-builder (see :mod:`msmd_builder.core.resources`).

    Raises
    ------
    ToolNotFoundError
        If the installation lacks it.
    """  # noqa: E501
    return shipped_path("soundfonts.txt")


def _parse_line(line: str, where: str) -> SoundfontSpec:
    fields = [f.strip() for f in line.split("|")]
    if len(fields) != _N_FIELDS:
        raise ConfigError(f"{where}: expected {_N_FIELDS} '|'-separated fields, got {len(fields)}")
    name, file_name, package, sha256, preset, role, preset_name = fields
    if not _NAME_RE.match(name):
        raise ConfigError(f"{where}: name {name!r} must match [a-z0-9][a-z0-9-]*")
    if not file_name or "/" in file_name or "\\" in file_name:
        raise ConfigError(f"{where}: file {file_name!r} must be a bare file name")
    if not package:
        raise ConfigError(f"{where}: package is empty")
    sha256 = sha256.lower()
    if not _SHA_RE.match(sha256):
        raise ConfigError(f"{where}: sha256 {sha256!r} is not 64 hex digits")
    match = re.fullmatch(r"(\d+):(\d+)", preset)
    if not match:
        raise ConfigError(f"{where}: preset {preset!r} must be bank:program, e.g. 0:0")
    bank, program = int(match.group(1)), int(match.group(2))
    if not 0 <= bank <= 16383 or not 0 <= program <= 127:
        raise ConfigError(
            f"{where}: preset {preset!r} out of range (bank 0..16383, program 0..127)"
        )
    if role not in ("train", "test"):
        raise ConfigError(f"{where}: role {role!r} must be 'train' or 'test'")
    return SoundfontSpec(name, file_name, package, sha256, bank, program, role, preset_name)  # type: ignore[arg-type]


def parse_soundfonts(text: str, *, source: str = "<string>") -> list[SoundfontSpec]:
    """Parse the text of a soundfont list.

    Parameters
    ----------
    text : str
        Content in the ``soundfonts.txt`` format (see the module docstring).
    source : str, optional
        Name used in error messages.

    Returns
    -------
    list of SoundfontSpec
        In file order.

    Raises
    ------
    ConfigError
        On a malformed line, a duplicate name or a duplicate (file, bank, program).
    """
    specs: list[SoundfontSpec] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        specs.append(_parse_line(line, f"{source}:{lineno}"))
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{source}: duplicate soundfont names {dup}")
    presets = [(s.file_name, s.bank, s.program) for s in specs]
    dup_presets = sorted({p for p in presets if presets.count(p) > 1})
    if dup_presets:
        raise ConfigError(f"{source}: the same preset is listed twice: {dup_presets}")
    return specs


def load_soundfonts(path: str | os.PathLike[str] | None = None) -> list[SoundfontSpec]:
    """Read a soundfont list file.

    Parameters
    ----------
    path : path-like, optional
        The list; default :func:`default_soundfonts_file`.

    Returns
    -------
    list of SoundfontSpec
        In file order (the first ``train`` entry is the reference soundfont).
    """
    file = Path(path) if path is not None else default_soundfonts_file()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read soundfont list {file}: {exc}") from exc
    return parse_soundfonts(text, source=str(file))


def soundfonts_with_role(
    specs: Iterable[SoundfontSpec], role: SoundfontRole
) -> list[SoundfontSpec]:
    """Return the specs with ``role``, in list order."""
    return [s for s in specs if s.role == role]


def find_soundfont(specs: Iterable[SoundfontSpec], name: str) -> SoundfontSpec:
    """Return the spec called ``name``.

    Raises
    ------
    ConfigError
        If no spec has that name.
    """
    specs = list(specs)
    for spec in specs:
        if spec.name == name:
            return spec
    raise ConfigError(f"unknown soundfont {name!r}; known: {[s.name for s in specs]}")


def soundfont_search_dirs(env: str | None = None) -> list[Path]:
    """Return the directories searched for soundfont files, in order.

    Parameters
    ----------
    env : str, optional
        Value to use instead of ``$MSMD_SOUNDFONT_PATH``.

    Returns
    -------
    list of Path
        The entries of ``MSMD_SOUNDFONT_PATH`` followed by
        :data:`STANDARD_SOUNDFONT_DIRS`.
    """
    value = os.environ.get(SOUNDFONT_PATH_ENV, "") if env is None else env
    extra = [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
    return extra + [Path(d) for d in STANDARD_SOUNDFONT_DIRS]


def _install_hint(spec: SoundfontSpec) -> str:
    return (
        f"install it with `apt-get install {spec.package}` (as root), or put {spec.file_name} "
        f"in a directory listed in ${SOUNDFONT_PATH_ENV}"
    )


def locate(
    spec: SoundfontSpec, *, search_dirs: Sequence[str | os.PathLike[str]] | None = None
) -> Path:
    """Find the file of a soundfont spec.

    Parameters
    ----------
    spec : SoundfontSpec
        The soundfont to find.
    search_dirs : sequence of path-like, optional
        Directories to search, in order; default :func:`soundfont_search_dirs`.

    Returns
    -------
    Path
        The first existing ``<dir>/<file_name>`` (symbolic links are kept, not
        resolved).

    Raises
    ------
    ToolNotFoundError
        If no directory holds the file; the message names the Debian package
        (``apt-get install <package>``).
    """
    dirs = [Path(d) for d in search_dirs] if search_dirs is not None else soundfont_search_dirs()
    for directory in dirs:
        candidate = directory / spec.file_name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in dirs)
    raise ToolNotFoundError(
        f"soundfont {spec.name!r}: {spec.file_name} not found (searched {searched}); "
        + _install_hint(spec)
    )


# --- SoundFont 2/3 header reading -------------------------------------------------

_GEN_INSTRUMENT = 41
_GEN_SAMPLE_ID = 53


def _read_pdta(path: Path) -> bytes:
    """Return the body of the ``LIST pdta`` chunk of a SoundFont file."""
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"sfbk":
            raise ConfigError(f"{path} is not a SoundFont (no RIFF sfbk header)")
        file_size = os.fstat(handle.fileno()).st_size
        offset = 12
        while offset + 12 <= file_size:
            handle.seek(offset)
            chunk = handle.read(12)
            chunk_id, size, list_type = chunk[:4], struct.unpack("<I", chunk[4:8])[0], chunk[8:12]
            if chunk_id == b"LIST" and list_type == b"pdta":
                handle.seek(offset + 12)
                return handle.read(size - 4)
            # RIFF pads odd-sized chunks to even length, but some sf3 writers do not
            # (FluidR3Mono_GM.sf3): accept whichever next offset starts a LIST chunk.
            padded = offset + 8 + size + (size & 1)
            handle.seek(padded)
            if size & 1 and handle.read(4) != b"LIST":
                padded = offset + 8 + size
            offset = padded
    raise ConfigError(f"{path}: no pdta chunk found")


def _records(data: bytes, fmt: str) -> list[tuple[Any, ...]]:
    size = struct.calcsize(fmt)
    return [struct.unpack_from(fmt, data, i) for i in range(0, len(data) - size + 1, size)]


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def read_presets(path: str | os.PathLike[str]) -> dict[tuple[int, int], PresetInfo]:
    """Read the presets of a SoundFont 2 or 3 file from its headers.

    Only the ``pdta`` chunk (preset, instrument and sample headers) is read; the
    sample data is skipped, so this takes milliseconds even for large files.

    Parameters
    ----------
    path : path-like
        A ``.sf2`` or ``.sf3`` file.

    Returns
    -------
    dict
        ``(bank, program) -> PresetInfo``.

    Raises
    ------
    ConfigError
        If the file is not a readable SoundFont.
    """
    file = Path(path)
    pdta = _read_pdta(file)
    subchunks: dict[bytes, bytes] = {}
    pos = 0
    while pos + 8 <= len(pdta):
        cid, size = pdta[pos : pos + 4], struct.unpack_from("<I", pdta, pos + 4)[0]
        subchunks[cid] = pdta[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    try:
        phdr = _records(subchunks[b"phdr"], "<20sHHHIII")
        pbag = _records(subchunks[b"pbag"], "<HH")
        pgen = _records(subchunks[b"pgen"], "<HH")
        inst = _records(subchunks[b"inst"], "<20sH")
        ibag = _records(subchunks[b"ibag"], "<HH")
        igen = _records(subchunks[b"igen"], "<HH")
        shdr = _records(subchunks[b"shdr"], "<20sIIIIIBbHH")
    except KeyError as exc:
        raise ConfigError(f"{file}: pdta chunk lacks {exc.args[0]!r}") from exc

    presets: dict[tuple[int, int], PresetInfo] = {}
    try:
        for i in range(len(phdr) - 1):  # the last record is the terminal 'EOP'
            name, program, bank, bag_start = phdr[i][0], phdr[i][1], phdr[i][2], phdr[i][3]
            bag_stop = phdr[i + 1][3]
            instruments: list[int] = []
            for b in range(bag_start, bag_stop):
                for g in range(pbag[b][0], pbag[b + 1][0]):
                    if pgen[g][0] == _GEN_INSTRUMENT and pgen[g][1] not in instruments:
                        instruments.append(pgen[g][1])
            samples: set[str] = set()
            for ii in instruments:
                for b in range(inst[ii][1], inst[ii + 1][1]):
                    for g in range(ibag[b][0], ibag[b + 1][0]):
                        if igen[g][0] == _GEN_SAMPLE_ID:
                            samples.add(_name(shdr[igen[g][1]][0]))
            presets[(bank, program)] = PresetInfo(
                bank=bank,
                program=program,
                name=_name(name),
                instrument_names=tuple(_name(inst[ii][0]) for ii in instruments),
                sample_names=tuple(sorted(samples)),
            )
    except IndexError as exc:
        raise ConfigError(f"{file}: inconsistent SoundFont headers") from exc
    return presets


def check_soundfonts(
    specs: Iterable[SoundfontSpec],
    *,
    verify_checksum: bool = True,
    search_dirs: Sequence[str | os.PathLike[str]] | None = None,
) -> list[CheckResult]:
    """Check that each soundfont is installed, unchanged, and has its preset.

    Parameters
    ----------
    specs : iterable of SoundfontSpec
        The soundfonts to check.
    verify_checksum : bool, optional
        Hash each file (once per distinct path) and compare with the spec.
    search_dirs : sequence of path-like, optional
        Directories to search (default :func:`soundfont_search_dirs`).

    Returns
    -------
    list of CheckResult
        One per spec, in order.  Nothing is raised for a missing file.
    """
    hashes: dict[Path, str] = {}
    presets_by_path: dict[Path, dict[tuple[int, int], PresetInfo]] = {}
    results: list[CheckResult] = []
    for spec in specs:
        try:
            path = locate(spec, search_dirs=search_dirs)
        except ToolNotFoundError as exc:
            results.append(CheckResult(spec, None, False, None, False, False, None, str(exc)))
            continue
        digest: str | None = None
        if verify_checksum:
            if path not in hashes:
                hashes[path] = sha256_file(path)
            digest = hashes[path]
        checksum_ok = digest == spec.sha256 if verify_checksum else True
        try:
            if path not in presets_by_path:
                presets_by_path[path] = read_presets(path)
            info = presets_by_path[path].get((spec.bank, spec.program))
        except ConfigError as exc:
            results.append(
                CheckResult(spec, path, True, digest, checksum_ok, False, None, str(exc))
            )
            continue
        problems = []
        if not checksum_ok:
            problems.append(f"sha256 {digest} differs from the expected {spec.sha256}")
        if info is None:
            problems.append(f"no preset at bank {spec.bank} program {spec.program}")
        elif spec.preset_name and info.name != spec.preset_name:
            problems.append(f"preset is named {info.name!r}, expected {spec.preset_name!r}")
        preset_ok = info is not None and (not spec.preset_name or info.name == spec.preset_name)
        message = "; ".join(problems) if problems else "ok"
        results.append(
            CheckResult(
                spec=spec,
                path=path,
                present=True,
                sha256=digest,
                checksum_ok=checksum_ok,
                preset_found=preset_ok,
                preset_name=info.name if info is not None else None,
                message=message,
            )
        )
    return results


def format_check_report(results: Sequence[CheckResult]) -> str:
    """Format :func:`check_soundfonts` results as a plain-text table.

    Parameters
    ----------
    results : sequence of CheckResult
        Check outcomes.

    Returns
    -------
    str
        One row per soundfont (status, name, role, preset, path), then the
        problems and install hints, then a summary line.
    """
    rows = [("status", "name", "role", "preset", "file")]
    for r in results:
        status = "OK" if r.ok else ("MISSING" if not r.present else "BAD")
        preset = f"{r.spec.bank}:{r.spec.program} {r.preset_name or r.spec.preset_name}".strip()
        rows.append((status, r.spec.name, r.spec.role, preset, str(r.path or r.spec.file_name)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    problems = [f"- {r.spec.name}: {r.message}" for r in results if not r.ok]
    if problems:
        lines.append("")
        lines.extend(problems)
    n_ok = sum(r.ok for r in results)
    lines.append("")
    lines.append(f"{n_ok} of {len(results)} soundfonts ok")
    return "\n".join(lines)
