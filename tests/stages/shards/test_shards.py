"""Tests of msmd_builder.stages.shards and msmd_builder.dataset.

Collecting built pieces, HDF5 shards, manifest, reader.

A module fixture renders two example pieces with LilyPond and synthesizes short
performances for every split role with FluidSynth, exactly as the build does,
so every array round-tripped here comes from the real pipeline.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.core.cache import atomic_write_json, read_json, sha256_file
from msmd_builder.core.errors import ConfigError, FormatError, NotBuiltError, ToolNotFoundError
from msmd_builder.core.records import PieceRecord
from msmd_builder.core.tables import (
    MEASURE_DTYPE,
    NOTEHEAD_DTYPE,
    PERFORMED_EVENT_DTYPE,
    PERFORMED_MEASURE_DTYPE,
    SYSTEM_DTYPE,
)
from msmd_builder.core.workdir import PieceDir
from msmd_builder.dataset.built import collect_piece
from msmd_builder.dataset.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Counts,
    array_sha256,
    piece_checksum,
)
from msmd_builder.dataset.reader import open_shard, open_split
from msmd_builder.stages.align.stage import AlignResult
from msmd_builder.stages.perform.fluidsynth import fluidsynth_version
from msmd_builder.stages.perform.plans import PerformanceRecipe, SplitRecipe
from msmd_builder.stages.perform.soundfonts import load_soundfonts, locate
from msmd_builder.stages.perform.stage import PerformSettings
from msmd_builder.stages.perform.stage import run as perform_stage
from msmd_builder.stages.shards import pack_pieces, write_shards
from tests.conftest import EXAMPLES_ROOT
from tests.helpers.writes import file_writes

CHORALE = "ExampleA__O2__tied-chorale"  # one page
ETUDE = "ExampleC__O25__sixteenth-etude"  # several pages
UNRENDERED = "ExampleA__O1__volta-minuet"  # in the index, never rendered here
UNKNOWN = "Nobody__X__nothing"  # not in the index
PARTS = {
    "train": [CHORALE, ETUDE],
    "valid": [ETUDE],
    "test": [ETUDE, UNRENDERED, CHORALE, UNKNOWN],
}
#: Short performances: everything at twice the score's tempo, 2 + 1 + 1 per piece.
RECIPE = PerformanceRecipe(
    name="shard-test",
    train=SplitRecipe(tempo_ratios=(2.0,), n_performances=2, include_reference=False),
    valid=SplitRecipe(tempo_ratios=(2.0,), n_performances=1, include_reference=False),
    test=SplitRecipe(
        soundfont_role="test", tempo_ratios=(2.0,), n_performances=1, include_reference=False
    ),
)
SMALL_SHARD = 1 << 18  # 256 KiB: smaller than any two pieces, so one piece per file


def _perform(work: Path, piece_id: str) -> None:
    """Run the perform stage with the short recipe, as the build does."""
    piece_dir = PieceDir.of(work, piece_id)
    aligned = AlignResult.from_dict(read_json(piece_dir.align_record))
    perform_stage(aligned, PerformSettings(seed=3, recipe=RECIPE, verify_onsets="none"), piece_dir)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    try:
        fluidsynth_version()
        for spec in load_soundfonts():
            locate(spec)
    except ToolNotFoundError as exc:
        pytest.skip(f"FluidSynth or a soundfont is missing: {exc}")
    work = tmp_path_factory.mktemp("work")
    runner = CliRunner()
    scan = runner.invoke(main, ["corpus", "scan", str(EXAMPLES_ROOT), "--work-dir", str(work)])
    assert scan.exit_code == 0, scan.output
    args = ["corpus", "render", "--work-dir", str(work), "--workers", "2", "--until", "align"]
    render = runner.invoke(main, [*args, "--piece", CHORALE, "--piece", ETUDE])
    assert render.exit_code == 0, render.output
    for piece_id in (CHORALE, ETUDE):
        _perform(work, piece_id)
    return work


@pytest.fixture(scope="module")
def written(work, tmp_path_factory):
    """The split written once with a small size bound; (out_dir, manifest)."""
    out = tmp_path_factory.mktemp("shards")
    manifest = write_shards(
        "mix",
        PARTS,
        work_dir=work,
        out_dir=out,
        max_shard_bytes=SMALL_SHARD,
        build_info={"seed": 3, "recipe": RECIPE.to_dict()},
    )
    return out, manifest


def _arrays(record: PieceRecord) -> list[tuple[str, np.ndarray]]:
    arrays = [("page_keys", record.page_keys), ("systems", record.systems)]
    arrays += [("noteheads", record.noteheads), ("performed", record.performed)]
    arrays += [("measures", record.measures), ("performed_measures", record.performed_measures)]
    arrays += [(f"page{i}", page) for i, page in enumerate(record.pages)]
    for perf in record.performances:
        arrays += [(f"{perf.performance_id}/spectrogram", perf.spectrogram)]
        arrays += [(f"{perf.performance_id}/events", perf.events)]
        arrays += [(f"{perf.performance_id}/onset_frame", perf.onset_frame)]
        arrays += [(f"{perf.performance_id}/measures", perf.measures)]
    return arrays


def _assert_same_record(a: PieceRecord, b: PieceRecord) -> None:
    assert a.piece_id == b.piece_id
    assert a.metadata == b.metadata
    assert [p.performance_id for p in a.performances] == [p.performance_id for p in b.performances]
    for pa, pb in zip(a.performances, b.performances, strict=True):
        assert pa.plan == pb.plan
        assert pa.duration_sec == pb.duration_sec
    arrays_a, arrays_b = _arrays(a), _arrays(b)
    assert [n for n, _ in arrays_a] == [n for n, _ in arrays_b]
    for (name, x), (_, y) in zip(arrays_a, arrays_b, strict=True):
        assert x.dtype == y.dtype, name
        assert x.shape == y.shape, name
        assert np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes(), name


def _part(manifest, name):
    return manifest.part(name)


# --- collecting ---------------------------------------------------------------------


def test_collect_piece_gathers_every_stage_output(work):
    record = collect_piece(work, ETUDE, role="train")
    score = read_json(work / "pieces" / ETUDE / "score" / "score.json")
    assert len(record.pages) == len(score["pages"]) >= 2
    for page, info in zip(record.pages, score["pages"], strict=True):
        assert page.dtype == np.uint8
        assert page.shape == (info["height_px"], info["width_px"])
        assert page.min() < 64 and page.max() == 255  # black ink on white paper
    assert record.page_keys.tolist() == [[p["book"], p["page"]] for p in score["pages"]]
    with np.load(work / "pieces" / ETUDE / "score" / "geometry.npz") as data:
        assert record.noteheads.tobytes() == data["noteheads"].tobytes()
        assert record.systems.tobytes() == data["systems"].tobytes()
    assert record.noteheads.dtype == NOTEHEAD_DTYPE and record.systems.dtype == SYSTEM_DTYPE
    with np.load(work / "pieces" / ETUDE / "score" / "geometry.npz") as data:
        assert record.measures.tobytes() == data["measures"].tobytes()
    assert record.measures.dtype == MEASURE_DTYPE and len(record.measures) > 10
    with np.load(work / "pieces" / ETUDE / "align" / "alignment.npz") as data:
        assert record.performed.tobytes() == data["performed"].tobytes()
        assert record.performed_measures.tobytes() == data["performed_measures"].tobytes()
    assert record.performed_measures.dtype == PERFORMED_MEASURE_DTYPE
    perform = read_json(work / "pieces" / ETUDE / "perform" / "perform.json")
    assert [p.performance_id for p in record.performances] == perform["roles"]["train"]
    assert len(record.performances) == 2
    for perf in record.performances:
        assert perf.spectrogram.dtype == np.float32 and perf.spectrogram.shape[0] == 92
        assert perf.events.dtype == PERFORMED_EVENT_DTYPE
        assert len(perf.events) == len(perf.onset_frame) == len(record.performed)
        assert perf.plan["tempo_ratio"] == 2.0
        assert perf.duration_sec == pytest.approx(perf.spectrogram.shape[1] / 20, abs=0.2)
        # Twice the score's tempo: every measure occurrence takes half the score's seconds.
        score_times = record.performed_measures[["start_sec", "end_sec"]]
        assert perf.measures["start_sec"].tolist() == (score_times["start_sec"] / 2).tolist()
        assert perf.measures["end_sec"].tolist() == (score_times["end_sec"] / 2).tolist()
        assert (
            perf.measures["start_frame"].tolist()
            == np.ceil(perf.measures["start_sec"] / 0.05).astype(int).tolist()
        )
    assert record.metadata["title"] and record.metadata["composer"]
    assert record.metadata["source_file"].endswith("sixteenth-etude.ly")
    assert record.metadata["role"] == "train"
    test_record = collect_piece(work, ETUDE, role="test")
    assert [p.plan["soundfont"] for p in test_record.performances] == ["musescore-general-grand"]


def test_collect_piece_names_what_is_missing(work, tmp_path):
    with pytest.raises(NotBuiltError, match=r"pieces/ExampleA__O1__volta-minuet/score/score\.json"):
        collect_piece(work, UNRENDERED, role="train")
    with pytest.raises(NotBuiltError, match="not in the corpus index"):
        collect_piece(work, UNKNOWN, role="train")
    with pytest.raises(ConfigError, match="role"):
        collect_piece(work, CHORALE, role="training")
    copy = tmp_path / "work"
    shutil.copytree(work, copy)
    (copy / "pieces" / CHORALE / "align" / "alignment.npz").unlink()
    with pytest.raises(NotBuiltError, match=r"align/alignment\.npz is missing") as caught:
        collect_piece(copy, CHORALE, role="test")
    assert caught.value.error_class == "not-built"
    perform_json = copy / "pieces" / ETUDE / "perform" / "perform.json"
    document = read_json(perform_json)
    document["performances"][0]["cache_key"] = "0" * 64
    atomic_write_json(perform_json, document)
    stale = document["performances"][0]["performance_id"]
    role = next(r for r, ids in document["roles"].items() if stale in ids)
    with pytest.raises(NotBuiltError, match="stale"):
        collect_piece(copy, ETUDE, role=role)


# --- writing ------------------------------------------------------------------------


def test_shards_are_cut_by_size_and_named_by_part(written):
    out, manifest = written
    split_dir = out / "mix"
    names = sorted(p.name for p in split_dir.iterdir())
    assert names == [
        "manifest.json",
        "test-00000.h5",
        "test-00001.h5",
        "train-00000.h5",
        "train-00001.h5",
        "valid-00000.h5",
    ]
    assert [p.name for p in manifest.parts] == ["train", "valid", "test"]
    train = _part(manifest, "train")
    assert [f.piece_ids for f in train.files] == [(CHORALE,), (ETUDE,)]
    assert [f.piece_ids for f in _part(manifest, "test").files] == [(ETUDE,), (CHORALE,)]
    for part in manifest.parts:
        for shard in part.files:
            path = split_dir / shard.file
            assert path.stat().st_size == shard.size
            assert sha256_file(path) == shard.sha256
            with h5py.File(path, "r") as handle:
                assert list(handle["pieces"]) == sorted(shard.piece_ids)
    with h5py.File(split_dir / "test-00001.h5", "r") as one:
        assert one.attrs["part"] == "test" and one.attrs["shard_index"] == 1


def test_pieces_share_a_file_until_the_bound(work, tmp_path):
    both = write_shards("big", {"train": [ETUDE, CHORALE]}, work_dir=work, out_dir=tmp_path)
    (shard,) = both.part("train").files
    assert shard.file == "train-00000.h5" and shard.piece_ids == (ETUDE, CHORALE)
    with open_shard(tmp_path / "big" / shard.file) as reader:
        assert reader.piece_ids == (ETUDE, CHORALE)
        assert [r.piece_id for r in reader.iter_pieces()] == [ETUDE, CHORALE]
    # One byte less than that file and the second piece starts a new one.
    bound = shard.size - 1
    cut = write_shards(
        "cut", {"train": [ETUDE, CHORALE]}, work_dir=work, out_dir=tmp_path, max_shard_bytes=bound
    )
    assert [f.piece_ids for f in cut.part("train").files] == [(ETUDE,), (CHORALE,)]
    assert all(f.size <= bound for f in cut.part("train").files)
    assert sum(f.size for f in cut.part("train").files) > shard.size


def test_round_trip_returns_every_array_as_collected(work, written):
    out, manifest = written
    with open_split(out / "mix") as split:
        assert split.parts == ("train", "valid", "test")
        for part in split.parts:
            for record in split.iter_pieces(part, verify=True):
                _assert_same_record(record, collect_piece(work, record.piece_id, role=part))
        record = split.read_piece("valid", ETUDE)
        assert len(record.performances) == 1
        assert record.noteheads.dtype == NOTEHEAD_DTYPE
        assert record.performed.dtype == PERFORMED_EVENT_DTYPE
        assert record.performances[0].events.dtype == PERFORMED_EVENT_DTYPE
        assert record.page_index(0, 1) == 1


def test_manifest_counts_and_checksums(work, written):
    out, manifest = written
    on_disk = read_json(out / "mix" / "manifest.json")
    assert on_disk["format_name"] == "msmd-builder/shard-manifest"
    assert on_disk["shard_format"] == {"format_name": FORMAT_NAME, "format_version": 2}
    assert on_disk["build_info"]["seed"] == 3
    assert on_disk["build_info"]["shard_writer"]["h5py"] == h5py.version.version
    for part in manifest.parts:
        records = [
            collect_piece(work, p, role=part.role)
            for p in PARTS[part.name]
            if p in (CHORALE, ETUDE)
        ]
        assert [s.piece_id for s in part.pieces] == [r.piece_id for r in records]
        for summary, record in zip(part.pieces, records, strict=True):
            assert summary.content_sha256 == piece_checksum(record)
            assert summary.counts == Counts.of(record)
        total = part.counts
        assert total.pieces == len(records)
        assert total.pages == sum(len(r.pages) for r in records)
        assert total.noteheads == sum(len(r.noteheads) for r in records)
        assert total.systems == sum(len(r.systems) for r in records)
        assert total.performed_events == sum(len(r.performed) for r in records)
        assert total.aligned_pairs == sum(
            int((r.performed["notehead_id"] >= 0).sum()) for r in records
        )
        assert 0 < total.aligned_pairs <= total.performed_events
        perfs = [p for r in records for p in r.performances]
        assert total.performances == len(perfs)
        assert total.spectrogram_frames == sum(p.spectrogram.shape[1] for p in perfs)
        assert total.audio_sec == pytest.approx(sum(p.duration_sec for p in perfs))
        assert on_disk["parts"][part.name]["counts"] == total.to_dict()
    assert _part(manifest, "train").counts.performances == 4
    assert _part(manifest, "valid").counts.performances == 1


def test_missing_pieces_are_reported_not_fatal(written):
    _, manifest = written
    missing = {m.piece_id: m for m in _part(manifest, "test").missing}
    assert set(missing) == {UNRENDERED, UNKNOWN}
    assert missing[UNRENDERED].error_class == "not-built"
    assert missing[UNRENDERED].reason == f"pieces/{UNRENDERED}/score/score.json is missing"
    assert "not in the corpus index" in missing[UNKNOWN].reason
    assert _part(manifest, "train").missing == ()
    assert _part(manifest, "test").counts.pieces == 2


def test_rerun_rewrites_nothing(work, written):
    out, manifest = written
    split_dir = out / "mix"
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in split_dir.iterdir()}
    again = write_shards(
        "mix",
        PARTS,
        work_dir=work,
        out_dir=out,
        max_shard_bytes=SMALL_SHARD,
        build_info={"seed": 3, "recipe": RECIPE.to_dict()},
    )
    assert again == manifest
    after = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in split_dir.iterdir()}
    assert after == before


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("damaged", "damage"),
    [
        ("train-00001.h5", Path.unlink),
        ("test-00000.h5", _truncate),
        ("manifest.json", _truncate),
        ("manifest.json", Path.unlink),
    ],
    ids=["deleted-shard", "truncated-shard", "truncated-manifest", "deleted-manifest"],
)
def test_a_damaged_split_is_rewritten_to_the_same_content(work, written, tmp_path, damaged, damage):
    out, manifest = written
    shutil.copytree(out / "mix", tmp_path / "mix")
    damage(tmp_path / "mix" / damaged)
    rebuilt = write_shards(
        "mix",
        PARTS,
        work_dir=work,
        out_dir=tmp_path,
        max_shard_bytes=SMALL_SHARD,
        build_info={"seed": 3, "recipe": RECIPE.to_dict()},
    )
    assert rebuilt.to_dict() == manifest.to_dict()
    content = {s.piece_id + "@" + p.name: s.content_sha256 for p in rebuilt.parts for s in p.pieces}
    assert content == {
        s.piece_id + "@" + p.name: s.content_sha256 for p in manifest.parts for s in p.pieces
    }
    for part in manifest.parts:
        for shard in part.files:
            assert sha256_file(tmp_path / "mix" / shard.file) == shard.sha256, shard.file
    assert (tmp_path / "mix" / "manifest.json").read_bytes() == (
        out / "mix" / "manifest.json"
    ).read_bytes()


def _flip_byte(path: Path, offset: int) -> None:
    """Change one byte of a file in place (its size stays the same)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_truncated_shard_is_a_format_error_naming_the_file(written, tmp_path):
    out, manifest = written
    split_dir = tmp_path / "mix"
    shutil.copytree(out / "mix", split_dir)
    shard = split_dir / "train-00000.h5"
    (size,) = [f.size for f in manifest.part("train").files if f.file == shard.name]
    _truncate(shard)
    with open_split(split_dir) as split:
        expected = f"{shard} is damaged: {size // 2} bytes, the manifest records {size} "
        with pytest.raises(FormatError, match=re.escape(expected)):
            split.read_piece("train", CHORALE)
        assert split.read_piece("train", ETUDE, verify=True).piece_id == ETUDE  # other files read
    with pytest.raises(FormatError, match=re.escape(f"{shard} cannot be opened as HDF5")):
        open_shard(shard)


