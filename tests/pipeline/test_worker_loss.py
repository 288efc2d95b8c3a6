"""Local worker processes that die while they build a piece (killed from the test by pid)."""

from __future__ import annotations

import pytest

from msmd_builder.core.cache import read_json
from msmd_builder.core.workdir import PieceDir
from msmd_builder.pipeline.run import run_pieces
from msmd_builder.pipeline.settings import build_settings
from tests.helpers.build import entry_of

psutil = pytest.importorskip("psutil")

from tests.helpers.workers import WorkerKiller, lilyponds_of  # noqa: E402 - needs psutil

HEADER = r"""\version "2.24.0"
\header { title = "Test" mutopiainstrument = "Piano" }
"""


def slow_piece(seconds: int) -> str:
    """A piece whose LilyPond run waits ``seconds`` before it typesets anything."""
    return HEADER + f"#(sleep {seconds})\n" + r"\score { \relative c' { c4 d e f | g1 } }"


QUICK = HEADER + r"\score { \relative c'' { <c e g>2 b4 a | g1 } }"


def test_a_piece_whose_worker_is_killed_once_is_built_on_its_retry(make_piece, tmp_path):
    make_piece("quick", QUICK)
    root, slow = make_piece("slow", slow_piece(2))
    entries = [entry_of(root, slow), entry_of(root, "ftp/TestC/Op1/quick/quick.ly")]
    settings = build_settings(tmp_path / "work", root, until="render")
    killer = WorkerKiller("slow.ly", times=1)
    killer.start()
    try:
        outcomes = run_pieces(entries, settings, workers=2)
    finally:
        killer.stop()
    assert len(killer.killed_workers) == 1
    assert [(o.piece_id, o.status, o.error_class) for o in outcomes] == [
        ("TestC__Op1__slow", "ok", ""),
        ("TestC__Op1__quick", "ok", ""),
    ]
    record = read_json(PieceDir.of(tmp_path / "work", "TestC__Op1__slow").render_record)
    assert (record["status"], record["pdf_files"]) == ("ok", ["slow.pdf"])
    assert lilyponds_of("slow.ly") == []


def test_a_piece_that_kills_its_worker_every_time_is_reported_and_the_others_finish(
    make_piece, tmp_path
):
    """The first kill lands while another piece is in flight on the same pool.

    The pool fails every piece in flight when one worker dies, so which piece
    killed it is unknown: each is retried in a process of its own, and only the
    piece whose own process dies again is reported.
    """
    make_piece("quick", QUICK)
    make_piece("steady", slow_piece(2))
    root, doomed = make_piece("doomed", slow_piece(30))
    entries = [
        entry_of(root, doomed),
        entry_of(root, "ftp/TestC/Op1/steady/steady.ly"),
        entry_of(root, "ftp/TestC/Op1/quick/quick.ly"),
    ]
    settings = build_settings(tmp_path / "work", root, until="render")
    killer = WorkerKiller(
        "doomed.ly", times=2, ready=lambda kills: kills > 0 or bool(lilyponds_of("steady.ly"))
    )
    killer.start()
    done = []
    try:
        outcomes = run_pieces(entries, settings, workers=2, on_done=done.append)
    finally:
        killer.stop()
    assert len(killer.killed_workers) == 2
    assert [(o.piece_id, o.status, o.stage, o.error_class) for o in outcomes] == [
        ("TestC__Op1__doomed", "failed", "worker", "worker-lost"),
        ("TestC__Op1__steady", "ok", "render", ""),
        ("TestC__Op1__quick", "ok", "render", ""),
    ]
    assert outcomes[0].message == (
        "the worker process died twice while building this piece, the second time "
        "building it alone (killed, or out of memory)"
    )
    assert sorted(o.piece_id for o in done) == sorted(e.piece_id for e in entries)
    assert lilyponds_of("doomed.ly") == []
