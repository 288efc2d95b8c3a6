"""The build stamp: what changes it (options, sources, outputs, code) and what does not."""

from __future__ import annotations

import os

from msmd_builder.pipeline.glance import (
    STAMP_FILE,
    build_stamp,
    is_unchanged,
    remove_stamp,
    store_stamp,
)
from tests.helpers.build import entry_of


def test_the_stamp_changes_with_whatever_the_build_read_or_wrote(tmp_path):
    root, work, out = tmp_path / "corpus", tmp_path / "work", tmp_path / "out"
    main_file = "ftp/TestC/Op1/piece.ly"
    (root / main_file).parent.mkdir(parents=True)
    (root / main_file).write_text("{ c'1 }\n")
    (work / "pieces" / "TestC__Op1__piece" / "align").mkdir(parents=True)
    output = work / "pieces" / "TestC__Op1__piece" / "align" / "align.json"
    output.write_text("{}")
    (out / "all").mkdir(parents=True)
    (out / "all" / "manifest.json").write_text("{}")
    split_list = tmp_path / "list.yaml"
    split_list.write_text("train: []\n")
    entries = [entry_of(root, main_file)]

    def stamp(request=None):  # noqa: ANN001
        return build_stamp(
            request or {"seed": 3},
            work_dir=work,
            out_dir=out,
            corpus_root=root,
            entries=entries,
            inputs=[split_list],
        )

    first = stamp()
    assert stamp() == first
    store_stamp(out, first)
    assert (out / STAMP_FILE).is_file() and is_unchanged(out, stamp())  # not hashed itself
    assert stamp({"seed": 4}) != first

    def touched(path):  # noqa: ANN001
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
        try:
            return stamp()
        finally:
            os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))

    # Same content, another time: a source, a piece's output, a shard folder's file, an input.
    for path in (root / main_file, output, out / "all" / "manifest.json", split_list):
        assert touched(path) != first, path
        assert stamp() == first
    (out / "all" / "extra.h5").write_bytes(b"x")
    assert not is_unchanged(out, stamp())
    (out / "all" / "extra.h5").unlink()
    assert is_unchanged(out, stamp())
    remove_stamp(out)
    assert not is_unchanged(out, stamp())


def test_a_missing_or_foreign_stamp_is_never_unchanged(tmp_path):
    assert not is_unchanged(tmp_path, "0" * 64)
    (tmp_path / STAMP_FILE).write_text('{"stamp": "' + "0" * 64 + '"}')
    assert not is_unchanged(tmp_path, "0" * 64)  # no format name: not ours
    (tmp_path / STAMP_FILE).write_text("not json")
    assert not is_unchanged(tmp_path, "0" * 64)


def test_the_stamp_changes_with_the_hooks(tmp_path, monkeypatch):
    import shutil

    from msmd_builder.lilypond.tools import patches_dir

    hooks = tmp_path / "hooks"
    shutil.copytree(patches_dir(), hooks)
    monkeypatch.setenv("MSMD_LILYPOND_PATCHES", str(hooks))
    (tmp_path / "out").mkdir()

    def stamp() -> str:
        return build_stamp(
            {},
            work_dir=tmp_path / "work",
            out_dir=tmp_path / "out",
            corpus_root=tmp_path,
            entries=[],
        )

    first = stamp()
    with open(hooks / "msmd.ily", "a", encoding="utf-8") as handle:
        handle.write("% edited\n")
    assert stamp() != first
