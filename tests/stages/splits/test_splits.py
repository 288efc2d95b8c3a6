"""Tests of msmd_builder.stages.splits: recipes, subsets, files, import and Table-1 statistics."""

from __future__ import annotations

import random
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import yaml

from msmd_builder.core.errors import ConfigError
from msmd_builder.pipeline.run import PieceOutcome
from msmd_builder.stages.corpus.index import PieceEntry, select_keyboard
from msmd_builder.stages.corpus.scan import scan_corpus
from msmd_builder.stages.splits.imports import (
    FAILED,
    NOT_BUILT,
    NOT_IN_CORPUS,
    NOT_SELECTED,
    build_facts,
    import_split,
)
from msmd_builder.stages.splits.recipes import (
    make_split,
    make_split_files,
    subset,
    subset_path,
    subsets,
)
from msmd_builder.stages.splits.split import PARTS, Split, read_split, write_split
from msmd_builder.stages.splits.table1 import (
    MSMD_TABLE1,
    PartStats,
    format_table1,
    split_statistics,
    table1_document,
    total_statistics,
)
from tests.conftest import REPO_ROOT, RESOURCES, mutopia_root

MSMD_SPLITS = REPO_ROOT.parent / "shared" / "msmd-splits"
FIXTURE = RESOURCES / "corpus"

# 200 made-up pieces by six composers, Bach the largest group.
COMPOSERS = {"BachJS": 70, "MozartWA": 25, "ChopinFF": 40, "SatieE": 15, "ClementiM": 30}
IDS = [
    f"{composer}__Op{i // 3}__piece-{i}" for composer, n in COMPOSERS.items() for i in range(n)
] + [f"Traditional__song{i}__song{i}" for i in range(20)]


def msmd_split_file(name: str) -> Path:
    path = MSMD_SPLITS / name
    if not path.is_file():
        pytest.skip(f"{path} not found (the shared MSMD piece lists)")
    return path


def listed_ids(path: Path) -> list[str]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [piece for part in ("train", "valid", "test") for piece in document[part]]


def composer(piece_id: str) -> str:
    return piece_id.split("__", 1)[0]


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("recipe", ["all", "bach-only", "bach-out"])
def test_same_seed_same_split_whatever_the_order(recipe: str) -> None:
    shuffled = list(IDS)
    random.Random(7).shuffle(shuffled)
    first = make_split(IDS, recipe, seed=3)
    assert make_split(shuffled, recipe, seed=3) == first
    assert make_split(reversed(IDS), recipe, seed=3) == first
    assert make_split(IDS, recipe, seed=4) != first


def test_seeds_change_the_draw() -> None:
    tests = {make_split(IDS, "all", seed=seed).parts["test"] for seed in range(5)}
    assert len(tests) == 5


def test_entries_and_ids_give_the_same_split() -> None:
    entries = [e for e in scan_corpus(FIXTURE)]
    from_entries = make_split(entries, "all", seed=1, fractions=(0.5, 0.25, 0.25))
    from_ids = make_split([e.piece_id for e in entries], "all", seed=1, fractions=(0.5, 0.25, 0.25))
    assert from_entries == from_ids
    assert sorted(from_entries.piece_ids()) == sorted(e.piece_id for e in entries)


def test_all_recipe_fractions() -> None:
    split = make_split(IDS, "all", seed=0, fractions=(0.8, 0.1, 0.1))
    assert split.counts() == {"train": 160, "valid": 20, "test": 20}
    assert sorted(split.piece_ids()) == sorted(IDS)
    assert all(list(ids) == sorted(ids) for ids in split.parts.values())
    assert split.description["recipe"] == "all"
    assert split.description["fractions"] == [0.8, 0.1, 0.1]
    # a random mix: Bach lands in every part
    assert all(any(composer(p) == "BachJS" for p in ids) for ids in split.parts.values())


@pytest.mark.parametrize(
    ("file_name", "recipe"),
    [
        ("tismir2018_all_split.yaml", "all"),
        ("tismir2018_bach_split.yaml", "bach-only"),
        ("tismir2018_bach_out_split.yaml", "bach-out"),
    ],
)
def test_default_fractions_reproduce_table1_sizes(file_name: str, recipe: str) -> None:
    ids = listed_ids(msmd_split_file(file_name))
    # the bach-only list holds Bach only; draw the split from the whole 479-piece corpus
    pool = listed_ids(msmd_split_file("tismir2018_all_split.yaml"))
    assert set(ids) <= set(pool)
    split = make_split(pool, recipe, seed=2018)
    expected = {part: MSMD_TABLE1[recipe][part].pieces for part in PARTS}
    assert split.counts() == expected
    assert read_split(msmd_split_file(file_name)).counts() == expected


