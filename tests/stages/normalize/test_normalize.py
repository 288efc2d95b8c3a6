"""Normalization stage: copying, decoding and convert-ly, on files written here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from msmd_builder.core.errors import MissingIncludeError, SourceEncodingError, UnsafeIncludeError
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.normalize import NormalizeSettings, decode_source, read_version, run
from tests.helpers.build import entry_of


def normalize(root: Path, main: str, work: Path, includes: list[str]):
    entry = entry_of(root, main, tuple(includes))
    return run(entry, NormalizeSettings(str(root)), PieceDir.of(work, entry.piece_id))


def test_read_version():
    assert read_version('% x\n\\version "2.18.2"\n{ c }') == "2.18.2"
    assert read_version('\\version"2.4"') == "2.4"
    assert read_version("{ c }") == ""


def test_decode_source_utf8_bom_and_legacy():
    assert decode_source("\ufeffé".encode(), name="a.ly") == ("é", "")
    text, warning = decode_source("Dvořák".encode(), name="a.ly")
    assert (text, warning) == ("Dvořák", "")
    text, warning = decode_source("Café".encode("cp1252"), name="a.ly")
    assert text == "Café" and "transcoded from cp1252" in warning
    with pytest.raises(SourceEncodingError, match="not valid UTF-8"):
        decode_source("Café".encode("cp1252"), name="a.ly", legacy_encoding=None)
    with pytest.raises(SourceEncodingError, match="neither UTF-8 nor cp1252"):
        decode_source(b"\x81\x8d", name="a.ly")
    with pytest.raises(SourceEncodingError, match="NUL"):
        decode_source(b"abc\x00", name="a.ly")


def test_copies_includes_of_the_opus_folder_and_converts(make_piece, tmp_path):
    root, main = make_piece(
        "inc",
        '\\version "2.10.0"\n\\include "../shared/defs.ly"\n\\score { \\music }',
    )
    shared = root / "ftp/TestC/Op1/shared/defs.ly"
    shared.parent.mkdir(parents=True)
    shared.write_text("music = \\relative c' { \\times 2/3 { c8 d e } }\n", encoding="utf-8")
    normalized = normalize(root, main, tmp_path / "work", [])
    copied = Path(normalized.source_dir) / "ftp/TestC/Op1/shared/defs.ly"
    # The include had no \version: it was upgraded from the main file's 2.10.0.
    assert "\\tuplet 3/2" in copied.read_text(encoding="utf-8")
    assert not list(Path(normalized.source_dir).rglob("*~"))  # no convert-ly backups
    assert shared.read_text(encoding="utf-8").count("\\times") == 1  # source untouched
    again = normalize(root, main, tmp_path / "work", [])
    assert again == normalized  # cached


def test_missing_include_listed_by_the_index(make_piece, tmp_path):
    root, main = make_piece("miss", '\\include "gone.ily" { c1 }')
    with pytest.raises(MissingIncludeError, match="gone.ily"):
        normalize(root, main, tmp_path / "work", ["ftp/TestC/Op1/miss/gone.ily"])


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 20 10\nnewpath 0 0 moveto 20 10 lineto stroke\n"


def test_references_inside_the_opus_folder_are_copied(make_piece, tmp_path):
    root, main = make_piece(
        "refs",
        '\\version "2.18.2"\n\\include "english.ly"\n\\include "../common/Defs.ily"\n'
        '\\markup { \\epsfile #X #10 #"img/logo.eps" }\n{ \\music }\n',
        {"companion-midi.ly": "{ c'1 }\n", "notes.txt": "not copied"},
    )
    (root / "ftp/TestC/Op1/refs/img").mkdir()
    (root / "ftp/TestC/Op1/refs/img/logo.eps").write_bytes(EPS)
    common = root / "ftp/TestC/Op1/common"
    common.mkdir()
    (common / "defs.ily").write_text("music = { c'1 }\n", encoding="utf-8")
    (common / "linked.ily").symlink_to(common / "defs.ily")  # a link inside the tree is fine
    (root / "ftp/TestC/Op1/refs/refs.ly").write_text(
        (root / main).read_text() + '\\include "../common/linked.ily"\n', encoding="utf-8"
    )
    normalized = normalize(root, main, tmp_path / "work", [])
    assert normalized.files == (
        "ftp/TestC/Op1/common/Defs.ily",  # the name the source uses
        "ftp/TestC/Op1/common/linked.ily",
        "ftp/TestC/Op1/refs/companion-midi.ly",
        "ftp/TestC/Op1/refs/refs.ly",
    )
    assert normalized.assets == ("ftp/TestC/Op1/refs/img/logo.eps",)
    source = Path(normalized.source_dir)
    assert (source / "ftp/TestC/Op1/refs/img/logo.eps").read_bytes() == EPS
    assert any("resolved up to letter case" in w for w in normalized.warnings)


def test_graphics_render_from_the_copied_tree(make_piece, tmp_path):
    from tests.helpers.build import run_stages

    root, main = make_piece(
        "eps",
        '\\version "2.18.2"\n\\markup { \\epsfile #X #10 #"logo.eps" }\n{ c\'1 }\n',
        {"logo.eps": EPS},
    )
    result = run_stages(root, main, tmp_path / "work", "render")
    assert result.status == "ok"


@pytest.mark.parametrize(
    ("include", "message"),
    [
        ("/etc/hostname", "'/etc/hostname' is an absolute path"),
        ("../../Op2/x.ily", "resolves to ftp/TestC/Op2/x.ily, outside the piece's folder tree"),
        ("~/x.ily", "is an absolute path"),
    ],
)
def test_references_out_of_the_opus_folder_are_unsafe(make_piece, tmp_path, include, message):
    root, main = make_piece("out", f'\\include "{include}"\n{{ c\'1 }}\n')
    with pytest.raises(UnsafeIncludeError, match=re.escape(message)):
        normalize(root, main, tmp_path / "work", [])
    assert not (tmp_path / "work/pieces/TestC__Op1__out/source").exists()


def test_a_link_out_of_the_tree_is_unsafe_and_never_read(make_piece, tmp_path):
    secret = tmp_path / "secret.ily"
    secret.write_text("secret = { c'1 }\n", encoding="utf-8")
    root, main = make_piece("link", '\\include "defs.ily"\n{ c\'1 }\n')
    (root / "ftp/TestC/Op1/link/defs.ily").symlink_to(secret)
    with pytest.raises(UnsafeIncludeError, match=r"'defs.ily' is a link to .*secret\.ily"):
        normalize(root, main, tmp_path / "work", [])
    # A link out of the tree that nothing references is left out, with a warning.
    (root / "ftp/TestC/Op1/link/link.ly").write_text("{ c'1 }\n", encoding="utf-8")
    normalized = normalize(root, main, tmp_path / "work", [])
    assert "ftp/TestC/Op1/link/defs.ily" not in normalized.files
    assert any("not copied" in w and "defs.ily" in w for w in normalized.warnings)
