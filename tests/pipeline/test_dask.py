"""The Dask path of the orchestrator on a real LocalCluster (two worker processes)."""

from __future__ import annotations

import numpy as np
import pytest

from msmd_builder.pipeline.run import run_pieces
from msmd_builder.pipeline.settings import build_settings
from msmd_builder.stages.corpus.scan import scan_corpus
from tests.helpers.writes import file_writes

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
psutil = pytest.importorskip("psutil")

from tests.helpers.workers import WorkerKiller, lilyponds_of  # noqa: E402 - needs psutil

HEADER = r"""\version "2.24.0"
\header { title = "Test" mutopiainstrument = "Piano" mutopiacomposer = "TestC" }
"""


@pytest.fixture(scope="module")
def cluster():
    # A task is given up after its second worker dies (as the local pool does), and a
    # worker holds only the task it runs, so a killed worker takes no queued task with it.
    with (
        dask.config.set(
            {
                "distributed.scheduler.allowed-failures": 1,
                "distributed.scheduler.worker-saturation": 1.0,
            }
        ),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
    ):
        yield local


def test_dask_build_matches_local_and_isolates_failures(make_piece, tmp_path, cluster):
    make_piece("good", HEADER + r"\score { \relative c' { c4 d e f \repeat volta 2 { g1 } } }")
    make_piece("other", HEADER + r"\score { \relative c'' { <c e g>2 b4 a | g1 } }")
    root, _ = make_piece("broken", HEADER + r"{ c'4 d'4 = e'4 }")
    entries = sorted(scan_corpus(root), key=lambda e: e.piece_id)
    assert len(entries) == 3

    def settings(work):
        return build_settings(work, root, until="align")

    done = []
    on_dask = run_pieces(
        entries,
        settings(tmp_path / "dask"),
        dask_scheduler=cluster.scheduler_address,
        on_done=done.append,
    )
    local = run_pieces(entries, settings(tmp_path / "local"), workers=1)

    assert [o.piece_id for o in on_dask] == [e.piece_id for e in entries]
    assert sorted(o.piece_id for o in done) == sorted(e.piece_id for e in entries)
    status = {o.piece_id: (o.status, o.error_class) for o in on_dask}
    assert status == {o.piece_id: (o.status, o.error_class) for o in local}
    assert status["TestC__Op1__broken"] == ("failed", "syntax")
    assert status["TestC__Op1__good"] == ("ok", "")
    for piece in ("TestC__Op1__good", "TestC__Op1__other"):
        a = np.load(tmp_path / "dask" / "pieces" / piece / "align" / "alignment.npz")
        b = np.load(tmp_path / "local" / "pieces" / piece / "align" / "alignment.npz")
        np.testing.assert_array_equal(a["performed"], b["performed"])
    assert (
        on_dask[1].details["alignment"]["performed_notes"] == 6
    )  # c d e f, then the volta's g1 twice

    # A rerun on the cluster finds every stage cached: not one file is rewritten.
    before = file_writes(tmp_path / "dask")
    again = run_pieces(
        entries, settings(tmp_path / "dask"), dask_scheduler=cluster.scheduler_address
    )
    assert [(o.status, o.error_class) for o in again] == [
        (o.status, o.error_class) for o in on_dask
    ]
    assert file_writes(tmp_path / "dask") == before


def slow_piece(seconds: int) -> str:
    """A piece whose LilyPond run waits ``seconds`` before it typesets anything."""
    return HEADER + f"#(sleep {seconds})\n" + r"\score { \relative c' { c4 d e f | g1 } }"


def test_killed_dask_workers_retry_a_piece_or_report_it(make_piece, tmp_path, cluster):
    """A worker killed once costs a retry; a piece that kills every worker it gets is reported."""
    make_piece("once", slow_piece(2))
    make_piece("always", slow_piece(30))
    root, _ = make_piece("quick", HEADER + r"\score { \relative c'' { <c e g>2 b4 a | g1 } }")
    entries = sorted(scan_corpus(root), key=lambda e: e.piece_id)
    assert [e.piece_id for e in entries] == [
        "TestC__Op1__always",
        "TestC__Op1__once",
        "TestC__Op1__quick",
    ]
    killers = [WorkerKiller("once.ly", times=1), WorkerKiller("always.ly", times=2)]
    for killer in killers:
        killer.start()
    try:
        outcomes = run_pieces(
            entries,
            build_settings(tmp_path / "work", root, until="render"),
            dask_scheduler=cluster.scheduler_address,
        )
    finally:
        for killer in killers:
            killer.stop()
    assert [len(k.killed_workers) for k in killers] == [1, 2]
    assert [(o.piece_id, o.status, o.stage, o.error_class) for o in outcomes] == [
        ("TestC__Op1__always", "failed", "dask", "worker-lost"),
        ("TestC__Op1__once", "ok", "render", ""),
        ("TestC__Op1__quick", "ok", "render", ""),
    ]
    assert outcomes[0].message.startswith(
        "task failed on the cluster: KilledWorker: Attempted to run task "
    )
    assert "on 2 different workers" in outcomes[0].message
    assert lilyponds_of("always.ly") == [] and lilyponds_of("once.ly") == []