def test_bach_only_holds_only_bach() -> None:
    split = make_split(IDS, "bach-only", seed=5)
    assert {composer(p) for p in split.piece_ids()} == {"BachJS"}
    assert len(split.piece_ids()) == COMPOSERS["BachJS"]
    assert split.name == "bach-only"


def test_bach_out_tests_on_bach_only() -> None:
    split = make_split(IDS, "bach-out", seed=5)
    test_composers = {composer(p) for p in split.parts["test"]}
    train_composers = {composer(p) for p in split.parts["train"] + split.parts["valid"]}
    assert test_composers == {"BachJS"}
    assert test_composers.isdisjoint(train_composers)
    assert len(split.parts["test"]) == COMPOSERS["BachJS"]
    assert sorted(split.piece_ids()) == sorted(IDS)
    # train : valid like Table 1's 281 : 25
    assert len(split.parts["valid"]) == round(130 * 25 / 306)
    assert split.description["leave_out"] == "BachJS"
    assert make_split(IDS, "bach-out", seed=5, leave_out="BachJS") == split


def test_leave_out_composer() -> None:
    split = make_split(IDS, "leave-out", seed=9, leave_out="MozartWA")
    assert split.name == "MozartWA-out"
    assert {composer(p) for p in split.parts["test"]} == {"MozartWA"}
    assert len(split.parts["test"]) == COMPOSERS["MozartWA"]
    rest = split.parts["train"] + split.parts["valid"]
    assert "MozartWA" not in {composer(p) for p in rest}
    assert len(rest) == len(IDS) - COMPOSERS["MozartWA"]
    assert split.description == {
        "recipe": "leave-out",
        "leave_out": "MozartWA",
        "fractions": split.description["fractions"],
        "pieces": len(IDS),
        "source": None,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recipe": "random"}, "unknown split recipe"),
        ({"recipe": "leave-out"}, "needs a composer"),
        ({"recipe": "leave-out", "leave_out": "mozartwa"}, "did you mean MozartWA"),
        ({"recipe": "leave-out", "leave_out": "HaydnFJ"}, "most frequent: BachJS"),
        ({"recipe": "bach-out", "leave_out": "MozartWA"}, "use recipe leave-out"),
        ({"recipe": "all", "leave_out": "MozartWA"}, "takes no composer"),
        ({"recipe": "all", "fractions": (0.5, 0.2, 0.2)}, "must sum to 1"),
        ({"recipe": "all", "fractions": (1.2, -0.1, -0.1)}, "non-negative"),
        ({"recipe": "all", "seed": True}, "seed must be an integer"),
        ({"recipe": "all", "seed": "1"}, "seed must be an integer"),
    ],
)
def test_make_split_rejects_mistakes(kwargs: dict, message: str) -> None:
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(ConfigError, match=message):
        make_split(IDS, **kwargs)


def test_make_split_rejects_duplicates_and_missing_bach() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        make_split([*IDS, IDS[0]], "all", seed=0)
    with pytest.raises(ConfigError, match="no pieces with composer directory BachJS"):
        make_split([p for p in IDS if composer(p) != "BachJS"], "bach-only", seed=0)
    with pytest.raises(ConfigError, match="no pieces"):
        make_split([], "all", seed=0)


def test_small_inputs_stay_a_partition() -> None:
    for n in range(1, 12):
        split = make_split(IDS[:n], "all", seed=n, fractions=(0.0, 0.5, 0.5))
        assert sorted(split.piece_ids()) == sorted(IDS[:n])


#: Part sizes (train, valid, test) of the ``all`` recipe for 1 to 15 pieces: MSMD's
#: 360 : 19 : 100 shares rounded half up, except that from 3 pieces on the validation
#: part gets one piece (19/479 of 14 pieces, the bundled examples, rounds to none).
SMALL_ALL_SIZES = {
    1: (1, 0, 0),
    2: (2, 0, 0),
    3: (1, 1, 1),
    4: (2, 1, 1),
    5: (3, 1, 1),
    6: (4, 1, 1),
    7: (5, 1, 1),
    8: (5, 1, 2),
    9: (6, 1, 2),
    10: (7, 1, 2),
    11: (8, 1, 2),
    12: (8, 1, 3),
    13: (9, 1, 3),
    14: (10, 1, 3),
    15: (11, 1, 3),
}


