"""The one cached-stage helper and the format-checked ``.npz`` files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msmd_builder.core.cache import StageCache, load_npz, read_json, save_npz, stable_key
from msmd_builder.core.errors import FormatError


def _cache(tmp_path, **document):
    return StageCache.for_document(
        tmp_path / "stage" / "record.json",
        {"stage": "test", **document},
        format_name="msmd-builder/test-record",
        format_version=1,
    )


def test_a_stored_record_is_a_hit_only_for_its_key_format_and_outputs(tmp_path):
    cache = _cache(tmp_path, inputs="a")
    output = tmp_path / "stage" / "out.bin"
    assert cache.lookup() is None  # nothing stored yet
    output.parent.mkdir()
    output.write_bytes(b"12345")
    stored = cache.store({"value": 7, "files": ["out.bin"]})
    assert stored["cache_key"] == cache.key and stored["format_name"] == "msmd-builder/test-record"
    assert read_json(cache.record_path) == stored

    def outputs(record):
        return [tmp_path / "stage" / name for name in record["files"]]

    assert cache.lookup(outputs) == stored
    assert cache.lookup(outputs, force=True) is None
    assert _cache(tmp_path, inputs="b").lookup(outputs) is None  # another key
    other_format = StageCache(cache.record_path, "msmd-builder/other", 1, cache.key)
    assert other_format.lookup(outputs) is None
    newer = StageCache(cache.record_path, cache.format_name, 2, cache.key)
    assert newer.lookup(outputs) is None
    # Outputs with a recorded size must still have it.
    assert cache.lookup(lambda r: [(output, 5)]) == stored
    assert cache.lookup(lambda r: [(output, 6)]) is None
    output.unlink()
    assert cache.lookup(outputs) is None  # an output was deleted: rebuild


def test_a_damaged_record_is_a_miss(tmp_path):
    cache = _cache(tmp_path, inputs="a")
    cache.store({"value": 1})
    text = cache.record_path.read_text()
    cache.record_path.write_text(text[: len(text) // 2])  # truncated
    assert cache.lookup() is None
    cache.record_path.write_text(json.dumps([1, 2, 3]))  # not a mapping
    assert cache.lookup() is None


def test_the_key_covers_the_document_and_the_format(tmp_path):
    assert _cache(tmp_path, inputs="a").key == _cache(tmp_path, inputs="a").key
    assert _cache(tmp_path, inputs="a").key != _cache(tmp_path, inputs="b").key
    assert _cache(tmp_path, inputs="a").key != stable_key({"stage": "test", "inputs": "a"})


def test_npz_files_carry_and_check_their_format(tmp_path):
    path = tmp_path / "table.npz"
    table = np.arange(12, dtype=np.int32).reshape(3, 4)
    save_npz(path, format_name="msmd-builder/x", format_version=3, table=table)
    data = load_npz(path, format_name="msmd-builder/x", format_version=3)
    np.testing.assert_array_equal(data["table"], table)
    with pytest.raises(FormatError, match="msmd-builder/x version 3, expected msmd-builder/y"):
        load_npz(path, format_name="msmd-builder/y", format_version=3)
    with pytest.raises(FormatError, match="version 3, expected msmd-builder/x version 4"):
        load_npz(path, format_name="msmd-builder/x", format_version=4)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(FormatError, match="not a readable .npz file"):
        load_npz(path, format_name="msmd-builder/x", format_version=3)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave nothing behind
