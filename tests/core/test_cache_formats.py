"""The exact bytes and keys the cache writes, which a rebuild elsewhere must reproduce.

Found by mutation testing (docs/testing.md): ``test_cache.py`` checks that keys
differ and records round-trip, which holds for any encoding; a cache key
that changes its encoding silently invalidates every work directory, and a
record written differently no longer diffs cleanly.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from msmd_builder.core.cache import (
    StageCache,
    atomic_write_json,
    load_npz,
    output_sizes,
    read_json,
    save_npz,
    sha256_file,
    sized_outputs,
    stable_key,
)
from msmd_builder.core.errors import FormatError


def test_stable_key_hashes_compact_sorted_json():
    document = {"b": [1, 2], "a": {"y": Path("x/y"), "x": "é"}}
    canonical = '{"a":{"x":"\\u00e9","y":"x/y"},"b":[1,2]}'
    assert stable_key(document) == hashlib.sha256(canonical.encode()).hexdigest()


def test_the_stage_key_is_the_key_of_the_document_with_its_format():
    cache = StageCache.for_document(
        "record.json", {"stage": "x"}, format_name="msmd-builder/x", format_version=3
    )
    document = {"stage": "x", "format_name": "msmd-builder/x", "format_version": 3}
    assert cache == StageCache(Path("record.json"), "msmd-builder/x", 3, stable_key(document))


def test_records_are_indented_sorted_utf8_json(tmp_path):
    path = tmp_path / "record.json"
    atomic_write_json(path, {"b": 1, "a": ["é", Path("p")]})
    assert path.read_bytes() == '{\n  "a": [\n    "é",\n    "p"\n  ],\n  "b": 1\n}\n'.encode()
    assert read_json(path) == {"a": ["é", "p"], "b": 1}


def test_sha256_file_reads_files_larger_than_its_chunk(tmp_path):
    data = bytes(range(256)) * 8193  # 2 MiB and a bit: three chunks
    (tmp_path / "big").write_bytes(data)
    assert sha256_file(tmp_path / "big") == hashlib.sha256(data).hexdigest()


def test_output_sizes_and_back(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"12345")
    (tmp_path / "sub" / "b.txt").write_bytes(b"")
    sizes = output_sizes(tmp_path, ["a.bin", "sub/b.txt"])
    assert sizes == {"a.bin": 5, "sub/b.txt": 0}
    assert sized_outputs(tmp_path, {"a.bin": "5"}) == [(tmp_path / "a.bin", 5)]


def _compression(path: Path) -> set[int]:
    with zipfile.ZipFile(path) as archive:
        return {info.compress_type for info in archive.infolist()}


def test_npz_files_are_compressed_unless_asked_not_to(tmp_path):
    table = np.zeros(1000)
    save_npz(tmp_path / "c.npz", format_name="f", format_version=1, table=table)
    save_npz(tmp_path / "s.npz", format_name="f", format_version=1, compressed=False, table=table)
    assert _compression(tmp_path / "c.npz") == {zipfile.ZIP_DEFLATED}
    assert _compression(tmp_path / "s.npz") == {zipfile.ZIP_STORED}
    loaded = load_npz(tmp_path / "s.npz", format_name="f", format_version=1)
    np.testing.assert_array_equal(loaded["table"], table)


def test_npz_without_a_format_is_named_unnamed(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, table=np.arange(3))
    with pytest.raises(
        FormatError, match=r"plain.npz is unnamed version -1, expected f version 1$"
    ):
        load_npz(path, format_name="f", format_version=1)


def test_npz_with_python_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, format_name=np.array("f"), format_version=np.int64(1), rows=np.array([{}]))
    with pytest.raises(FormatError, match="is not a readable .npz file .*allow_pickle"):
        load_npz(path, format_name="f", format_version=1)
