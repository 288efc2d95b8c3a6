"""Shared fixtures: a throw-away Mutopia-like tree and the real snapshot when present."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_ROOT = REPO_ROOT / "examples"
RESOURCES = Path(__file__).resolve().parent / "resources"


def mutopia_root() -> Path | None:
    """The real Mutopia snapshot: $MUTOPIA_ROOT, else ../shared/mutopia beside the repo."""
    env = os.environ.get("MUTOPIA_ROOT")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "mutopia")
    for candidate in candidates:
        if (candidate / "ftp").is_dir():
            return candidate
    return None


def build_through_align(root: Path, piece_id: str, work: Path, **options):
    """Run one piece of the Mutopia-like tree at ``root`` through the align stage.

    ``options`` are those of :func:`msmd_builder.pipeline.settings.build_settings`.
    """
    from msmd_builder.pipeline.run import process_piece
    from msmd_builder.pipeline.settings import build_settings
    from msmd_builder.stages.corpus.index import find_piece
    from msmd_builder.stages.corpus.scan import scan_corpus

    entry = find_piece(scan_corpus(root), piece_id)
    assert entry is not None, piece_id
    return process_piece(entry, build_settings(work, root, until="align", **options))


@pytest.fixture
def real_mutopia() -> Path:
    root = mutopia_root()
    if root is None:
        pytest.skip("no Mutopia snapshot: set MUTOPIA_ROOT or place it at ../shared/mutopia")
    return root


@pytest.fixture
def make_piece(tmp_path: Path):
    """Write a one-file piece into a Mutopia-like tree; return (root, main_file)."""

    def write(name: str, content: str | bytes, extra: dict[str, str | bytes] | None = None):
        root = tmp_path / "mutopia"
        folder = root / "ftp" / "TestC" / "Op1" / name
        folder.mkdir(parents=True, exist_ok=True)
        main = folder / f"{name}.ly"
        for path, data in [(main, content), *((folder / k, v) for k, v in (extra or {}).items())]:
            if isinstance(data, bytes):
                path.write_bytes(data)
            else:
                path.write_text(data, encoding="utf-8")
        return root, f"ftp/TestC/Op1/{name}/{name}.ly"

    return write


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """A wheel of msmd-builder built from a copy of the checkout, as ``pip wheel .`` builds it."""
    from msmd_builder.core.resources import SHIPPED

    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", *SHIPPED):
        copy = shutil.copytree if (REPO_ROOT / name).is_dir() else shutil.copy2
        copy(REPO_ROOT / name, source / name)
    shutil.copytree(
        REPO_ROOT / "msmd_builder",
        source / "msmd_builder",
        ignore=shutil.ignore_patterns("__pycache__", "_shipped"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = (tmp / "dist").glob("msmd_builder-*.whl")
    return built
