"""What a run wrote, told by the files themselves rather than by how long it took."""

from __future__ import annotations

from pathlib import Path


def file_writes(folder: Path) -> dict[str, tuple[int, int]]:
    """Return every file under ``folder`` -> (modification time in ns, inode).

    Outputs are written to a temporary file and renamed into place, so a
    rewritten file has a new inode as well as a new time; a cached rerun leaves
    both as they were.
    """
    return {
        path.relative_to(folder).as_posix(): (path.stat().st_mtime_ns, path.stat().st_ino)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
