"""Tests of msmd_builder.stages.corpus: the Mutopia scan, keyboard selection and index file."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from msmd_builder.core.errors import ConfigError
from msmd_builder.stages.corpus.index import (
    INDEX_COLUMNS,
    PieceEntry,
    find_piece,
    read_index,
    select_keyboard,
    write_index,
)
from msmd_builder.stages.corpus.instrument import classify_instrument, msmd_instrument_rule
from msmd_builder.stages.corpus.scan import scan_corpus, summarize
from tests.conftest import REPO_ROOT, RESOURCES

REPO = REPO_ROOT
FIXTURE = RESOURCES / "corpus"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def entries() -> dict[str, PieceEntry]:
    return {e.piece_id: e for e in scan_corpus(FIXTURE)}


# --------------------------------------------------------------------------- fixture tree


def test_pieces_found(entries: dict[str, PieceEntry]) -> None:
    assert sorted(entries) == [
        "AlphaA__O1__include-header",
        "AlphaA__O1__main-header",
        "AlphaA__O2__case",
        "AlphaA__O2__missing",
        "AlphaA__O2__nested",
        "BetaB__O3__clavier",
        "BetaB__O3__nospace",
        "BetaB__O3__pianoforte",
        "BetaB__O4__duet",
        "BetaB__O4__violin",
        "DeltaD__Book__book",
        "DeltaD__Coll__score",
        "DeltaD__Coll__score__2",
        "GammaG__Set__first",
        "GammaG__Set__second",
        "GammaG__Suite__one",
        "GammaG__Suite__suite",
        "GammaG__Suite__two",
    ]


def test_scan_is_sorted_and_deterministic() -> None:
    first = scan_corpus(FIXTURE)
    assert [e.piece_id for e in first] == sorted(e.piece_id for e in first)
    assert scan_corpus(FIXTURE) == first


def test_header_in_main_file(entries: dict[str, PieceEntry]) -> None:
    e = entries["AlphaA__O1__main-header"]
    main = FIXTURE / e.main_file
    assert e.main_file == "ftp/AlphaA/O1/main-header/main-header.ly"
    assert (e.composer_dir, e.opus_dir) == ("AlphaA", "O1")
    assert e.title == "Little Prelude"
    assert e.composer == "A. Alpha (1700-1750)"
    assert e.opus == "Op. 1"
    assert e.style == "Baroque"
    assert e.license == "Public Domain"
    # the commented-out "Organ" line is ignored, and so is the commented include
    assert e.instrument == "Harpsichord, Piano"
    assert e.includes == () and e.problems == ()
    assert e.lilypond_version == "2.18.2"
    assert e.encoding_ok
    assert (e.is_keyboard, e.selection_reason) == (True, "msmd-rule")
    expected = hashlib.sha256(f"{sha256(main)}  {e.main_file}\n".encode()).hexdigest()
    assert e.source_sha256 == expected


def test_header_in_include(entries: dict[str, PieceEntry]) -> None:
    e = entries["AlphaA__O1__include-header"]
    include = "ftp/AlphaA/O1/include-header/header.ily"
    assert e.includes == (include,)
    assert e.include_sha256 == (sha256(FIXTURE / include),)
    assert e.title == "Song Without Words"  # plain text of a markup
    assert e.license == "Creative Commons Attribution 4.0"  # from copyright
    assert e.lilypond_version == "2.16.0"  # the main file has no \version
    assert (e.is_keyboard, e.selection_reason) == (True, "header-in-include")
    lines = sorted([(e.main_file, sha256(FIXTURE / e.main_file)), (include, e.include_sha256[0])])
    digest = hashlib.sha256("".join(f"{h}  {p}\n" for p, h in lines).encode()).hexdigest()
    assert e.source_sha256 == digest


def test_nested_includes_and_include_in_header(entries: dict[str, PieceEntry]) -> None:
    e = entries["AlphaA__O2__nested"]
    assert e.includes == (
        "ftp/AlphaA/O2/nested/common/setup.ily",
        "ftp/AlphaA/O2/nested/common/notes.ily",  # resolved beside setup.ily
        "ftp/AlphaA/O2/nested/common/fields.ily",  # included inside \header
    )
    assert e.problems == ()  # english.ly is LilyPond's own
    assert e.title == "Nested Piece"
    assert e.opus == "Op. 2"
    assert e.instrument == "Clavichord"
    assert (e.is_keyboard, e.selection_reason) == (True, "header-in-include")


def test_missing_include(entries: dict[str, PieceEntry]) -> None:
    e = entries["AlphaA__O2__missing"]
    assert e.problems == ("missing-include:nothere.ily",)
    assert e.includes == ()
    assert e.is_keyboard


def test_case_mismatch(entries: dict[str, PieceEntry]) -> None:
    e = entries["AlphaA__O2__case"]
    assert e.includes == ("ftp/AlphaA/O2/case/notes.ily",)
    assert e.problems == ("case-mismatch:Notes.ily->ftp/AlphaA/O2/case/notes.ily",)


def test_not_utf8(tmp_path: Path) -> None:
    root = tmp_path / "mutopia"
    shutil.copytree(FIXTURE / "ftp" / "BetaB", root / "ftp" / "BetaB")
    piece = root / "ftp" / "EpsilonE" / "O5" / "latin" / "latin.ly"
    piece.parent.mkdir(parents=True)
    piece.write_bytes(
        '\\version "2.6.0"\n\\header {\n  title = "Caf\u00e9 Valse"\n'
        '  mutopiainstrument = "Piano"\n}\n\\score { { c\'1 } }\n'.encode("latin-1")
    )
    entry = find_piece(scan_corpus(root), "EpsilonE__O5__latin")
    assert entry is not None
    assert not entry.encoding_ok
    assert entry.problems == ("encoding:ftp/EpsilonE/O5/latin/latin.ly",)
    assert entry.title == "Caf\ufffd Valse"
    assert entry.is_keyboard


@pytest.mark.parametrize(
    ("piece_id", "reason"),
    [
        ("BetaB__O3__clavier", "header-format+alias:clavier"),
        ("BetaB__O3__pianoforte", "header-format+alias:pianoforte"),
        ("BetaB__O3__nospace", "header-format"),  # mutopiainstrument="Piano"
    ],
)
def test_keyboard_pieces_msmd_missed(
    entries: dict[str, PieceEntry], piece_id: str, reason: str
) -> None:
    e = entries[piece_id]
    assert not msmd_instrument_rule((FIXTURE / e.main_file).read_text(encoding="utf-8"))
    assert (e.is_keyboard, e.selection_reason) == (True, reason)


@pytest.mark.parametrize(
    ("piece_id", "reason"),
    [("BetaB__O4__violin", "not-keyboard"), ("BetaB__O4__duet", "rejected:four-hands")],
)
def test_not_keyboard(entries: dict[str, PieceEntry], piece_id: str, reason: str) -> None:
    assert (entries[piece_id].is_keyboard, entries[piece_id].selection_reason) == (False, reason)


def test_several_files_in_one_folder(entries: dict[str, PieceEntry]) -> None:
    first, second = entries["GammaG__Set__first"], entries["GammaG__Set__second"]
    assert first.includes == ("ftp/GammaG/Set/set-lys/shared.ly", "ftp/GammaG/Set/set-lys/meta.ly")
    assert second.includes == first.includes
    assert (first.title, second.title) == ("First", "Second")
    assert first.is_keyboard and second.is_keyboard
    # shared.ly (no header) and meta.ly (a header but no \score) are includes only
    assert "GammaG__Set__shared" not in entries
    assert "GammaG__Set__meta" not in entries


def test_movements_and_collection(entries: dict[str, PieceEntry]) -> None:
    one, two = entries["GammaG__Suite__one"], entries["GammaG__Suite__two"]
    assert one.main_file == "ftp/GammaG/Suite/suite-lys/parts/one.ly"
    assert one.includes == ("ftp/GammaG/Suite/suite-lys/header.ily",)
    assert (one.title, two.title) == ("One", "Two")  # the later \header wins
    assert one.is_keyboard and two.is_keyboard
    suite = entries["GammaG__Suite__suite"]
    assert suite.problems == ("collection:2",)
    assert (suite.is_keyboard, suite.selection_reason) == (False, "rejected:collection")


def test_header_only_file_lends_its_header(entries: dict[str, PieceEntry]) -> None:
    e = entries["DeltaD__Book__book"]
    assert e.instrument == "Harpsichord"
    assert e.title == "A Book"
    assert e.problems == ("header-sidecar:ftp/DeltaD/Book/book-lys/book-header.ly",)
    assert (e.is_keyboard, e.selection_reason) == (True, "header-sidecar")
    assert "DeltaD__Book__book-header" not in entries


def test_header_only_file_without_main(tmp_path: Path) -> None:
    root = tmp_path / "mutopia"
    piece = root / "ftp" / "ZetaZ" / "Lone" / "lone-lys" / "lone-header.ly"
    piece.parent.mkdir(parents=True)
    piece.write_text('\\header {\n  mutopiainstrument = "Piano"\n}\n', encoding="utf-8")
    (entry,) = scan_corpus(root)
    assert entry.piece_id == "ZetaZ__Lone__lone-header"
    assert entry.problems == ("header-only", "no-version")
    assert (entry.is_keyboard, entry.selection_reason) == (False, "rejected:header-only")


def test_id_collision(entries: dict[str, PieceEntry]) -> None:
    keyboard, other = entries["DeltaD__Coll__score"], entries["DeltaD__Coll__score__2"]
    assert keyboard.main_file == "ftp/DeltaD/Coll/b/score.ly"  # the keyboard piece keeps the id
    assert keyboard.is_keyboard and not other.is_keyboard
    assert keyboard.problems == ("id-collision:ftp/DeltaD/Coll/a/score.ly",)
    assert other.problems == ("id-collision:ftp/DeltaD/Coll/b/score.ly",)


def test_not_a_mutopia_checkout(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no ftp/"):
        scan_corpus(tmp_path)


def test_progress_bar_gives_same_result() -> None:
    assert scan_corpus(FIXTURE, progress=True) == scan_corpus(FIXTURE)


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("instrument", "expected"),
    [
        ("Piano", (True, "msmd-words")),
        ("Harpsichord,Clavichord", (True, "msmd-words")),
        ("Piano/Harpsichord/Clavichord", (True, "msmd-words")),
        ("  piano ", (True, "msmd-words")),
        ("Clavier", (True, "alias:clavier")),
        ("Pianoforte", (True, "alias:pianoforte")),
        ("Piano, Pianoforte, Harpsichord, Clavichord", (True, "alias:pianoforte")),
        ("Clavecin", (True, "alias:harpsichord")),
        ("Harpsichord or Piano", (True, "alternatives")),
        ("Piano solo", (True, "alternatives")),
        ("Piano, Orgue", (True, "organ-alternative")),
        ("Piano Duet", (False, "rejected:four-hands")),
        ("Piano (4 hands)", (False, "rejected:four-hands")),
        ("Piano four-hands", (False, "rejected:four-hands")),
        ("2 Pianos", (False, "rejected:four-hands")),
        ("Organ", (False, "rejected:organ")),
        ("Harmonium", (False, "rejected:organ")),
        ("Voice and Piano", (False, "rejected:ensemble")),
        ("Violin & Clavier", (False, "rejected:ensemble")),
        ("Voice (SATB) and Organ or Piano", (False, "rejected:ensemble")),
        ("Guitar", (False, "not-keyboard")),
        ("", (False, "no-instrument")),
    ],
)
def test_classify_instrument(instrument: str, expected: tuple[bool, str]) -> None:
    assert classify_instrument(instrument) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('  mutopiainstrument = "Piano"\n', True),
        ('mutopiainstrument = "Harpsichord, Piano"\n', True),
        ('mutopiainstrument = "Clavier"\n', False),
        ('mutopiainstrument="Piano"\n', False),  # no spaces: MSMD's split fails
        ('mutopiainstrument = "Piano"\nmutopiainstrument = "Piano"\n', False),  # two lines
        ('% mutopiainstrument = "Organ"\nmutopiainstrument = "Piano"\n', True),
        ('mutopiainstrument = ""\n', True),  # MSMD quirk (not used as a selection)
        ('title = "x"\n', False),
    ],
)
def test_msmd_instrument_rule(text: str, expected: bool) -> None:
    assert msmd_instrument_rule(text) is expected


# --------------------------------------------------------------------------- index file


def test_index_round_trip(entries: dict[str, PieceEntry], tmp_path: Path) -> None:
    original = list(entries.values())
    odd = replace(
        original[0],
        piece_id="Odd__Op__x",
        title='Comma, "quote"\nnew line, ünïcode',
        includes=("ftp/a b/c,d.ily", 'ftp/"q".ily'),
        include_sha256=("0" * 64, "f" * 64),
        problems=("missing-include:x|y.ily",),
        encoding_ok=False,
    )
    original.append(odd)
    path = tmp_path / "work" / "index.csv"
    write_index(original, path)
    assert read_index(path) == original
    assert os.listdir(path.parent) == ["index.csv"]  # no temporary file left
    header = path.read_bytes().split(b"\r\n")[0].decode("utf-8")
    assert header == ",".join(INDEX_COLUMNS)


def test_index_empty_round_trip(tmp_path: Path) -> None:
    write_index([], tmp_path / "index.csv")
    assert read_index(tmp_path / "index.csv") == []


def test_read_index_rejects_other_csv(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a corpus index"):
        read_index(path)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    title=_TEXT,
    license=_TEXT,
    includes=st.lists(_TEXT, max_size=4),
    problems=st.lists(_TEXT, max_size=3),
    flags=st.tuples(st.booleans(), st.booleans()),
)
def test_index_round_trip_any_text(
    tmp_path_factory: pytest.TempPathFactory,
    title: str,
    license: str,
    includes: list[str],
    problems: list[str],
    flags: tuple[bool, bool],
) -> None:
    entry = PieceEntry(
        piece_id="A__B__c",
        main_file="ftp/A/B/c/c.ly",
        composer_dir="A",
        opus_dir="B",
        includes=tuple(includes),
        include_sha256=tuple("0" * 64 for _ in includes),
        source_sha256="1" * 64,
        title=title,
        composer="",
        opus="",
        instrument="Piano",
        style="",
        license=license,
        lilypond_version="2.18.2",
        encoding_ok=flags[0],
        is_keyboard=flags[1],
        selection_reason="msmd-rule",
        problems=tuple(problems),
    )
    path = tmp_path_factory.mktemp("index") / "index.csv"
    write_index([entry], path)
    assert read_index(path) == [entry]


def test_queries(entries: dict[str, PieceEntry]) -> None:
    values = list(entries.values())
    keyboard = select_keyboard(values)
    assert all(e.is_keyboard for e in keyboard)
    assert len(keyboard) == 14
    assert find_piece(values, "BetaB__O3__clavier") is entries["BetaB__O3__clavier"]
    assert find_piece(values, "Nobody__None__none") is None
    text = summarize(values, scan_seconds=0.25)
    assert "pieces: 18" in text
    assert "keyboard selected: 14" in text
    assert "header-format+alias:clavier" in text
    assert "missing-include" in text


# --------------------------------------------------------------------------- real snapshot


def _mutopia_root() -> Path:
    env = os.environ.get("MUTOPIA_ROOT")
    root = Path(env) if env else REPO.parent / "shared" / "mutopia"
    if not (root / "ftp").is_dir():
        pytest.skip(f"Mutopia snapshot not found at {root} (set MUTOPIA_ROOT)")
    return root


def _all_split_ids(root: Path) -> list[str]:
    candidates = [root.parent / "msmd-splits", REPO.parent / "shared" / "msmd-splits"]
    for directory in candidates:
        path = directory / "all_split.yaml"
        if path.is_file():
            split = yaml.safe_load(path.read_text(encoding="utf-8"))
            return [piece for name in ("train", "valid", "test") for piece in split[name]]
    pytest.skip(f"all_split.yaml not found in {[str(c) for c in candidates]}")


@pytest.fixture(scope="module")
def real_entries() -> list[PieceEntry]:
    return scan_corpus(_mutopia_root())


@pytest.mark.corpus
def test_real_keyboard_count(real_entries: list[PieceEntry]) -> None:
    assert len(select_keyboard(real_entries)) >= 690
    ids = [e.piece_id for e in real_entries]
    assert len(ids) == len(set(ids))


@pytest.mark.corpus
def test_real_all_split_pieces_are_selected(real_entries: list[PieceEntry]) -> None:
    by_id = {e.piece_id: e for e in real_entries}
    wanted = _all_split_ids(_mutopia_root())
    assert len(wanted) == 467
    missing = [p for p in wanted if p not in by_id]
    not_selected = [p for p in wanted if p in by_id and not by_id[p].is_keyboard]
    assert missing == []
    assert not_selected == []


@pytest.mark.corpus
def test_real_bwv814_movements(real_entries: list[PieceEntry]) -> None:
    by_id = {e.piece_id: e for e in real_entries}
    for movement in ("allemande", "gavotte", "menuet", "sarabande", "trio"):
        entry = by_id[f"BachJS__BWV814__bach-french-suite-3-{movement}"]
        assert "/parts/" in entry.main_file
        assert entry.is_keyboard
    suite = by_id["BachJS__BWV814__french-suite-3"]
    assert suite.selection_reason == "rejected:collection"


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("piece_id", "selected"),
    [
        ("BachJS__BWV933__bwv933", True),  # "Clavier"
        ("MozartWA__KV2__menuet_k2", True),  # "Pianoforte"
        ("ChopinFF__O64__chopin_valse_op64_no1", True),  # header in an include
        ("SzervacA__Ostia__Ostia", False),  # MSMD's empty-instrument quirk
    ],
)
def test_real_known_pieces(real_entries: list[PieceEntry], piece_id: str, selected: bool) -> None:
    entry = find_piece(real_entries, piece_id)
    assert entry is not None
    assert entry.is_keyboard is selected


@pytest.mark.corpus
def test_real_index_round_trip(real_entries: list[PieceEntry], tmp_path: Path) -> None:
    write_index(real_entries, tmp_path / "index.csv")
    assert read_index(tmp_path / "index.csv") == real_entries


def test_midi_companion_is_not_a_piece_of_its_own(tmp_path: Path) -> None:
    root = tmp_path / "mutopia"
    folder = root / "ftp" / "EtaE" / "O1" / "song-lys"
    folder.mkdir(parents=True)
    header = '\\version "2.10.0"\n\\header {\n  mutopiainstrument = "Piano"\n}\n'
    midi_only = "% no \\layout here\n\\score { { c'2 c' } \\midi { } }\n"
    (folder / "song.ly").write_text(header + "\\score { { c'1 } \\layout { } }\n")
    for name in ("song-midi.ly", "song_mid.ly", "other-mid.ly"):
        (folder / name).write_text(header + midi_only)
    (folder / "song-mid.ly").write_text(header + "\\score { { c'1 } \\layout { } \\midi { } }\n")
    entries = {e.piece_id: e for e in scan_corpus(root)}
    assert entries["EtaE__O1__song"].is_keyboard
    for companion in ("EtaE__O1__song-midi", "EtaE__O1__song_mid"):
        e = entries[companion]
        assert e.problems == ("midi-companion:ftp/EtaE/O1/song-lys/song.ly",)
        assert (e.is_keyboard, e.selection_reason) == (False, "rejected:midi-companion")
    # A companion that prints is a piece (MSMD has one), and so is a -mid file beside no piece.
    assert entries["EtaE__O1__song-mid"].is_keyboard
    assert entries["EtaE__O1__other-mid"].is_keyboard
