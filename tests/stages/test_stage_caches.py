"""Every per-piece stage's cache, on a piece built for real through the perform stage.

For each stage a fresh work folder is built, then each output of the stage is
deleted or truncated in turn (its record too) and the piece is built again.
The damaged output must come back with the same content, the stage must be the
only one that wrote anything, and an untouched rerun must write nothing at all.
What was written is judged by each file's modification time and inode (a stage
writes a new file and renames it into place), never by how long a run took.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from msmd_builder.core.cache import read_json
from msmd_builder.core.errors import ToolNotFoundError
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.perform.fluidsynth import fluidsynth_version
from msmd_builder.stages.perform.plans import PerformanceRecipe, SplitRecipe
from msmd_builder.stages.perform.soundfonts import load_soundfonts, locate
from tests.helpers.build import entry_of, run_stages
from tests.helpers.writes import file_writes

#: Two pages, a volta (played twice) and a chord: every stage has something to write.
SOURCE = r"""\version "2.24.0"
\header { title = "Cached" mutopiainstrument = "Piano" }
\score { \relative c'' { c4 d e f | \repeat volta 2 { g1 } \pageBreak <c, e g>2 b4 a | g1 } }
"""
NAME = "cached"
#: One short performance per role (twice the score's tempo): two files, one test-only.
RECIPE = PerformanceRecipe(
    name="cache-test",
    train=SplitRecipe(tempo_ratios=(2.0,), n_performances=1, include_reference=False),
    valid=SplitRecipe(tempo_ratios=(2.0,), n_performances=1, include_reference=False),
    test=SplitRecipe(
        soundfont_role="test", tempo_ratios=(2.0,), n_performances=1, include_reference=False
    ),
)

Damage = Callable[[Path], None]


def delete(path: Path) -> None:
    path.unlink()


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def built(make_piece, tmp_path):
    """Build the piece through the perform stage; return (its folder, a rebuild function)."""
    try:
        fluidsynth_version()
        for spec in load_soundfonts():
            locate(spec)
    except ToolNotFoundError as exc:
        pytest.skip(f"FluidSynth or a soundfont is missing: {exc}")
    root, main = make_piece(NAME, SOURCE)
    work = tmp_path / "work"

    def build() -> Any:
        return run_stages(root, main, work, "perform", recipe=RECIPE, verify_onsets="none")

    build()
    return PieceDir.of(work, entry_of(root, main).piece_id), build


def writes(piece_dir: PieceDir) -> dict[str, tuple[int, int]]:
    return file_writes(piece_dir.root)


def _reproducible(document: Any) -> Any:
    """A record without what differs from run to run: wall-clock ``seconds``, PDF sizes.

    LilyPond stamps each PDF with its creation time, which changes the PDF's
    compressed size by a few bytes between renders.
    """
    if isinstance(document, dict):
        return {
            k: {n: v for n, v in document[k].items() if not n.endswith(".pdf")}
            if k == "output_sizes"
            else _reproducible(v)
            for k, v in document.items()
            if k != "seconds"
        }
    if isinstance(document, list):
        return [_reproducible(v) for v in document]
    return document


def _pdf_pages(path: Path) -> list[bytes]:
    """The PDF's pages rasterised: LilyPond stamps every PDF with its creation time."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return [
            np.asarray(pdf[i].render(scale=1, grayscale=True).to_pil().convert("L")).tobytes()
            for i in range(len(pdf))
        ]
    finally:
        pdf.close()


def content(path: Path) -> Any:
    """What must be identical after a rebuild: the bytes, but pixels of a PDF, timeless JSON."""
    if path.suffix == ".pdf":
        return _pdf_pages(path)
    if path.suffix == ".json":
        return _reproducible(json.loads(path.read_text(encoding="utf-8")))
    return path.read_bytes()


def contents(piece_dir: PieceDir) -> dict[str, Any]:
    return {name: content(piece_dir.root / name) for name in writes(piece_dir)}


