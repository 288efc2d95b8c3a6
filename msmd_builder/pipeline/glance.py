"""A rebuild with nothing changed, at a glance: the stamp of a complete dataset build.

Every stage checks its own cache, so a rerun is always correct; but checking
hundreds of pieces' caches, opening every built piece for every split and
writing the report again takes seconds.  After a complete build the dataset
command stores a stamp: a hash of what the build was asked (its options),
the code and tools that ran it, and the size and modification time of every
file it read or wrote (the corpus sources of its pieces, the index, every
file under the pieces' folders and under the output folder).  A rerun whose
stamp is the same has nothing to do, as for ``make``: a file changed by
anything, even to the same content, changes its time and the stamp, and the
full check runs.  Tool checks (LilyPond, FluidSynth, the soundfonts' hashes)
run before the glance, so a changed soundfont still stops the run.

A build is stamped only when no piece failed for a reason a rerun may not
meet again (a time or memory limit, a lost worker, an internal error).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from msmd_builder.core.cache import atomic_write_json, read_json
from msmd_builder.core.workdir import WorkDir
from msmd_builder.stages.corpus.index import PieceEntry

__all__ = ["STAMP_FILE", "TRANSIENT_CLASSES", "build_stamp", "is_unchanged", "store_stamp"]

#: The stamp, in the output folder.
STAMP_FILE = ".msmd-build-stamp.json"
STAMP_FORMAT = "msmd-builder/build-stamp"
STAMP_VERSION = 1
#: Failures a rerun may not meet again: a build with one of these is not stamped.
TRANSIENT_CLASSES = frozenset({"timeout", "memory", "worker-lost", "internal"})


def _tree(root: Path, skip: Iterable[str] = ()) -> Iterable[str]:
    """Yield ``relative path, size, mtime_ns`` of every file under ``root``, sorted."""
    skipped = set(skip)
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in sorted(files):
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root)
            if relative in skipped:
                continue
            info = os.stat(path)
            yield f"{relative}\0{info.st_size}\0{info.st_mtime_ns}"


def _stat(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return f"{path}\0missing"
    return f"{path}\0{info.st_size}\0{info.st_mtime_ns}"


def _code_digest() -> str:
    """Hash of the code that made the outputs: the package, the hooks, the soundfont list.

    The hooks and ``soundfonts.txt`` sit beside the package in a checkout and
    inside it in an installed wheel, so they are found where the build finds
    them (:func:`~msmd_builder.lilypond.tools.patches_dir`,
    :func:`~msmd_builder.stages.perform.soundfonts.default_soundfonts_file`).
    """
    import msmd_builder
    from msmd_builder.lilypond.tools import patches_dir
    from msmd_builder.stages.perform.soundfonts import default_soundfonts_file

    digest = hashlib.sha256()
    package = Path(msmd_builder.__file__).resolve().parent
    for folder in (package, patches_dir()):
        for line in _tree(folder):
            name = line.split("\0", 1)[0]
            digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    digest.update(default_soundfonts_file().read_bytes())
    return digest.hexdigest()


def _tool_versions() -> dict[str, str]:
    """Return the versions of the tools and libraries whose output the build keeps."""
    from msmd_builder.lilypond.tools import lilypond_version
    from msmd_builder.stages.perform.fluidsynth import fluidsynth_version

    versions = {"lilypond-binary": lilypond_version(), "libfluidsynth": fluidsynth_version()}
    for name in ("lilypond", "pyfluidsynth", "numpy", "scipy", "h5py", "librosa", "pillow"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = ""
    return versions


def build_stamp(
    request: Mapping[str, Any],
    *,
    work_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    corpus_root: str | os.PathLike[str],
    entries: Sequence[PieceEntry],
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> str:
    """Return the hex stamp of a dataset build as things stand now.

    Parameters
    ----------
    request : mapping
        The build's options (JSON-friendly).
    work_dir, out_dir : path-like
        The work directory and the output folder.
    corpus_root : path-like
        The Mutopia root (the entries' paths are relative to it).
    entries : sequence of PieceEntry
        The pieces the build covers.
    inputs : sequence of path-like
        Other files or folders the build reads (imported split lists,
        recordings).
    """
    work = WorkDir(Path(work_dir))
    digest = hashlib.sha256()
    head = {
        "format": [STAMP_FORMAT, STAMP_VERSION],
        "request": dict(request),
        "code": _code_digest(),
        "tools": _tool_versions(),
        "pieces": [e.piece_id for e in entries],
    }
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    root = Path(corpus_root)
    lines: list[str] = [_stat(work.index), _stat(work.corpus_record)]
    for entry in entries:
        lines += [_stat(root / name) for name in (entry.main_file, *entry.includes)]
    for extra in inputs:
        path = Path(extra)
        lines += [f"{path}\0{line}" for line in _tree(path)] if path.is_dir() else [_stat(path)]
    for label, tree in (("work", work.pieces), ("out", Path(out_dir))):
        if tree.is_dir():
            lines += [f"{label}\0{line}" for line in _tree(tree, skip=(STAMP_FILE,))]
    digest.update("\n".join(lines).encode())
    return digest.hexdigest()


def is_unchanged(out_dir: str | os.PathLike[str], stamp: str) -> bool:
    """Return True when the output folder holds this stamp (nothing has changed)."""
    path = Path(out_dir) / STAMP_FILE
    try:
        document = read_json(path)
    except (OSError, ValueError):
        return False
    return (
        document.get("format_name") == STAMP_FORMAT
        and document.get("format_version") == STAMP_VERSION
        and document.get("stamp") == stamp
    )


def store_stamp(out_dir: str | os.PathLike[str], stamp: str) -> None:
    """Write the stamp of a complete build (after everything else it wrote)."""
    atomic_write_json(
        Path(out_dir) / STAMP_FILE,
        {"format_name": STAMP_FORMAT, "format_version": STAMP_VERSION, "stamp": stamp},
    )


def remove_stamp(out_dir: str | os.PathLike[str]) -> None:
    """Forget the stamp (a build is starting, or ended with a failure worth retrying)."""
    (Path(out_dir) / STAMP_FILE).unlink(missing_ok=True)