def test_a_changed_shard_is_caught_by_verification(written, tmp_path):
    out, _ = written
    split_dir = tmp_path / "mix"
    shutil.copytree(out / "mix", split_dir)
    shard = split_dir / "train-00000.h5"
    with h5py.File(shard, "r") as handle:
        group = handle["pieces"][CHORALE]
        assert group["page_keys"][()].tolist() == [[0, 0]]
        page_keys_offset = group["page_keys"].id.get_offset()  # stored uncompressed
        performance_id = group.attrs["performance_ids"][0]
        chunk = group["performances"][performance_id]["spectrogram"].id.get_chunk_info(0)
    # One byte of the page keys: the file reads, but holds other content than written.
    _flip_byte(shard, page_keys_offset)
    with open_split(split_dir) as split:
        assert split.read_piece("train", CHORALE).page_keys.tolist() == [[1, 0]]
        changed = f"{shard}: piece '{CHORALE}' differs from the manifest's content_sha256"
        with pytest.raises(FormatError, match=re.escape(changed)):
            split.read_piece("train", CHORALE, verify=True)
    # One byte in a compressed spectrogram chunk: HDF5 cannot decompress it.
    _flip_byte(shard, chunk.byte_offset + chunk.size // 2)
    with open_split(split_dir) as split:
        unreadable = f"{shard} is damaged: piece '{CHORALE}' cannot be read"
        with pytest.raises(FormatError, match=re.escape(unreadable)):
            split.read_piece("train", CHORALE)


def test_two_builds_give_identical_checksums_and_bytes(work, written, tmp_path):
    out, manifest = written
    time.sleep(1.1)  # a timestamp anywhere in the files would now differ
    other = write_shards(
        "mix",
        PARTS,
        work_dir=work,
        out_dir=tmp_path,
        max_shard_bytes=SMALL_SHARD,
        build_info={"seed": 3, "recipe": RECIPE.to_dict()},
    )
    assert other.to_dict() == manifest.to_dict()
    first = (out / "mix" / "manifest.json").read_bytes()
    assert (tmp_path / "mix" / "manifest.json").read_bytes() == first
    with h5py.File(tmp_path / "mix" / "train-00001.h5", "r") as handle:
        stamped = []
        handle.visititems(
            lambda name, obj: stamped.append(name) if h5py.h5o.get_info(obj.id).mtime else None
        )
        assert stamped == []


def _packed(work: Path) -> dict[str, tuple[int, int]]:
    return {
        f"{piece_id}/{name}": stamp
        for piece_id in (CHORALE, ETUDE)
        for name, stamp in file_writes(PieceDir.of(work, piece_id).packed).items()
    }


def test_a_piece_is_compressed_once_per_role_and_copied_as_it_is(work, written, tmp_path):
    out, manifest = written
    packed = _packed(work)
    # One group per piece and role the split holds: CHORALE train and test, ETUDE all three.
    assert sorted(packed) == [
        f"{CHORALE}/test.h5",
        f"{CHORALE}/test.json",
        f"{CHORALE}/train.h5",
        f"{CHORALE}/train.json",
        f"{ETUDE}/test.h5",
        f"{ETUDE}/test.json",
        f"{ETUDE}/train.h5",
        f"{ETUDE}/train.json",
        f"{ETUDE}/valid.h5",
        f"{ETUDE}/valid.json",
    ]
    # Another split holding the pieces in the same roles compresses nothing again,
    # and its groups are the packed ones, byte for byte (the shards are identical).
    settings = {
        "max_shard_bytes": SMALL_SHARD,
        "build_info": {"seed": 3, "recipe": RECIPE.to_dict()},
    }
    other = write_shards("mix", PARTS, work_dir=work, out_dir=tmp_path / "other", **settings)
    assert _packed(work) == packed
    assert other.to_dict() == manifest.to_dict()
    for shard in (out / "mix").glob("*.h5"):
        assert (tmp_path / "other" / "mix" / shard.name).read_bytes() == shard.read_bytes()
    # Packed again from scratch, in two worker processes, a second later: the same bytes.
    for piece_id in (CHORALE, ETUDE):
        shutil.rmtree(PieceDir.of(work, piece_id).packed)
    time.sleep(1.1)
    assert pack_pieces([PARTS], work_dir=work, workers=2) == 5  # UNKNOWN is not in the index
    assert sorted(_packed(work)) == sorted(packed)
    repacked = _packed(work)
    again = write_shards("mix", PARTS, work_dir=work, out_dir=tmp_path / "again", **settings)
    assert _packed(work) == repacked  # write_shards found everything packed
    assert again.to_dict() == manifest.to_dict()
    for shard in (out / "mix").glob("*.h5"):
        assert (tmp_path / "again" / "mix" / shard.name).read_bytes() == shard.read_bytes()
    # A damaged packed group is packed again.
    PieceDir.of(work, ETUDE).packed_piece("valid").write_bytes(b"damaged")
    fixed = write_shards("mix", PARTS, work_dir=work, out_dir=tmp_path / "fixed", **settings)
    assert fixed.to_dict() == manifest.to_dict()


def test_killed_write_resumes_to_the_same_split(work, written, tmp_path):
    out, manifest = written
    split_dir = tmp_path / "mix"
    shutil.copytree(out / "mix", split_dir)
    # What a kill leaves: no manifest (removed before writing), a temporary file
    # of the shard in progress, and files of an earlier, larger split.
    (split_dir / "manifest.json").unlink()
    (split_dir / "train-00001.h5").rename(split_dir / ".train-00001.h5.x1y2z3.tmp")
    shutil.copy(split_dir / "test-00000.h5", split_dir / "test-00007.h5")
    with pytest.raises(ConfigError, match="manifest.json does not exist"):
        open_split(split_dir)
    resumed = write_shards(
        "mix",
        PARTS,
        work_dir=work,
        out_dir=tmp_path,
        max_shard_bytes=SMALL_SHARD,
        build_info={"seed": 3, "recipe": RECIPE.to_dict()},
    )
    assert resumed == manifest
    assert sorted(p.name for p in split_dir.iterdir()) == sorted(
        p.name for p in (out / "mix").iterdir()
    )


def test_a_changed_setting_rewrites_with_the_same_content(work, written, tmp_path):
    out, manifest = written
    shutil.copytree(out / "mix", tmp_path / "mix")
    changed = write_shards(
        "mix",
        PARTS,
        work_dir=work,
        out_dir=tmp_path,
        max_shard_bytes=SMALL_SHARD,
        build_info={"seed": 4},
    )
    assert changed.key != manifest.key
    old = {s.piece_id: s.content_sha256 for p in manifest.parts for s in p.pieces}
    new = {s.piece_id: s.content_sha256 for p in changed.parts for s in p.pieces}
    assert new == old
    with open_shard(tmp_path / "mix" / "train-00000.h5") as reader:
        assert reader.build_info["seed"] == 4


def test_other_parts_take_their_role_from_the_mapping(work, tmp_path):
    manifest = write_shards(
        "sub",
        {"train-50": [CHORALE], "extra": [CHORALE]},
        work_dir=work,
        out_dir=tmp_path,
        roles={"train-50": "train"},
    )
    assert [p.role for p in manifest.parts] == ["train", "test"]
    with open_split(tmp_path / "sub") as split:
        train = split.read_piece("train-50", CHORALE)
        extra = split.read_piece("extra", CHORALE)
    assert len(train.performances) == 2 and len(extra.performances) == 1
    assert extra.metadata["role"] == "test"
    assert sorted(p.name for p in (tmp_path / "sub").glob("*.h5")) == [
        "extra-00000.h5",
        "train-50-00000.h5",
    ]


def test_bad_arguments_are_config_errors(work, tmp_path):
    with pytest.raises(ConfigError, match="split name"):
        write_shards("a/b", {"train": [CHORALE]}, work_dir=work, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="more than once"):
        write_shards("s", {"train": [CHORALE, CHORALE]}, work_dir=work, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="role"):
        write_shards("s", {"x": [CHORALE]}, work_dir=work, out_dir=tmp_path, roles={"x": "dev"})
    with pytest.raises(ConfigError, match="index.csv"):
        write_shards("s", {"train": [CHORALE]}, work_dir=tmp_path, out_dir=tmp_path)
    not_a_shard = tmp_path / "other.h5"
    with h5py.File(not_a_shard, "w") as handle:
        handle.attrs["format_name"] = "something-else"
    with pytest.raises(ConfigError, match="not a msmd-builder/shard file"):
        open_shard(not_a_shard)


# --- the documented layout, read with plain h5py ------------------------------------


def test_a_shard_reads_with_plain_h5py_as_documented(work, written):
    out, manifest = written
    document = json.loads((out / "mix" / "manifest.json").read_text(encoding="utf-8"))
    assert document["part_order"] == ["train", "valid", "test"]
    train = document["parts"]["train"]
    entry = next(p for p in train["pieces"] if p["piece_id"] == ETUDE)
    with h5py.File(out / "mix" / entry["file"], "r") as f:
        assert f.attrs["format_name"] == FORMAT_NAME
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert (f.attrs["split"], f.attrs["part"], f.attrs["role"]) == ("mix", "train", "train")
        assert list(f.attrs["piece_ids"]) == [ETUDE]
        assert json.loads(f.attrs["build_info_json"])["seed"] == 3
        g = f["pieces"][ETUDE]
        assert g.attrs["content_sha256"] == entry["content_sha256"]
        assert g.attrs["title"] == json.loads(g.attrs["metadata_json"])["title"]
        assert g.attrs["source_file"].endswith(".ly") and len(g.attrs["source_sha256"]) == 64
        assert g.attrs["license"] and g.attrs["composer"]

        # Every dataset carries the SHA-256 of its bytes.
        def check(name, obj):
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                assert obj.attrs["sha256"] == hashlib.sha256(data.tobytes()).hexdigest(), name

        g.visititems(check)
        # Crop the first system from its page with the pixel box, as a trainer would.
        system = g["systems"][0]
        keys = g["page_keys"][()]
        index = int(
            np.flatnonzero((keys[:, 0] == system["book"]) & (keys[:, 1] == system["page"]))[0]
        )
        page = g["pages"][f"{index:04d}"]
        assert (page.attrs["book"], page.attrs["page"]) == (system["book"], system["page"])
        y0, y1 = int(system["y0_px"]), int(np.ceil(system["y1_px"]))
        crop = page[y0:y1, :]
        assert crop.dtype == np.uint8 and crop.shape[0] == y1 - y0 and crop.min() < 128
        # Noteheads on that system lie inside its box; performed events point at them.
        heads = g["noteheads"][()]
        on_system = heads[(heads["system"] == system["system"]) & heads["visible"]]
        assert len(on_system) > 0
        assert (on_system["y0_px"] >= system["y0_px"] - 20).all()
        performed = g["performed"][()]
        linked = performed[performed["notehead_id"] >= 0]
        assert (heads["pitch"][linked["notehead_id"]] == linked["pitch"]).all()
        # A performance: spectrogram excerpt at each note's onset frame.
        ids = list(g.attrs["performance_ids"])
        assert len(ids) == 2
        p = g["performances"][ids[0]]
        plan = json.loads(p.attrs["plan_json"])
        assert plan["performance_id"] == ids[0] and plan["tempo_ratio"] == 2.0
        spectrogram = p["spectrogram"]
        assert spectrogram.dtype == np.float32 and spectrogram.shape[0] == 92
        assert spectrogram.chunks == (92, 256) and spectrogram.compression == "gzip"
        onset_frame = p["onset_frame"][()]
        events = p["events"][()]
        assert (onset_frame == np.ceil(events["onset_sec"] / (1.0 / 20))).all()  # MSMD's rule
        assert onset_frame.max() < spectrogram.shape[1]
        excerpt = spectrogram[:, onset_frame[0] : onset_frame[0] + 42]
        assert excerpt.shape == (92, 42)
        assert float(p.attrs["duration_sec"]) == pytest.approx(spectrogram.shape[1] / 20, abs=0.2)


def test_array_sha256_is_of_c_order_bytes():
    a = np.arange(12, dtype=np.int16).reshape(3, 4)
    assert array_sha256(a.T) == hashlib.sha256(np.ascontiguousarray(a.T).tobytes()).hexdigest()
    assert array_sha256(a) != array_sha256(a.T)