@pytest.mark.parametrize("n", sorted(SMALL_ALL_SIZES))
def test_small_corpora_get_exact_part_sizes(n: int) -> None:
    for seed in range(4):
        counts = make_split(IDS[:n], "all", seed=seed).counts()
        assert (counts["train"], counts["valid"], counts["test"]) == SMALL_ALL_SIZES[n], seed


def test_a_small_corpus_still_gets_a_validation_piece() -> None:
    """Without the rule these split 11/0/3 (the examples' size) and 5/0/4 (leave-out)."""
    assert make_split(IDS[:14], "all", seed=3).counts() == {"train": 10, "valid": 1, "test": 3}
    # Leave-out divides the other composers' pieces train : valid as 281 : 25.
    small = [f"SatieE__Op{i}__p{i}" for i in range(4)] + [f"A__x{i}__y{i}" for i in range(5)]
    split = make_split(small, "leave-out", leave_out="SatieE", seed=0)
    assert split.counts() == {"train": 4, "valid": 1, "test": 4}
    # With 2 pieces besides the test part, a validation piece would take half: none.
    two_others = make_split(small[2:6], "leave-out", leave_out="SatieE", seed=0)
    assert two_others.counts() == {"train": 2, "valid": 0, "test": 2}


# --------------------------------------------------------------------------- split record


def test_split_contract() -> None:
    split = Split("x", {"test": ["c"], "train": ("a", "b"), "extra": ["d"]})
    assert list(split.parts) == ["train", "valid", "test", "extra"]
    assert split.parts["valid"] == ()
    assert split.role_of("b") == "train"
    assert split.role_of("d") == "extra"
    assert split.role_of("zzz") is None
    assert split.piece_ids() == ("a", "b", "c", "d")
    with pytest.raises(ConfigError, match="listed twice"):
        Split("x", {"train": ["a"], "test": ["a"]})
    with pytest.raises(ConfigError, match="bad part name"):
        Split("x", {"meta": ["a"]})
    with pytest.raises(ConfigError, match="not a plain YAML value"):
        Split("x", {"train": ["a"]}, description={"path": Path("a")})


# --------------------------------------------------------------------------- subsets


def test_subsets_are_nested() -> None:
    split = make_split(IDS, "all", seed=1)
    parts = subsets(split, seed=11)
    assert [p.name for p in parts] == ["all-train10", "all-train25", "all-train50", "all-train75"]
    assert len(split.parts["train"]) == 150
    assert [len(p.parts["train"]) for p in parts] == [15, 38, 75, 113]  # halves round up
    for smaller, larger in zip(parts, parts[1:], strict=False):
        assert set(smaller.parts["train"]) < set(larger.parts["train"])
    for part in parts:
        assert set(part.parts["train"]) <= set(split.parts["train"])
        assert part.parts["valid"] == split.parts["valid"]
        assert part.parts["test"] == split.parts["test"]
        assert part.description["subset_of"] == "all"
    assert subsets(split, seed=11) == parts
    assert subset(split, 0.25, seed=12).parts["train"] != parts[1].parts["train"]
    assert subset(split, 1.0, seed=11).parts == split.parts


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, True])
def test_subset_rejects_bad_fractions(fraction: float) -> None:
    with pytest.raises(ConfigError, match="subset fraction"):
        subset(make_split(IDS, "all", seed=1), fraction, seed=0)


# --------------------------------------------------------------------------- files


def test_yaml_round_trip(tmp_path: Path) -> None:
    split = make_split(IDS, "leave-out", seed=4, leave_out="ChopinFF", source="index.csv")
    path = tmp_path / "split.yaml"
    write_split(split, path)
    assert read_split(path) == split
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(document) == ["meta", "train", "valid", "test"]
    assert document["test"] == list(split.parts["test"])
    assert document["meta"]["seed"] == 4
    assert document["meta"]["description"]["source"] == "index.csv"
    # a second write of the same split gives the same bytes
    first = path.read_bytes()
    write_split(read_split(path), path)
    assert path.read_bytes() == first


def test_make_split_files_with_subsets(tmp_path: Path) -> None:
    out = tmp_path / "splits" / "bach-out.yaml"
    written = make_split_files(IDS, "bach-out", seed=3, out=out, with_subsets=True)
    assert written == [out] + [subset_path(out, f) for f in (0.1, 0.25, 0.5, 0.75)]
    assert [p.name for p in written[1:]] == [
        "bach-out-train10.yaml",
        "bach-out-train25.yaml",
        "bach-out-train50.yaml",
        "bach-out-train75.yaml",
    ]
    full = read_split(out)
    assert full == make_split(IDS, "bach-out", seed=3)
    assert read_split(written[2]) == subset(full, 0.25, seed=3)


