"""Normalization stage: copying, decoding and convert-ly, on files written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmd_builder.core.errors import MissingIncludeError, SourceEncodingError
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
