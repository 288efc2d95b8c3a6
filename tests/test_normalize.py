"""Normalization stage: copying, decoding and convert-ly, on files written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmd_builder.errors import MissingIncludeError, SourceEncodingError
from msmd_builder.normalize import decode_source, normalize_piece, read_version


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


def test_copies_includes_outside_the_piece_folder_and_converts(make_piece, tmp_path):
    root, main = make_piece(
        "inc",
        '\\version "2.10.0"\n\\include "../../shared/defs.ly"\n\\score { \\music }',
    )
    shared = root / "ftp/TestC/shared/defs.ly"
    shared.parent.mkdir(parents=True)
    shared.write_text("music = \\relative c' { \\times 2/3 { c8 d e } }\n", encoding="utf-8")
    normalized = normalize_piece(
        "TestC__Op1__inc",
        mutopia_root=root,
        main_file=main,
        includes=["ftp/TestC/shared/defs.ly"],
        work_dir=tmp_path / "work",
    )
    copied = Path(normalized.source_dir) / "ftp/TestC/shared/defs.ly"
    # The include had no \version: it was upgraded from the main file's 2.10.0.
    assert "\\tuplet 3/2" in copied.read_text(encoding="utf-8")
    assert not list(Path(normalized.source_dir).rglob("*~"))  # no convert-ly backups
    assert shared.read_text(encoding="utf-8").count("\\times") == 1  # source untouched
    again = normalize_piece(
        "TestC__Op1__inc",
        mutopia_root=root,
        main_file=main,
        includes=["ftp/TestC/shared/defs.ly"],
        work_dir=tmp_path / "work",
    )
    assert again == normalized  # cached


def test_missing_include_listed_by_the_index(make_piece, tmp_path):
    root, main = make_piece("miss", '\\include "gone.ily" { c1 }')
    with pytest.raises(MissingIncludeError, match="gone.ily"):
        normalize_piece(
            "TestC__Op1__miss",
            mutopia_root=root,
            main_file=main,
            includes=["ftp/TestC/Op1/miss/gone.ily"],
            work_dir=tmp_path / "work",
        )