def test_read_msmd_file_and_extra_keys(tmp_path: Path) -> None:
    split = read_split(msmd_split_file("tismir2018_all_split.yaml"))
    assert split.name == "tismir2018_all_split"
    assert split.seed is None
    assert split.description == {"source": "tismir2018_all_split.yaml"}
    # file order is kept (MSMD's evaluation samples the ordered test pool)
    assert split.parts["test"][0] == "ChopinFF__O9__nocturne_in_b-flat_minor"

    pieces = read_split(msmd_split_file("all_pieces.yaml"))
    assert list(pieces.parts) == ["train", "valid", "test", "failed", "problems", "success"]
    assert len(pieces.parts["success"]) == 479
    assert pieces.role_of("AdamA__giselle__giselle") == "failed"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a mapping"),
        ("train: a\n", "part 'train' must be a list"),
        ("train: [1, 2]\n", "part 'train' must be a list"),
        ("meta: {format_name: other}\ntrain: [a]\n", "unsupported split format"),
        ("meta: {}\n", "at least one part"),
        ("train: [a\n", "not a YAML file"),
    ],
)
def test_read_split_rejects_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        read_split(path)


# --------------------------------------------------------------------------- import


def test_import_reasons(tmp_path: Path) -> None:
    path = tmp_path / "listed.yaml"
    path.write_text(
        "meta:\n  name: small\n  seed: 7\n"
        "train: [A__x__built, A__x__broken, A__x__pending]\n"
        "valid: [A__x__duet]\n"
        "test: [A__x__gone, A__x__built2]\n",
        encoding="utf-8",
    )
    template = scan_corpus(FIXTURE)[0]
    index = [
        replace(template, piece_id=p, is_keyboard=p != "A__x__duet")
        for p in ("A__x__built", "A__x__built2", "A__x__broken", "A__x__pending", "A__x__duet")
    ]
    result = import_split(
        path,
        available_ids={"A__x__built", "A__x__built2", "Other__y__z"},
        index=index,
        failed={"A__x__broken": ("scheme", "Unbound variable:\n  set-octavation")},
    )
    assert result.split.name == "small"
    assert result.split.seed == 7
    assert result.split.parts["train"] == ("A__x__built",)
    assert result.split.parts["valid"] == ()
    assert result.split.parts["test"] == ("A__x__built2",)
    assert result.resolved == 2
    reasons = {m.piece_id: (m.part, m.reason, m.error_class) for m in result.missing}
    assert reasons == {
        "A__x__broken": ("train", FAILED, "scheme"),
        "A__x__pending": ("train", NOT_BUILT, ""),
        "A__x__duet": ("valid", NOT_SELECTED, ""),
        "A__x__gone": ("test", NOT_IN_CORPUS, ""),
    }
    summary = result.summary()
    assert "small: 2 of 6 listed pieces available, 4 missing" in summary
    assert "A__x__broken (train): failed [scheme] Unbound variable: set-octavation" in summary
    assert result.reason_counts()["failed: scheme"] == 1
    # the written import carries its losses
    write_split(result.split, tmp_path / "imported.yaml")
    again = read_split(tmp_path / "imported.yaml")
    assert again == result.split
    assert [m["piece_id"] for m in again.description["missing"]] == [
        "A__x__broken",
        "A__x__pending",
        "A__x__duet",
        "A__x__gone",
    ]
    assert again.description["source"] == "listed.yaml"
    # without an index every unavailable, non-failed piece is just "not built"
    plain = import_split(path, available_ids=[])
    assert {m.reason for m in plain.missing} == {NOT_BUILT}


def test_build_facts_from_report_outcomes() -> None:
    outcomes = [
        PieceOutcome("A__x__ok", "ok", "align", details={"alignment": {"pages": 2, "x": "s"}}),
        PieceOutcome("A__x__deg", "degraded", "render"),
        PieceOutcome("A__x__bad", "failed", "render", error_class="syntax", message="parse"),
    ]
    facts = build_facts({"summary": {}, "pieces": [asdict(o) for o in outcomes]})
    assert facts.available_ids == {"A__x__ok", "A__x__deg"}
    assert facts.failed == {"A__x__bad": ("syntax", "parse")}
    assert facts.stats == {"A__x__ok": {"pages": 2}}
    with pytest.raises(ConfigError, match="not a build report"):
        build_facts({"summary": {}})


# --------------------------------------------------------------------------- statistics


