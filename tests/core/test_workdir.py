"""Every path of a work directory comes from one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmd_builder.core.workdir import PieceDir, WorkDir


def test_piece_paths(tmp_path):
    work = WorkDir(tmp_path)
    piece = work.piece("ExampleA__O1__volta-minuet")
    assert piece == PieceDir.of(tmp_path, "ExampleA__O1__volta-minuet")
    assert piece.root == tmp_path / "pieces" / "ExampleA__O1__volta-minuet"
    assert piece.work_dir == tmp_path
    assert piece.render_record == piece.root / "render" / "render.json"
    assert piece.geometry == piece.root / "score" / "geometry.npz"
    assert piece.page_image(1, 2) == piece.root / "score" / "page-1-2.png"
    assert piece.alignment == piece.root / "align" / "alignment.npz"
    assert piece.performance("p") == piece.root / "perform" / "p.npz"
    assert piece.performance_audio("p") == piece.root / "perform" / "p.flac"
    assert piece.relative(piece.geometry) == "pieces/ExampleA__O1__volta-minuet/score/geometry.npz"
    assert work.index == tmp_path / "index.csv"
    assert isinstance(WorkDir("w").root, Path)


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b"])
def test_a_piece_id_cannot_leave_the_work_directory(tmp_path, bad):
    with pytest.raises(ValueError, match="not a piece id"):
        WorkDir(tmp_path).piece(bad)
