"""Longest first: costs from earlier builds or source sizes, the run order, timings kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmd_builder.core.cache import read_json
from msmd_builder.core.workdir import WorkDir
from msmd_builder.pipeline.run import run_pieces
from msmd_builder.pipeline.schedule import (
    TIMINGS_FORMAT,
    estimate_costs,
    longest_first,
    record_timings,
)
from msmd_builder.pipeline.settings import build_settings
from tests.helpers.build import entry_of
from tests.helpers.writes import file_writes


def write_piece(root: Path, name: str, size: int) -> str:
    main_file = f"ftp/TestC/Op1/{name}.ly"
    path = root / main_file
    path.parent.mkdir(parents=True, exist_ok=True)
    notes = "c'4 " * max(size // 4, 1)
    path.write_text(f'\\version "2.24.0"\n{{ {notes} }}\n'[:size].ljust(size), encoding="utf-8")
    return main_file


def test_costs_from_source_size_then_from_the_longest_earlier_build(tmp_path):
    root = tmp_path / "corpus"
    entries = [entry_of(root, write_piece(root, n, s)) for n, s in [("a", 100), ("b", 400)]]
    entries.append(entry_of(root, write_piece(root, "c", 200)))
    a, b, c = (e.piece_id for e in entries)
    work = tmp_path / "work"
    costs = estimate_costs(entries, work, root)
    assert costs[b] == pytest.approx(4 * costs[a]) and costs[c] == pytest.approx(2 * costs[a])
    assert [e.piece_id for e in longest_first(entries, costs)] == [b, c, a]
    # a took 30 s: 0.3 s per byte, which also prices the pieces never built.
    record_timings(work, {a: 30.0})
    costs = estimate_costs(entries, work, root)
    assert costs == pytest.approx({a: 30.0, b: 120.0, c: 60.0})
    record_timings(work, {a: 500.0, b: 1.0})  # b's cached rebuild does not lower its cost
    costs = estimate_costs(entries, work, root)
    assert costs[a] == 500.0 and costs[b] == 1.0
    assert costs[c] == pytest.approx(200 * (500 / 100 + 1 / 400) / 2)  # the median rate
    assert [e.piece_id for e in longest_first(entries, costs)] == [c, a, b]
    document = read_json(WorkDir(work).timings)
    assert document["format_name"] == TIMINGS_FORMAT
    assert document["seconds"] == {a: 500.0, b: 1.0}


def test_ties_keep_their_order_and_unchanged_timings_are_not_rewritten(tmp_path):
    root = tmp_path / "corpus"
    entries = [entry_of(root, write_piece(root, n, 100)) for n in "xyz"]
    costs = estimate_costs(entries, tmp_path / "work", root)
    assert longest_first(entries, costs) == entries
    record_timings(tmp_path / "work", {entries[0].piece_id: 2.0})
    before = file_writes(tmp_path / "work")
    record_timings(tmp_path / "work", {entries[0].piece_id: 1.5})
    assert file_writes(tmp_path / "work") == before


def test_pieces_run_longest_first_and_their_timings_are_kept(tmp_path):
    root = tmp_path / "corpus"
    entries = [entry_of(root, write_piece(root, n, s)) for n, s in [("s", 60), ("l", 600)]]
    entries.append(entry_of(root, write_piece(root, "m", 300)))
    work = tmp_path / "work"
    settings = build_settings(work, root, until="normalize")
    started: list[str] = []
    outcomes = run_pieces(
        entries, settings, workers=1, on_done=lambda o: started.append(o.piece_id)
    )
    short, long_, middle = (e.piece_id for e in entries)
    assert started == [long_, middle, short]
    assert [o.piece_id for o in outcomes] == [short, long_, middle]  # results in input order
    kept = read_json(WorkDir(work).timings)["seconds"]
    assert set(kept) == {short, long_, middle} and all(v > 0 for v in kept.values())