def test_split_statistics() -> None:
    split = Split("s", {"train": ["a", "b"], "test": ["c", "d"]})
    stats = {
        "a": {"pages": 2, "noteheads": 100, "performed_notes": 90, "aligned_performed_notes": 88},
        "b": {"pages": 1, "noteheads": 10, "performed_notes": 12, "aligned_performed_notes": 9},
        "c": {"pages": 3, "noteheads": 7, "performed_notes": 7, "aligned_performed_notes": 7},
    }
    parts = split_statistics(split, stats)
    assert parts["train"] == PartStats(2, 3, 110, 102, 97)
    assert parts["valid"] == PartStats(0, 0, 0, 0, 0)
    assert parts["test"] == PartStats(2, 3, 7, 7, 7, without_stats=1)
    assert total_statistics(parts) == PartStats(4, 6, 117, 109, 104, without_stats=1)
    with pytest.raises(ConfigError, match="lack 'pages'"):
        split_statistics(split, {"a": {"noteheads": 1}})
    table = format_table1(parts, title="s", reference=MSMD_TABLE1["all"])
    assert "| train | 2 (360) | 3 (970) | 110 (316,038) | 102 (310,377) | 97 (308,761) | 0 |" in (
        table
    )
    assert "| total | 4 (479) |" in table
    document = table1_document({"s": parts, **MSMD_TABLE1})
    assert document["s"]["test"] == {
        "pieces": 2,
        "pages": 3,
        "noteheads": 7,
        "events": 7,
        "aligned_pairs": 7,
        "without_stats": 1,
    }
    assert document["bach-out"]["test"]["aligned_pairs"] == 108_316


def test_msmd_table1_totals() -> None:
    # the "# Pieces / Aln. Pairs" column of Table 1
    expected = {"all": (479, 344_742), "bach-only": (173, 108_316), "bach-out": (479, 344_742)}
    for name, (pieces, pairs) in expected.items():
        total = total_statistics(MSMD_TABLE1[name])
        assert (total.pieces, total.aligned_pairs) == (pieces, pairs)


# --------------------------------------------------------------------------- real corpus


@pytest.fixture(scope="module")
def real_index() -> list[PieceEntry]:
    root = mutopia_root()
    if root is None:
        pytest.skip("no Mutopia snapshot: set MUTOPIA_ROOT or place it at ../shared/mutopia")
    return scan_corpus(root)


@pytest.mark.corpus
@pytest.mark.parametrize(
    "file_name",
    ["tismir2018_all_split.yaml", "tismir2018_bach_split.yaml", "tismir2018_bach_out_split.yaml"],
)
def test_real_import_resolves_every_piece(real_index: list[PieceEntry], file_name: str) -> None:
    path = msmd_split_file(file_name)
    selected = {e.piece_id for e in select_keyboard(real_index)}
    result = import_split(path, available_ids=selected, index=real_index)
    assert result.missing == ()
    assert result.split.parts == result.listed.parts
    assert result.resolved == len(listed_ids(path))
    by_id = {e.piece_id: e for e in real_index}
    assert all(by_id[p].is_keyboard for p in result.split.piece_ids())


@pytest.mark.corpus
def test_real_import_reports_failures(real_index: list[PieceEntry]) -> None:
    path = msmd_split_file("tismir2018_all_split.yaml")
    selected = {e.piece_id for e in select_keyboard(real_index)}
    broken = "BachJS__BWV772__bach-invention-01"
    not_run = "ChopinFF__O9__nocturne_in_b-flat_minor"
    dropped = "MozartWA__KV331__KV331_1_2_var1"
    index = [
        replace(e, is_keyboard=False) if e.piece_id == dropped else e
        for e in real_index
        if e.piece_id != not_run
    ]
    result = import_split(
        path,
        available_ids=selected - {broken, not_run, dropped},
        index=index,
        failed={broken: ("crash", "LilyPond died from signal 11")},
    )
    assert result.resolved == 476
    assert [(m.piece_id, m.reason, m.error_class) for m in result.missing] == [
        (broken, FAILED, "crash"),
        (not_run, NOT_IN_CORPUS, ""),
        (dropped, NOT_SELECTED, ""),
    ]
    assert result.split.role_of(broken) is None
    assert result.listed.role_of(broken) == "train"


@pytest.mark.corpus
def test_real_bach_out_from_the_index(real_index: list[PieceEntry]) -> None:
    keyboard = select_keyboard(real_index)
    split = make_split(keyboard, "bach-out", seed=0, source="index.csv")
    bach = {e.piece_id for e in keyboard if e.composer_dir == "BachJS"}
    assert set(split.parts["test"]) == bach
    assert len(bach) >= 173
    composers = {e.piece_id: e.composer_dir for e in keyboard}
    assert "BachJS" not in {composers[p] for p in split.parts["train"] + split.parts["valid"]}