def check_rebuilds(
    piece_dir: PieceDir,
    build: Callable[[], Any],
    damages: list[tuple[str, Damage, Callable[[str], bool]]],
) -> None:
    """Apply each damage in turn, rebuild, and check what was written.

    Parameters
    ----------
    damages : list of (file, damage, owned)
        The file relative to the piece folder, what to do to it, and which
        files the rebuild may rewrite (those of the stage that owns the file).
    """
    expected = contents(piece_dir)
    before = writes(piece_dir)
    build()
    assert writes(piece_dir) == before, "an untouched rerun wrote files"
    for name, damage, owned in damages:
        label = f"{damage.__name__} {name}"
        before = writes(piece_dir)
        damage(piece_dir.root / name)
        damaged = writes(piece_dir)
        build()
        after = writes(piece_dir)
        assert set(after) == set(before), f"{label}: files missing or added"
        rewritten = {f for f in after if after[f] != damaged.get(f)}
        assert name in rewritten, f"{label}: not rebuilt"
        assert {f for f in rewritten if not owned(f)} == set(), f"{label}: other stages re-ran"
        now = contents(piece_dir)
        changed = sorted(f for f in expected if now[f] != expected[f])
        assert changed == [], f"{label}: rebuilt with other content"
        build()
        assert writes(piece_dir) == after, f"{label}: a second rerun wrote files"


def in_folder(folder: str) -> Callable[[str], bool]:
    return lambda name: name.startswith(f"{folder}/")


def test_normalize_rebuilds_its_sources_and_record(built):
    piece_dir, build = built
    source = f"source/ftp/TestC/Op1/{NAME}/{NAME}.ly"

    def owned(name: str) -> bool:
        return name == "normalize.json" or name.startswith("source/")

    check_rebuilds(
        piece_dir,
        build,
        [
            (source, delete, owned),
            (source, truncate, owned),
            ("normalize.json", truncate, owned),
            ("normalize.json", delete, owned),
        ],
    )


def test_render_rebuilds_pdf_midi_hook_tables_and_record(built):
    piece_dir, build = built
    owned = in_folder("render")
    check_rebuilds(
        piece_dir,
        build,
        [
            (f"render/{NAME}.pdf", delete, owned),
            (f"render/{NAME}.midi", delete, owned),
            (f"render/{NAME}.midi", truncate, owned),
            (f"render/{NAME}.msmd-noteheads.tsv", delete, owned),
            (f"render/{NAME}.msmd-systems.tsv", truncate, owned),
            (f"render/{NAME}.msmd-performed.tsv", delete, owned),
            ("render/render.json", truncate, owned),
        ],
    )


def test_score_rebuilds_geometry_page_images_and_record(built):
    """Before the stage cache checked its outputs, a deleted geometry.npz stayed deleted."""
    piece_dir, build = built
    assert [p["path"] for p in read_json(piece_dir.score_record)["pages"]] == [
        "page-0-0.png",
        "page-0-1.png",
    ]
    owned = in_folder("score")
    check_rebuilds(
        piece_dir,
        build,
        [
            ("score/geometry.npz", delete, owned),
            ("score/geometry.npz", truncate, owned),
            ("score/page-0-1.png", delete, owned),
            ("score/page-0-0.png", truncate, owned),
            ("score/score.json", truncate, owned),
        ],
    )


def test_align_rebuilds_alignment_and_record(built):
    piece_dir, build = built
    owned = in_folder("align")
    check_rebuilds(
        piece_dir,
        build,
        [
            ("align/alignment.npz", delete, owned),
            ("align/alignment.npz", truncate, owned),
            ("align/align.json", truncate, owned),
        ],
    )


def test_perform_rebuilds_only_the_damaged_performance(built):
    piece_dir, build = built
    record = read_json(piece_dir.perform_record)
    files = sorted(entry["file"] for entry in record["performances"])
    assert len(files) == 2  # one for train and valid, one held-out for test
    damaged, kept = (f"perform/{name}" for name in files)

    def owned(name: str) -> bool:
        return name in (damaged, "perform/perform.json")

    check_rebuilds(
        piece_dir,
        build,
        [
            (damaged, delete, owned),
            (damaged, truncate, owned),
            # A damaged index is rewritten from the performance files, none synthesized.
            ("perform/perform.json", truncate, lambda name: name == "perform/perform.json"),
        ],
    )
    assert (piece_dir.root / kept).is_file()
