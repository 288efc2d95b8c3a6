"""The exact draws, files and errors of the splits, beyond the properties of ``test_splits.py``.

Found by mutation testing (docs/testing.md): a split is a published
artefact, so the same pieces and seed must draw the same split in every
version (not only within one run), the YAML must stay byte for byte what
MSMD's tools read, and every refused input must say what was wrong with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from msmd_builder.core.errors import ConfigError
from msmd_builder.stages.splits.recipes import make_split, make_split_files, subset
from msmd_builder.stages.splits.split import Split, read_split, write_split

IDS = [f"C{i % 3}__op__p{i}" for i in range(10)]


def test_a_seed_draws_the_same_split_in_every_version():
    split = make_split(IDS, "all", seed=7)
    assert split.parts == {
        "train": (
            "C0__op__p0",
            "C0__op__p6",
            "C0__op__p9",
            "C1__op__p1",
            "C1__op__p7",
            "C2__op__p2",
            "C2__op__p5",
        ),
        "valid": ("C0__op__p3",),
        "test": ("C1__op__p4", "C2__op__p8"),
    }
    assert subset(split, 0.5, seed=7).parts["train"] == (
        "C0__op__p6",
        "C1__op__p1",
        "C2__op__p2",
        "C2__op__p5",
    )
    left_out = make_split(IDS, "leave-out", leave_out="C1", seed=7)
    assert left_out.parts["valid"] == ("C2__op__p8",)
    assert left_out.parts["test"] == ("C1__op__p1", "C1__op__p4", "C1__op__p7")


def test_leaving_a_composer_out_draws_the_others_by_the_split_salt():
    # Seed 7 above happens to draw the same validation piece with any salt; seed 1 does not.
    assert make_split(IDS, "leave-out", leave_out="C1", seed=1).parts == {
        "train": (
            "C0__op__p0",
            "C0__op__p3",
            "C0__op__p9",
            "C2__op__p2",
            "C2__op__p5",
            "C2__op__p8",
        ),
        "valid": ("C0__op__p6",),
        "test": ("C1__op__p1", "C1__op__p4", "C1__op__p7"),
    }


def test_a_part_with_no_share_stays_empty():
    split = make_split(IDS, "all", seed=1, fractions=(0.8, 0, 0.2))
    assert split.counts() == {"train": 8, "valid": 0, "test": 2}
    split = make_split(IDS, "all", seed=1, fractions=(1, 0, 0))
    assert split.counts() == {"train": 10, "valid": 0, "test": 0}
    split = make_split(IDS, "leave-out", leave_out="C1", seed=1, fractions=(0.5, 0, 0.5))
    assert split.counts() == {"train": 7, "valid": 0, "test": 3}


@pytest.mark.parametrize(
    "fractions", [(0.5, 0.5, 0), (1, 0, 0), (0, 1, 0)], ids=["half", "train", "valid"]
)
def test_leaving_out_needs_train_or_valid(fractions):
    split = make_split(IDS, "leave-out", leave_out="C1", seed=1, fractions=fractions)
    assert split.counts()["test"] == 3
    with pytest.raises(
        ConfigError, match=r"^fractions: train \+ valid must be positive to leave a composer out$"
    ):
        make_split(IDS, "leave-out", leave_out="C1", seed=1, fractions=(0, 0, 1))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: make_split(IDS, "odd", seed=1),
            r"^unknown split recipe 'odd'; choose one of "
            r"all, bach-only, bach-out, leave-out$",
        ),
        (lambda: make_split(IDS, "all", seed="1"), r"^seed must be an integer, got '1'$"),
        (lambda: make_split(IDS, "all", seed=1.5), r"^seed must be an integer, got 1.5$"),
        (
            lambda: make_split([*IDS, ""], "all", seed=1),
            r"^expected a PieceEntry or a piece id, "
            r"got ''$",
        ),
        (
            lambda: make_split(IDS, "leave-out", seed=1),
            r"^recipe leave-out needs a composer "
            r"directory \(--leave-out\)$",
        ),
        (lambda: make_split([], "all", seed=1), r"^no pieces to split$"),
        (
            lambda: make_split(IDS, "all", seed=1, fractions=(0.5, 0.5, 1e-5)),
            r"^fractions "
            r"\(train, valid, test\) must sum to 1, got \(0.5, 0.5, 1e-05\)$",
        ),
    ],
)
def test_make_split_says_what_is_wrong(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_an_unknown_composer_is_answered_with_the_eight_most_frequent():
    ids = [f"K{k}__op__p{i}" for k in range(9) for i in range(9 - k)]
    with pytest.raises(
        ConfigError,
        match=r"^no pieces with composer directory 'Nobody' \(most frequent: "
        r"K0, K1, K2, K3, K4, K5, K6, K7\)$",
    ):
        make_split(ids, "leave-out", leave_out="Nobody", seed=1)


def test_a_subset_keeps_at_least_one_piece_and_records_its_origin():
    split = Split("s", {"train": ["a", "b", "c"], "test": ["d"]}, seed=5)
    small = subset(split, 0.1, seed=2)
    assert len(small.parts["train"]) == 1
    assert small.seed == 5
    assert small.description == {"subset_of": "s", "train_fraction": 0.1, "subset_seed": 2}
    assert subset(Split("e", {"test": ["d"]}), 0.5, seed=2).parts["train"] == ()


def test_make_split_files_passes_every_choice_on(tmp_path):
    out = tmp_path / "c1-out.yaml"
    written = make_split_files(
        IDS,
        "leave-out",
        seed=4,
        out=out,
        leave_out="C1",
        fractions=(0.6, 0.4, 0),
        source="index.csv",
    )
    assert written == [out]
    expected = make_split(
        IDS, "leave-out", seed=4, leave_out="C1", fractions=(0.6, 0.4, 0), source="index.csv"
    )
    assert read_split(out) == expected
    assert expected.description["source"] == "index.csv"
    written = make_split_files(
        IDS, "all", seed=4, out=out, with_subsets=True, subset_fractions=(0.5,)
    )
    assert [p.name for p in written] == ["c1-out.yaml", "c1-out-train50.yaml"]


def test_split_files_are_written_exactly_so(tmp_path):
    split = Split(
        "tést",
        {"train": ["a", "b"], "test": ["ç"]},
        seed=3,
        description={"recipe": "all", "fractions": (0.5, 0.5, 0.0)},
    )
    write_split(split, tmp_path / "x.yaml")
    assert (tmp_path / "x.yaml").read_text(encoding="utf-8") == (
        "meta:\n  format_name: msmd-split\n  format_version: 1\n  name: tést\n  seed: 3\n"
        "  description:\n    recipe: all\n    fractions:\n    - 0.5\n    - 0.5\n    - 0.0\n"
        "train:\n- a\n- b\nvalid: []\ntest:\n- ç\n"
    )
    long_id = "x" * 5000
    write_split(Split("long", {"train": [long_id]}), tmp_path / "long.yaml")
    assert read_split(tmp_path / "long.yaml").parts["train"] == (long_id,)


def test_a_file_without_meta_is_named_after_itself(tmp_path):
    path = tmp_path / "my_list.yaml"
    path.write_text("test: [b, a]\ntrain: null\nfailed: [c]\n", encoding="utf-8")
    split = read_split(path)
    parts = {"train": [], "test": ["b", "a"], "failed": ["c"]}
    assert split == Split("my_list", parts, None, {"source": "my_list.yaml"})
    assert Split.from_dict({"train": ["a"]}).name == "split"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"meta": [1], "train": []}, r"^`meta` must be a mapping$"),
        (
            {"meta": {"format_version": 2}, "train": []},
            r"^unsupported split format 'msmd-split' v2 \(this version reads 'msmd-split' v1\)$",
        ),
        ({"meta": {}}, r"^a split file needs at least one part \(train, valid, test, ...\)$"),
        ({"meta": {"description": [1]}, "train": []}, r"^`meta.description` must be a mapping$"),
        ([], r"^a split file must be a mapping of part names to id lists$"),
    ],
)
def test_bad_documents_say_what_is_wrong(document, message):
    with pytest.raises(ConfigError, match=message):
        Split.from_dict(document)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", {"train": ["a"]}), r"^split name must be a non-empty string, got ''$"),
        (("x", {"train": ["a"]}, "1"), r"^split seed must be an integer or None, got '1'$"),
        (("x", [("train", ["a"])]), r"^split parts must be a mapping, got list$"),
        (("x", {"": ["a"]}), r"^bad part name ''$"),
        (("x", {"train": "abc"}), r"^part 'train' must be a list of piece ids$"),
        (("x", {"train": 3}), r"^part 'train' must be a list of piece ids$"),
        (("x", {"train": ["a", ""]}), r"^part 'train': bad piece id ''$"),
        (
            ("x", {"train": ["a"]}, None, {"inner": {"path": Path("a")}}),
            r"^description.inner.path: PosixPath is not a plain YAML value$",
        ),
        (
            ("x", {"train": ["a"]}, None, {"list": [Path("a")]}),
            r"^description.list: PosixPath is not a plain YAML value$",
        ),
    ],
)
def test_bad_splits_say_what_is_wrong(arguments, message):
    with pytest.raises(ConfigError, match=message):
        Split(*arguments)


def test_descriptions_become_plain_yaml_values():
    split = Split("x", {"train": ["a"]}, description={"fractions": (1, 0, 0), 3: {"k": (1,)}})
    assert split.description == {"fractions": [1, 0, 0], "3": {"k": [1]}}
